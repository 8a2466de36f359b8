//! Codec throughput against a baseline of plain tar + zstd (the same crates, the same level) on
//! the same bytes: many small members, and a few large ones. Run from benches/:
//!
//! ```sh
//! cargo bench --bench codec
//! ```

use std::hint::black_box;
use std::io::{Read, Write};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mlflow_archive::format::model::{Experiment, Run};
use mlflow_archive::format::{ArchiveReader, Record, WriterBuilder};

const LEVEL: i32 = 3;

/// Deterministic, moderately compressible bytes (text-like).
fn data(len: usize, seed: u64) -> Vec<u8> {
    let alphabet = b"abcdefghij klmnop,\n0123456789.";
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            alphabet[((x >> 33) % alphabet.len() as u64) as usize]
        })
        .collect()
}

struct Set {
    name: &'static str,
    files: Vec<(String, Vec<u8>)>,
}

impl Set {
    fn bytes(&self) -> u64 {
        self.files.iter().map(|(_, d)| d.len() as u64).sum()
    }
}

fn sets() -> Vec<Set> {
    vec![
        Set {
            name: "10000 x 1 KiB",
            files: (0..10_000).map(|i| (format!("dir{}/file-{i}.txt", i % 50), data(1024, i))).collect(),
        },
        Set {
            name: "4 x 16 MiB",
            files: (0..4).map(|i| (format!("model/part-{i}.bin"), data(16 << 20, 1000 + i))).collect(),
        },
    ]
}

fn write_ours(set: &Set) -> Vec<u8> {
    let mut w = WriterBuilder::new().level(LEVEL).build(Vec::with_capacity(1 << 20)).unwrap();
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

fn write_baseline(set: &Set) -> Vec<u8> {
    let enc = zstd::stream::write::Encoder::new(Vec::with_capacity(1 << 20), LEVEL).unwrap();
    let mut b = tar::Builder::new(enc);
    for (p, d) in &set.files {
        let mut h = tar::Header::new_gnu();
        h.set_size(d.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, format!("runs/r1/artifacts/{p}"), &d[..]).unwrap();
    }
    let mut enc = b.into_inner().unwrap();
    enc.flush().unwrap();
    enc.finish().unwrap()
}

fn read_ours(archive: &[u8]) -> u64 {
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

fn read_baseline(archive: &[u8]) -> u64 {
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

fn codec(c: &mut Criterion) {
    for set in sets() {
        let mut g = c.benchmark_group(set.name);
        g.throughput(Throughput::Bytes(set.bytes()));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));
        g.bench_function("write/mlflow-archive", |b| b.iter(|| black_box(write_ours(&set))));
        g.bench_function("write/tar+zstd", |b| b.iter(|| black_box(write_baseline(&set))));
        let ours = write_ours(&set);
        let base = write_baseline(&set);
        assert_eq!(read_ours(&ours), set.bytes());
        assert_eq!(read_baseline(&base), set.bytes());
        g.bench_function("read/mlflow-archive", |b| b.iter(|| black_box(read_ours(&ours))));
        g.bench_function("read/tar+zstd", |b| b.iter(|| black_box(read_baseline(&base))));
        g.finish();
        eprintln!(
            "{}: archive {} bytes, baseline {} bytes, content {} bytes",
            set.name,
            ours.len(),
            base.len(),
            set.bytes()
        );
    }
}

criterion_group!(benches, codec);
criterion_main!(benches);
