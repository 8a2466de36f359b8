//! The data sets and operations shared by the criterion bench (`codec.rs`) and the instruction
//! counter (`icount.rs`).

#![allow(dead_code)]

use std::io::{Read, Write};

use mlflow_archive::format::model::{Experiment, Run};
use mlflow_archive::format::{ArchiveReader, Record, WriterBuilder};

pub const LEVEL: i32 = 3;

/// Deterministic, moderately compressible bytes (text-like).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let alphabet = b"abcdefghij klmnop,\n0123456789.";
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            alphabet[((x >> 33) % alphabet.len() as u64) as usize]
        })
        .collect()
}

pub struct Set {
    pub name: &'static str,
    pub files: Vec<(String, Vec<u8>)>,
}

impl Set {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, d)| d.len() as u64).sum()
    }
}

pub fn sets() -> Vec<Set> {
    vec![
        Set {
            name: "10000 x 1 KiB",
            files: (0..10_000)
                .map(|i| (format!("dir{}/file-{i}.txt", i % 50), data(1024, i)))
                .collect(),
        },
        Set {
            name: "4 x 16 MiB",
            files: (0..4)
                .map(|i| (format!("model/part-{i}.bin"), data(16 << 20, 1000 + i)))
                .collect(),
        },
    ]
}

pub fn write_ours(set: &Set) -> Vec<u8> {
    let mut w = WriterBuilder::new()
        .level(LEVEL)
        .build(Vec::with_capacity(1 << 20))
        .unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "bench".into(),
        ..Experiment::default()
    })
    .unwrap();
    w.begin_run(&Run {
        run_id: "r1".into(),
        experiment_id: "1".into(),
        status: "FINISHED".into(),
        ..Run::default()
    })
    .unwrap();
    for (p, d) in &set.files {
        w.artifact(p, d.len() as u64, &d[..]).unwrap();
    }
    w.end_unit().unwrap();
    w.finish().unwrap().0
}

pub fn write_baseline(set: &Set) -> Vec<u8> {
    let enc = zstd::stream::write::Encoder::new(Vec::with_capacity(1 << 20), LEVEL).unwrap();
    let mut b = tar::Builder::new(enc);
    for (p, d) in &set.files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("runs/r1/artifacts/{p}"), &d[..])
            .unwrap();
    }
    let mut enc = b.into_inner().unwrap();
    enc.flush().unwrap();
    enc.finish().unwrap()
}

pub fn read_ours(archive: &[u8]) -> u64 {
    let mut r = ArchiveReader::new(archive).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    while let Some(rec) = r.next_record().unwrap() {
        if let Record::Artifact(_) = rec {
            let mut body = r.body();
            loop {
                let n = body.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                total += n as u64;
            }
        }
    }
    total
}

pub fn read_baseline(archive: &[u8]) -> u64 {
    let dec = zstd::stream::read::Decoder::new(archive).unwrap();
    let mut a = tar::Archive::new(dec);
    let mut buf = vec![0u8; 64 << 10];
    let mut total = 0;
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        loop {
            let n = e.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            total += n as u64;
        }
    }
    total
}
