//! Helpers for the archive format tests: a realistic sample archive, reading everything back,
//! and raw tar/zstd manipulation for corruption tests.

use std::io::Read;

use mlflow_archive::format::model::{
    Alias, Dataset, DatasetInput, DatasetRecords, Experiment, LoggedModel, MetricChunk,
    ModelOutput, ModelVersion, Permissions, Point, RegisteredModel, Run, Source, Tag, Trace,
};
use mlflow_archive::format::{ArchiveReader, ArchiveWriter, Record, WriterBuilder};

/// Everything an archive can hold, in the order a writer emits it.
#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Experiment(Experiment),
    Run(Run),
    Chunk(MetricChunk),
    Artifact(String, Vec<u8>),
    LoggedModel(LoggedModel),
    Model(RegisteredModel),
    Version(ModelVersion),
    Trace(Trace),
    Dataset(Dataset),
    Records(DatasetRecords),
    /// An experiment whose unit stays open (for its permissions), until [`Item::EndUnit`].
    OpenExperiment(Experiment),
    /// The permissions of the open experiment or registered model (1.2).
    Permissions(Permissions),
    EndUnit,
}

pub fn run(id: &str, exp: &str, parent: Option<&str>) -> Run {
    let mut tags = vec![
        Tag::new("mlflow.runName", format!("run {id}")),
        Tag::new("mlflow.user", "alice"),
    ];
    if let Some(p) = parent {
        tags.push(Tag::new("mlflow.parentRunId", p));
    }
    Run {
        run_id: id.into(),
        experiment_id: exp.into(),
        run_name: format!("run {id}"),
        status: "FINISHED".into(),
        start_time: Some(1_600_000_000_000),
        end_time: Some(1_600_000_100_000),
        lifecycle_stage: "active".into(),
        artifact_uri: format!("mlflow-artifacts:/{exp}/{id}/artifacts"),
        params: vec![Tag::new("alpha", "0.5"), Tag::new("empty", "")],
        tags,
        ..Run::default()
    }
}

/// A sample covering every record kind, odd names and values, a gap in versions, and a body of a
/// few MiB.
pub fn sample_items() -> Vec<Item> {
    let big: Vec<u8> = (0..(3 << 20) + 11)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let long_name = format!("deep/{}/file with spaces é.txt", "sub-directory".repeat(12));
    let mut parent = run("aaaa0000000000000000000000000001", "1", None);
    parent.dataset_inputs = vec![DatasetInput {
        tags: vec![Tag::new("mlflow.data.context", "training")],
        name: "wine".into(),
        digest: "abc".into(),
        source_type: "http".into(),
        source: r#"{"url": "http://x/y.csv"}"#.into(),
        schema: "{}".into(),
        profile: String::new(),
    }];
    parent.model_outputs = vec![ModelOutput {
        model_id: "m-0001".into(),
        step: 3,
    }];
    let mut deleted = run(
        "cccc0000000000000000000000000003",
        "2",
        Some("aaaa0000000000000000000000000001"),
    );
    deleted.lifecycle_stage = "deleted".into();
    deleted.status = "FAILED".into();
    deleted.dataset_inputs = vec![DatasetInput {
        name: "qa-set".into(),
        digest: "d341e6f6".into(),
        source_type: "mlflow_evaluation_dataset".into(),
        source: r#"{"dataset_id": "d-0001"}"#.into(),
        ..DatasetInput::default()
    }];
    vec![
        Item::Experiment(Experiment {
            experiment_id: "1".into(),
            name: "team/experiment one".into(),
            artifact_location: "mlflow-artifacts:/1".into(),
            lifecycle_stage: "active".into(),
            creation_time: Some(1),
            last_update_time: Some(2),
            tags: vec![Tag::new("mlflow.note.content", "a description ✓")],
            ..Experiment::default()
        }),
        Item::Experiment(Experiment {
            experiment_id: "2".into(),
            name: "second".into(),
            ..Experiment::default()
        }),
        Item::Dataset(dataset("d-0001", &["1", "2"])),
        Item::Records(records(0..3)),
        Item::Records(records(3..5)),
        Item::EndUnit,
        Item::Run(parent),
        Item::Chunk(MetricChunk {
            key: "loss/train".into(),
            points: (0..5000)
                .map(|i| Point {
                    step: i / 2,
                    timestamp: 1_600_000_000_000 + i,
                    value: 1.0 / (i as f64 + 1.0),
                })
                .collect(),
            ..MetricChunk::default()
        }),
        Item::Chunk(MetricChunk {
            key: "odd values".into(),
            model_id: Some("m-0001".into()),
            dataset_name: Some("wine".into()),
            dataset_digest: Some("abc".into()),
            points: vec![
                Point {
                    step: 0,
                    timestamp: 5,
                    value: f64::NAN,
                },
                Point {
                    step: 1,
                    timestamp: 5,
                    value: f64::INFINITY,
                },
                Point {
                    step: 2,
                    timestamp: 5,
                    value: f64::NEG_INFINITY,
                },
                Point {
                    step: 3,
                    timestamp: 5,
                    value: -0.0,
                },
                Point {
                    step: 3,
                    timestamp: 6,
                    value: 1e-310,
                },
            ],
        }),
        Item::Artifact("empty.txt".into(), Vec::new()),
        Item::Artifact(
            "model/MLmodel".into(),
            b"run_id: aaaa\nflavors: {}\n".to_vec(),
        ),
        Item::Artifact(long_name, b"long".to_vec()),
        Item::Artifact("big.bin".into(), big),
        Item::EndUnit,
        Item::Run(run(
            "bbbb0000000000000000000000000002",
            "1",
            Some("aaaa0000000000000000000000000001"),
        )),
        Item::EndUnit,
        Item::Run(deleted),
        Item::Chunk(MetricChunk {
            key: "m".into(),
            points: vec![Point {
                step: 0,
                timestamp: 0,
                value: 0.0,
            }],
            ..MetricChunk::default()
        }),
        Item::EndUnit,
        Item::LoggedModel(LoggedModel {
            model_id: "m-0001".into(),
            experiment_id: "1".into(),
            name: "clf".into(),
            model_type: "sklearn".into(),
            source_run_id: "aaaa0000000000000000000000000001".into(),
            status: "LOGGED_MODEL_READY".into(),
            params: vec![Tag::new("C", "1")],
            tags: vec![Tag::new("t", "v")],
            ..LoggedModel::default()
        }),
        Item::Artifact("MLmodel".into(), b"flavors: {}\n".to_vec()),
        Item::EndUnit,
        Item::Model(RegisteredModel {
            name: "catalog.schema/model with spaces".into(),
            description: "desc".into(),
            tags: vec![Tag::new("owner", "ml")],
            aliases: vec![Alias {
                alias: "champion".into(),
                version: 10,
            }],
            ..RegisteredModel::default()
        }),
        Item::Version(version(1, "aaaa0000000000000000000000000001")),
        Item::Version(version(2, "bbbb0000000000000000000000000002")),
        Item::Version(version(3, "aaaa0000000000000000000000000001")),
        Item::Version(version(10, "aaaa0000000000000000000000000001")),
        Item::EndUnit,
        Item::Model(RegisteredModel {
            name: "empty model".into(),
            ..RegisteredModel::default()
        }),
        Item::EndUnit,
        Item::Model(prompt("qa")),
        Item::Version(prompt_version(1, "Answer {{question}} briefly.")),
        Item::Version(prompt_version(3, "Answer {{question}}.")),
        Item::EndUnit,
        Item::Trace(trace("tr-0001", "1", Some("aaaa0000000000000000000000000001"))),
        Item::Artifact(
            "traces.json".into(),
            br#"{"spans": [{"name": "root", "attributes": {"img": ""mlflow-attachment://c50f""}}]}"#
                .to_vec(),
        ),
        Item::Artifact("attachments/c50f".into(), b"\x89PNG".to_vec()),
        Item::EndUnit,
        Item::Trace(Trace {
            state: "ERROR".into(),
            ..trace("tr-0002", "2", None)
        }),
        Item::EndUnit,
    ]
}

/// [`sample_items`] without what format 1.1 added (traces and datasets), for ends that hold
/// only 1.0's kinds (the Python tool's layouts).
pub fn sample_items_1_0() -> Vec<Item> {
    let mut out = Vec::new();
    let mut skipping = false;
    for it in sample_items() {
        match it {
            Item::Trace(_) | Item::Dataset(_) => skipping = true,
            Item::EndUnit if skipping => skipping = false,
            _ if skipping => {}
            Item::Run(mut r) => {
                r.dataset_inputs
                    .retain(|d| d.source_type != "mlflow_evaluation_dataset");
                out.push(Item::Run(r));
            }
            other => out.push(other),
        }
    }
    out
}

/// A trace of experiment `exp` (made in `run`), with two assessments.
pub fn trace(id: &str, exp: &str, run: Option<&str>) -> Trace {
    let mut metadata = vec![Tag::new("mlflow.trace_schema.version", "3")];
    if let Some(r) = run {
        metadata.push(Tag::new("mlflow.sourceRun", r));
    }
    Trace {
        trace_id: id.into(),
        experiment_id: exp.into(),
        request_time: Some(1_700_000_000_000),
        execution_duration: Some(37),
        state: "OK".into(),
        client_request_id: "req-1".into(),
        request_preview: "{\"q\": 1}".into(),
        response_preview: String::new(),
        trace_metadata: metadata,
        tags: vec![Tag::new("mlflow.traceName", "answer")],
        assessments: vec![
            serde_json::json!({"assessment_id": "a-1", "assessment_name": "quality",
                "feedback": {"value": 0.8}, "valid": false}),
            serde_json::json!({"assessment_id": "a-2", "assessment_name": "quality",
                "feedback": {"value": 0.9}, "overrides": "a-1", "valid": true}),
        ],
    }
}

/// An evaluation dataset linked to `experiments`.
pub fn dataset(id: &str, experiments: &[&str]) -> Dataset {
    Dataset {
        dataset_id: id.into(),
        name: "qa-set".into(),
        tags: vec![Tag::new("mlflow.user", "alice")],
        experiment_ids: experiments.iter().map(|e| e.to_string()).collect(),
        profile: "{\"num_records\": 5}".into(),
        created_time: Some(1_700_000_000_000),
        ..Dataset::default()
    }
}

/// Dataset records with `inputs` numbered by `range`.
pub fn records(range: std::ops::Range<u32>) -> DatasetRecords {
    DatasetRecords {
        records: range
            .map(|i| {
                serde_json::json!({"dataset_record_id": format!("dr-{i}"),
                    "inputs": {"question": format!("q{i} ✓")}, "expectations": {"answer": i},
                    "tags": {"mlflow.user": "alice"}})
            })
            .collect(),
    }
}

/// A prompt: a registered model tagged as one.
pub fn prompt(name: &str) -> RegisteredModel {
    RegisteredModel {
        name: name.into(),
        tags: vec![Tag::new("mlflow.prompt.is_prompt", "true")],
        aliases: vec![Alias {
            alias: "production".into(),
            version: 3,
        }],
        ..RegisteredModel::default()
    }
}

/// A version of a prompt.
pub fn prompt_version(n: u64, template: &str) -> ModelVersion {
    ModelVersion {
        version: n,
        source: "dummy-source".into(),
        status: "READY".into(),
        tags: vec![
            Tag::new("mlflow.prompt.is_prompt", "true"),
            Tag::new("_mlflow_prompt_type", "text"),
            Tag::new("mlflow.prompt.text", template),
        ],
        ..ModelVersion::default()
    }
}

pub fn version(n: u64, run_id: &str) -> ModelVersion {
    ModelVersion {
        version: n,
        description: format!("v{n}"),
        current_stage: if n == 3 {
            "Production".into()
        } else {
            "None".into()
        },
        source: format!("runs:/{run_id}/model"),
        run_id: run_id.into(),
        status: "READY".into(),
        tags: vec![Tag::new("n", n.to_string())],
        ..ModelVersion::default()
    }
}

/// Writes items into an archive.
pub fn write_items(items: &[Item], builder: WriterBuilder) -> Vec<u8> {
    let mut w: ArchiveWriter<Vec<u8>> = builder
        .source(Source {
            tracking_uri: Some("http://127.0.0.1:5000".into()),
            scope: Some("test".into()),
        })
        .build(Vec::new())
        .unwrap();
    for it in items {
        match it {
            Item::Experiment(e) => w.experiment(e).unwrap(),
            Item::Run(r) => w.begin_run(r).unwrap(),
            Item::Chunk(c) => w.metric_chunk(c).unwrap(),
            Item::Artifact(p, d) => w.artifact(p, d.len() as u64, &d[..]).unwrap(),
            Item::LoggedModel(m) => w.begin_logged_model(m).unwrap(),
            Item::Model(m) => w.begin_registered_model(m).unwrap(),
            Item::Version(v) => w.model_version(v).unwrap(),
            Item::Trace(t) => w.begin_trace(t).unwrap(),
            Item::Dataset(d) => w.begin_dataset(d).unwrap(),
            Item::Records(c) => w.dataset_records(c).unwrap(),
            Item::OpenExperiment(e) => w.begin_experiment(e).unwrap(),
            Item::Permissions(p) => w.permissions(p).unwrap(),
            Item::EndUnit => w.end_unit().unwrap(),
        }
    }
    w.finish().unwrap().0
}

/// Reads every item back (experiment units come back as the record alone, like they are written).
pub fn read_items<R: Read>(input: R) -> mlflow_archive::Result<Vec<Item>> {
    let mut r = ArchiveReader::new(input)?;
    let mut out = Vec::new();
    let mut ended = false;
    while let Some(rec) = r.next_record()? {
        match rec {
            Record::Experiment(e) => out.push(Item::Experiment(e)),
            Record::Run(x) => out.push(Item::Run(x)),
            Record::MetricChunk(c) => out.push(Item::Chunk(c)),
            Record::Artifact(a) => {
                let mut body = Vec::new();
                r.body()
                    .read_to_end(&mut body)
                    .map_err(|e| mlflow_archive::Error::Io {
                        what: "reading an artifact body".into(),
                        source: e,
                    })?;
                assert_eq!(body.len() as u64, a.size);
                out.push(Item::Artifact(a.path, body));
            }
            Record::LoggedModel(m) => out.push(Item::LoggedModel(m)),
            Record::RegisteredModel(m) => out.push(Item::Model(m)),
            Record::ModelVersion(v) => out.push(Item::Version(v)),
            Record::Trace(t) => out.push(Item::Trace(t)),
            Record::Dataset(d) => out.push(Item::Dataset(d)),
            Record::DatasetRecords(c) => out.push(Item::Records(c)),
            Record::Permissions(p) => out.push(Item::Permissions(p)),
            Record::Sealed(s) => {
                if !matches!(s.unit, mlflow_archive::format::path::UnitId::Experiment(_)) {
                    out.push(Item::EndUnit)
                }
            }
            Record::End(_) => ended = true,
            other => panic!("a record this test does not know: {other:?}"),
        }
    }
    assert!(ended, "next_record returned None before End");
    Ok(out)
}

/// The decompressed tar stream of an archive.
pub fn untar(archive: &[u8]) -> Vec<u8> {
    zstd::decode_all(archive).unwrap()
}

/// Compresses a tar stream the way an archive is (so tar-level damage reaches our checks).
pub fn retar(tar: &[u8]) -> Vec<u8> {
    zstd::encode_all(tar, 3).unwrap()
}

/// Offsets of every member's header in a tar stream, and of the end marker.
pub fn member_offsets(tar: &[u8]) -> Vec<(u64, String)> {
    let mut a = tar::Archive::new(tar);
    let mut out: Vec<(u64, String)> = a
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (e.raw_header_position(), name)
        })
        .collect();
    let end = tar.len() as u64 - 1024;
    out.push((end, "<end of archive>".into()));
    out
}
