//! Writes an archive with one experiment and one run (params, a metric, a file), then reads it
//! back and prints what it holds.
//!
//! ```text
//! cargo run --example write_read [OUT.mlar]
//! ```

use std::io::Read;

use mlflow_archive::format::model::{Experiment, MetricChunk, Point, Run, Tag};
use mlflow_archive::format::{ArchiveReader, Record, WriterBuilder};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "example.mlar".to_string());

    // Write. `finish()` is required: without the trailer it writes, a reader refuses the file.
    let out = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut w = WriterBuilder::new().build(out)?;
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "demo".into(),
        ..Default::default()
    })?;
    w.begin_run(&Run {
        run_id: "0f1e2d3c".into(),
        experiment_id: "1".into(),
        run_name: "first".into(),
        status: "FINISHED".into(),
        start_time: Some(1_700_000_000_000),
        end_time: Some(1_700_000_060_000),
        params: vec![Tag::new("alpha", "0.5")],
        ..Default::default()
    })?;
    let points = (0..100)
        .map(|step| Point {
            step,
            timestamp: 1_700_000_000_000 + step * 600,
            value: 1.0 / (1.0 + step as f64),
        })
        .collect();
    w.metric_chunk(&MetricChunk {
        key: "loss".into(),
        points,
        ..Default::default()
    })?;
    let text = b"trained on the demo set\n";
    w.artifact("notes/readme.txt", text.len() as u64, &text[..])?;
    w.end_unit()?;
    let (_, summary) = w.finish()?;
    println!(
        "wrote {path}: {} experiments, {} runs, {} points, {} bytes",
        summary.counts.experiments,
        summary.counts.runs,
        summary.counts.metric_points,
        summary.archive_bytes
    );

    // Read, front to back. Each unit's bytes are checked against its seal before `Sealed`.
    let input = std::io::BufReader::new(std::fs::File::open(&path)?);
    let mut r = ArchiveReader::new(input)?;
    while let Some(record) = r.next_record()? {
        match record {
            Record::Experiment(e) => println!("experiment {} {:?}", e.experiment_id, e.name),
            Record::Run(run) => println!("  run {} {:?}: {}", run.run_id, run.run_name, run.status),
            Record::MetricChunk(c) => println!("    metric {}: {} points", c.key, c.points.len()),
            Record::Artifact(a) => {
                let mut body = String::new();
                r.body().read_to_string(&mut body)?;
                println!("    file {} ({} bytes): {body:?}", a.path, a.size);
            }
            Record::Sealed(s) => println!("  {:?}: sealed, every byte checked", s.unit),
            Record::End(t) => println!("trailer: {} runs", t.counts.runs),
            _ => {}
        }
    }
    Ok(())
}
