//! The exporter against the in-memory server: what it holds is written to an archive in memory
//! and read back with the archive's own reader, parents first, every point, byte and version.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use super::{ExportOptions, export_all};
use crate::format::{ArchiveReader, Record, WriterBuilder};
use crate::mlflow::types::{KeyValue, Metric};
use crate::mlflow::{ArtifactRoot, CreateModelVersion, CreateRun, UpdateRun};
use crate::transfer::archive_sink::ArchiveSink;
use crate::transfer::destination::Destination;
use crate::transfer::memory::MemoryServer;

const POINTS: i64 = 2_500;

/// An archive's bytes, shared with the writer thread.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// An experiment with a parent run (2,500 points of "loss", two files, one in a directory) and a
/// child run that starts before it (so the exporter must hold the child), and a registered model
/// whose version 2 was deleted.
async fn server() -> (MemoryServer, String, String) {
    let mem = MemoryServer::default();
    let exp = mem
        .create_experiment("exp", &[KeyValue::new("team", "a")])
        .await
        .unwrap();
    let run = |name: &str, start: i64, tags: Vec<KeyValue>| CreateRun {
        experiment_id: exp.clone(),
        run_name: Some(name.into()),
        start_time: Some(start),
        tags,
        ..CreateRun::default()
    };
    let parent = mem.create_run(&run("parent", 2_000, vec![])).await.unwrap();
    let parent = parent.info.run_id;
    let child = mem
        .create_run(&run(
            "child",
            1_000,
            vec![KeyValue::new("mlflow.parentRunId", &parent)],
        ))
        .await
        .unwrap();
    let child = child.info.run_id;
    let points: Vec<Metric> = (0..POINTS)
        .map(|i| Metric {
            key: "loss".into(),
            value: i as f64 / 2.0,
            timestamp: 5_000 + i,
            step: i,
            ..Metric::default()
        })
        .collect();
    mem.log_batch(&parent, &points, &[KeyValue::new("alpha", "1")], &[])
        .await
        .unwrap();
    let root = ArtifactRoot::parse(&mem.get_run(&parent).await.unwrap().info.artifact_uri).unwrap();
    for (path, data) in [
        ("a.txt", &b"hello"[..]),
        ("dir/b.bin", &[0u8, 1, 2, 255][..]),
    ] {
        mem.upload_bytes(&root, path, Bytes::from_static(data))
            .await
            .unwrap();
    }
    for id in [&parent, &child] {
        mem.update_run(&UpdateRun {
            run_id: id.clone(),
            status: Some("FINISHED".into()),
            end_time: Some(9_000),
            ..UpdateRun::default()
        })
        .await
        .unwrap();
    }
    mem.create_registered_model("m", Some("a model"), &[])
        .await
        .unwrap();
    for _ in 0..3 {
        mem.create_model_version(&CreateModelVersion {
            name: "m".into(),
            source: format!("runs:/{parent}/model"),
            run_id: Some(parent.clone()),
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    mem.delete_model_version("m", "2").await.unwrap();
    (mem, parent, child)
}

#[tokio::test]
async fn an_experiment_in_memory_is_exported_parents_first_with_every_point_file_and_version() {
    let (mem, parent, child) = server().await;
    let out = Shared::default();
    let mut sink = ArchiveSink::start(out.clone(), WriterBuilder::new());
    let opts = ExportOptions {
        history_page: Some(1_000),
        ..ExportOptions::default()
    };
    export_all(&mem, &mut sink, &opts).await.unwrap();
    sink.finish().await.unwrap();
    let bytes = out.0.lock().unwrap().clone();

    let mut reader = ArchiveReader::new(Cursor::new(bytes)).unwrap();
    let mut experiments = Vec::new();
    let mut runs = Vec::new();
    let mut points: BTreeMap<String, Vec<(i64, i64, f64)>> = BTreeMap::new();
    let mut files: BTreeMap<(String, String), Vec<u8>> = BTreeMap::new();
    let mut versions = Vec::new();
    let mut ended = false;
    while let Some(record) = reader.next_record().unwrap() {
        match record {
            Record::Experiment(e) => experiments.push((e.name, e.tags)),
            Record::Run(r) => runs.push((r.run_id, r.status, r.params)),
            Record::MetricChunk(c) => {
                let run = runs.last().unwrap().0.clone();
                points
                    .entry(format!("{run}/{}", c.key))
                    .or_default()
                    .extend(c.points.iter().map(|p| (p.step, p.timestamp, p.value)));
            }
            Record::Artifact(a) => {
                let mut data = Vec::new();
                reader.body().read_to_end(&mut data).unwrap();
                files.insert((runs.last().unwrap().0.clone(), a.path), data);
            }
            Record::ModelVersion(v) => versions.push(v.version),
            Record::End(t) => {
                assert_eq!(t.counts.runs, 2);
                assert_eq!(t.counts.metric_points, POINTS as u64);
                ended = true;
            }
            _ => {}
        }
    }
    assert!(ended, "the archive ends with its trailer");
    assert_eq!(
        experiments,
        vec![(
            "exp".to_string(),
            vec![crate::format::model::Tag::new("team", "a")]
        )]
    );
    let order: Vec<&str> = runs.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(order, [parent.as_str(), child.as_str()], "parent first");
    assert!(runs.iter().all(|r| r.1 == "FINISHED"));
    assert_eq!(
        runs[0].2,
        vec![crate::format::model::Tag::new("alpha", "1")]
    );
    let loss = &points[&format!("{parent}/loss")];
    assert_eq!(loss.len(), POINTS as usize);
    assert!(
        loss.iter()
            .enumerate()
            .all(|(i, p)| *p == (i as i64, 5_000 + i as i64, i as f64 / 2.0))
    );
    assert_eq!(points.len(), 1, "the child has no metrics");
    assert_eq!(
        files,
        BTreeMap::from([
            ((parent.clone(), "a.txt".into()), b"hello".to_vec()),
            ((parent.clone(), "dir/b.bin".into()), vec![0, 1, 2, 255]),
        ])
    );
    assert_eq!(versions, [1, 3], "every version kept, the gap too");
}

#[tokio::test]
async fn the_first_pass_lists_every_experiment_at_once_and_empty_ones_are_not_listed_again() {
    // One experiment with two runs and twelve empty ones: the listings before the first run
    // must not grow with the experiments (each is a round trip: at 100 ms each way, 2 per
    // experiment were most of a small export's wait before its first run).
    let (mem, parent, child) = server().await;
    for i in 0..12 {
        mem.create_experiment(&format!("empty-{i}"), &[])
            .await
            .unwrap();
    }
    let out = Shared::default();
    let mut sink = ArchiveSink::start(out.clone(), WriterBuilder::new());
    export_all(&mem, &mut sink, &ExportOptions::default())
        .await
        .unwrap();
    sink.finish().await.unwrap();
    let log = mem.log();
    let count = |name: &str| log.iter().filter(|c| **c == name).count();
    // The first pass's one listing of all 13, then the one experiment with runs.
    assert_eq!(count("runs"), 2, "{log:?}");
    // The first pass's one listing, and whether the server has any (one more).
    assert_eq!(count("logged_models"), 2, "{log:?}");

    let bytes = out.0.lock().unwrap().clone();
    let mut reader = ArchiveReader::new(Cursor::new(bytes)).unwrap();
    let (mut experiments, mut runs) = (0, Vec::new());
    while let Some(record) = reader.next_record().unwrap() {
        match record {
            Record::Experiment(_) => experiments += 1,
            Record::Run(r) => runs.push(r.run_id),
            _ => {}
        }
    }
    assert_eq!(experiments, 13, "every experiment, empty ones too");
    assert_eq!(runs, [parent, child]);
}
