//! Entry points for the fuzz targets (`fuzz/`) and for the replay of their findings
//! (`tests/data/fuzz-regressions/`). Each takes untrusted bytes and must never panic, whatever they
//! are; errors are the expected outcome.

use std::io::Read;

use crate::format::model::{
    Dataset, DatasetRecords, Experiment, Header, LoggedModel, MetricChunk, ModelVersion,
    Permissions, RegisteredModel, Run, Seal, Trace, Trailer,
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
    let _ = serde_json::from_slice::<Trace>(data);
    let _ = serde_json::from_slice::<Dataset>(data);
    let _ = serde_json::from_slice::<DatasetRecords>(data);
    let _ = serde_json::from_slice::<Permissions>(data);
    let _ = crate::mlflow::json::parse::<crate::mlflow::types::Run>(data);
    let _ = crate::mlflow::json::parse::<crate::mlflow::types::RegisteredModel>(data);
    let _ = crate::mlflow::json::parse::<Vec<crate::mlflow::types::Metric>>(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = crate::format::path::parse(s);
        let _ = crate::format::validate::parse_version(s);
    }
}

/// Reads `data` as the Python tool's JSON files: the first byte picks which file of a scratch
/// tree it becomes (`run.json` of a single run, `experiment.json` naming that run, `model.json`,
/// a classic `manifest.json`, or the bulk listings `experiments.json` and `models.json`, beside a
/// well-formed experiment `1/` and model `m/`), the rest is its content; the tree is then read
/// into an archive in memory. The scratch directory is this process's own, removed after each
/// input.
pub fn read_legacy_json(data: &[u8]) {
    let Some((&pick, content)) = data.split_first() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("mlflow-archive-fuzz-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let run = "0123456789abcdef0123456789abcdef";
    let file = match pick % 6 {
        0 => root.join("run.json"),
        1 => root.join("experiment.json"),
        2 => root.join("model.json"),
        3 => root.join("manifest.json"),
        4 => root.join("experiments.json"),
        _ => root.join("models.json"),
    };
    if std::fs::create_dir_all(root.join(run).join("artifacts")).is_err()
        || std::fs::write(&file, content).is_err()
    {
        return;
    }
    // A well-formed run for the experiment and model files to name.
    let run_json = format!(
        r#"{{"mlflow": {{"info": {{"run_id": "{run}", "experiment_id": "1", "status": "FINISHED"}},
        "params": {{"a": "1"}}, "metrics": {{"m": [{{"value": NaN, "timestamp": 1, "step": 0}}]}}, "tags": {{}}}}}}"#
    );
    if pick % 6 != 0 && std::fs::write(root.join(run).join("run.json"), &run_json).is_err() {
        return;
    }
    // What the bulk listings may name: experiment 1 with that run, model m with a version of it.
    if pick % 6 >= 4 {
        let experiment = format!(
            r#"{{"mlflow": {{"experiment": {{"experiment_id": "1", "name": "e"}}, "runs": ["{run}"]}}}}"#
        );
        let model = format!(
            r#"{{"mlflow": {{"registered_model": {{"name": "m", "versions": [{{"version": "1", "run_id": "{run}", "source": "runs:/{run}/m"}}]}}}}}}"#
        );
        let written = std::fs::create_dir_all(root.join("1").join(run))
            .and_then(|()| std::fs::create_dir_all(root.join("m")))
            .and_then(|()| std::fs::write(root.join("1/experiment.json"), experiment))
            .and_then(|()| std::fs::write(root.join("1").join(run).join("run.json"), &run_json))
            .and_then(|()| std::fs::write(root.join("m/model.json"), model));
        if written.is_err() {
            return;
        }
    }
    if let Ok(mut w) = crate::format::WriterBuilder::new()
        .level(1)
        .build(Vec::new())
    {
        let _ = crate::legacy::v2::read_tree(&root, &mut w);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// Reads `data` as a zip of the Python tool's tree: written to this process's scratch file, opened
/// in place, read into an archive in memory, and removed.
pub fn read_legacy_zip(data: &[u8]) {
    let path = std::env::temp_dir().join(format!("mlflow-archive-fuzz-{}.zip", std::process::id()));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(tree) = crate::legacy::tree::ZipTree::open(&path)
        && let Ok(mut w) = crate::format::WriterBuilder::new()
            .level(1)
            .build(Vec::new())
    {
        let _ = crate::legacy::v2::read_tree_in(&tree, &path, &mut w);
    }
    let _ = std::fs::remove_file(&path);
}
