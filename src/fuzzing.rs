//! Entry points for the fuzz targets (`fuzz/`) and for the replay of their findings
//! (`tests/data/fuzz-regressions/`). Each takes untrusted bytes and must never panic, whatever they
//! are; errors are the expected outcome.

use std::io::Read;

use crate::format::model::{
    Experiment, Header, LoggedModel, MetricChunk, ModelVersion, RegisteredModel, Run, Seal, Trailer,
};
use crate::format::{ArchiveReader, Limits, ReaderBuilder, Record};

/// Small limits, so that a fuzz input cannot make one run slow.
fn limits() -> Limits {
    Limits {
        max_json_bytes: 1 << 20,
        max_artifact_bytes: 1 << 24,
        max_unit_members: 10_000,
        max_members: 100_000,
        max_chunk_points: 100_000,
        ..Limits::default()
    }
}

fn drain<R: Read>(mut r: ArchiveReader<R>) {
    let mut buf = [0u8; 4096];
    while let Ok(Some(rec)) = r.next_record() {
        if let Record::Artifact(_) = rec {
            let mut body = r.body();
            while matches!(body.read(&mut buf), Ok(n) if n > 0) {}
        }
    }
}

/// Reads `data` as an archive (zstd-compressed).
pub fn read_archive(data: &[u8]) {
    if let Ok(r) = ReaderBuilder::new().limits(limits()).build(data) {
        drain(r);
    }
}

/// Reads `data` as a tar stream (compressed here first, so the fuzzer explores the tar and record
/// layers without having to produce valid zstd).
pub fn read_tar(data: &[u8]) {
    let Ok(compressed) = zstd::encode_all(data, 1) else {
        return;
    };
    if let Ok(r) = ReaderBuilder::new().limits(limits()).build(&compressed[..]) {
        drain(r);
    }
}

/// Parses `data` as every kind of record, as the REST client's JSON, and as a member name.
pub fn parse_records(data: &[u8]) {
    let _ = serde_json::from_slice::<Header>(data);
    let _ = serde_json::from_slice::<Experiment>(data);
    let _ = serde_json::from_slice::<Run>(data);
    let _ = serde_json::from_slice::<MetricChunk>(data);
    let _ = serde_json::from_slice::<LoggedModel>(data);
    let _ = serde_json::from_slice::<RegisteredModel>(data);
    let _ = serde_json::from_slice::<ModelVersion>(data);
    let _ = serde_json::from_slice::<Seal>(data);
    let _ = serde_json::from_slice::<Trailer>(data);
    let _ = crate::mlflow::json::parse::<crate::mlflow::types::Run>(data);
    let _ = crate::mlflow::json::parse::<crate::mlflow::types::RegisteredModel>(data);
    let _ = crate::mlflow::json::parse::<Vec<crate::mlflow::types::Metric>>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = crate::format::path::parse(s);
        let _ = crate::format::validate::parse_version(s);
    }
}
