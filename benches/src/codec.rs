//! Codec throughput against a baseline of plain tar + zstd (the same crates, the same level) on
//! the same bytes: many small members, and a few large ones. Run from benches/:
//!
//! ```sh
//! cargo bench --bench codec
//! ```

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

mod common;
use common::{read_baseline, read_ours, sets, write_baseline, write_ours};

fn codec(c: &mut Criterion) {
    for set in sets() {
        let mut g = c.benchmark_group(set.name);
        g.throughput(Throughput::Bytes(set.bytes()));
        g.sample_size(10);
        g.measurement_time(Duration::from_secs(8));
        g.bench_function("write/mlflow-archive", |b| {
            b.iter(|| black_box(write_ours(&set)))
        });
        g.bench_function("write/tar+zstd", |b| {
            b.iter(|| black_box(write_baseline(&set)))
        });
        let ours = write_ours(&set);
        let base = write_baseline(&set);
        assert_eq!(read_ours(&ours), set.bytes());
        assert_eq!(read_baseline(&base), set.bytes());
        g.bench_function("read/mlflow-archive", |b| {
            b.iter(|| black_box(read_ours(&ours)))
        });
        g.bench_function("read/tar+zstd", |b| {
            b.iter(|| black_box(read_baseline(&base)))
        });
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
