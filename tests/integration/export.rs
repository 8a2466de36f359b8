//! `export-experiment` against a real server: the archive holds exactly what the server holds,
//! field by field, point by point and byte by byte, with parents before children.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::format::model::{MetricChunk, Point};
use mlflow_archive::mlflow::types::{KeyValue, Metric, ModelOutput};
use mlflow_archive::mlflow::{ArtifactRoot, Client, CreateLoggedModel, CreateRun, UpdateRun};

use crate::format_util::{Item, read_items};
use crate::live_pair;
use crate::util::{cli, client, output, unique};

async fn run(c: &Client, exp: &str, name: &str, parent: Option<&str>, start: i64) -> String {
    let mut tags = vec![KeyValue::new("mlflow.user", "alice")];
    if let Some(p) = parent {
        tags.push(KeyValue::new("mlflow.parentRunId", p));
    }
    c.create_run(&CreateRun {
        experiment_id: exp.to_string(),
        run_name: Some(name.into()),
        start_time: Some(start),
        tags,
        ..CreateRun::default()
    })
    .await
    .unwrap()
    .info
    .run_id
}

#[tokio::test]
async fn an_exported_experiment_holds_everything_the_server_holds() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let name = unique("export");
    let exp = c
        .create_experiment(
            &name,
            None,
            &[KeyValue::new("mlflow.note.content", "to export")],
        )
        .await
        .unwrap();
    // A child that starts before its parent (so search order puts it first), a grandchild, a
    // deleted run, a long history with NaN and repeated steps, odd artifact names, a logged model.
    let child = run(&c, &exp, "child", None, 1_000).await;
    let parent = run(&c, &exp, "parent", None, 2_000).await;
    c.set_run_tag(&child, "mlflow.parentRunId", &parent)
        .await
        .unwrap();
    let grandchild = run(&c, &exp, "grandchild", Some(&child), 3_000).await;
    let deleted = run(&c, &exp, "deleted", None, 4_000).await;
    let points: Vec<Metric> = (0..30_100)
        .map(|i| Metric {
            key: "loss/train".into(),
            value: if i == 7 { f64::NAN } else { (i as f64).sqrt() },
            timestamp: 1_000 + i,
            step: i / 3,
            ..Metric::default()
        })
        .collect();
    c.log_batch(&child, &points, &[KeyValue::new("alpha", "0.5")], &[])
        .await
        .unwrap();
    c.update_run(&UpdateRun {
        run_id: child.clone(),
        status: Some("FAILED".into()),
        end_time: Some(9_999),
        run_name: None,
    })
    .await
    .unwrap();
    let root = ArtifactRoot::parse(&c.get_run(&child).await.unwrap().info.artifact_uri).unwrap();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("model/MLmodel", b"run_id: x\n".to_vec()),
        ("d/é f.txt", vec![7u8; 70_000]),
    ];
    for (p, d) in &files {
        c.upload_artifact_bytes(&root, p, Bytes::from(d.clone()))
            .await
            .unwrap();
    }
    let lm = c
        .create_logged_model(&CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("m".into()),
            source_run_id: Some(parent.clone()),
            params: vec![KeyValue::new("C", "1")],
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    c.upload_artifact_bytes(
        &lm.artifact_root().unwrap(),
        "MLmodel",
        Bytes::from_static(b"flavors: {}\n"),
    )
    .await
    .unwrap();
    c.log_outputs(
        &parent,
        &[ModelOutput {
            model_id: lm.info.model_id.clone(),
            step: 0,
        }],
    )
    .await
    .unwrap();
    c.delete_run(&deleted).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.mlar");
    for (flag, want_runs) in [(None, 3usize), (Some("--export-deleted-runs"), 4)] {
        let mut cmd = cli();
        cmd.args([
            "export-experiment",
            "--src-uri",
            &pair.src.uri,
            "--experiment",
            &name,
            "-o",
        ])
        .arg(&path);
        if let Some(f) = flag {
            cmd.arg(f);
        }
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let items = read_items(std::fs::File::open(&path).unwrap()).unwrap();
        let runs: Vec<&mlflow_archive::format::model::Run> = items
            .iter()
            .filter_map(|i| match i {
                Item::Run(r) => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(runs.len(), want_runs);
        // Parents before children, whatever the search order.
        let pos = |id: &str| runs.iter().position(|r| r.run_id == id).unwrap();
        assert!(pos(&parent) < pos(&child) && pos(&child) < pos(&grandchild));
        // Every run record equals the server's run.
        for r in &runs {
            let server = c.get_run(&r.run_id).await.unwrap();
            assert_eq!(
                **r,
                mlflow_archive::transfer::map::run(&server),
                "run {}",
                r.run_id
            );
        }
        assert_eq!(runs.iter().any(|r| r.run_id == deleted), flag.is_some());
    }

    // The last archive (with deleted runs), in detail.
    let items = read_items(std::fs::File::open(&path).unwrap()).unwrap();
    let Item::Experiment(e) = &items[0] else {
        panic!("experiment first")
    };
    assert_eq!(
        *e,
        mlflow_archive::transfer::map::experiment(&c.get_experiment(&exp).await.unwrap())
    );
    let mut history: Vec<Point> = Vec::new();
    let mut artifacts: HashMap<String, Vec<u8>> = HashMap::new();
    let mut current = String::new();
    for it in &items {
        match it {
            Item::Run(r) => current = r.run_id.clone(),
            Item::Chunk(MetricChunk { key, points, .. }) if current == child => {
                assert_eq!(key, "loss/train");
                history.extend(points.iter().copied());
            }
            Item::Artifact(p, d) if current == child => {
                artifacts.insert(p.clone(), d.clone());
            }
            Item::LoggedModel(m) => {
                assert_eq!(m.model_id, lm.info.model_id);
                assert_eq!(m.source_run_id, parent);
                current = m.model_id.clone();
            }
            Item::Artifact(p, d) if current == lm.info.model_id => {
                assert_eq!(
                    (p.as_str(), d.as_slice()),
                    ("MLmodel", &b"flavors: {}\n"[..])
                );
            }
            _ => {}
        }
    }
    let server: Vec<Metric> = c
        .metric_history(&child, "loss/train", None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .concat();
    let want: Vec<Point> = server
        .iter()
        .map(|m| Point {
            step: m.step,
            timestamp: m.timestamp,
            value: m.value,
        })
        .collect();
    assert_eq!(history.len(), 30_100);
    assert_eq!(history, want, "the whole history, in the server's order");
    assert_eq!(artifacts.len(), files.len());
    for (p, d) in &files {
        assert_eq!(artifacts[*p], *d, "{p}");
    }
    let lm_pos = items
        .iter()
        .position(|i| matches!(i, Item::LoggedModel(_)))
        .unwrap();
    let parent_pos = items
        .iter()
        .position(|i| matches!(i, Item::Run(r) if r.run_id == parent))
        .unwrap();
    assert!(parent_pos < lm_pos, "a logged model follows its source run");
}

#[tokio::test]
async fn export_to_stdout_pipes_into_verify_and_a_missing_experiment_fails_cleanly() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let name = unique("pipe");
    let exp = c.create_experiment(&name, None, &[]).await.unwrap();
    run(&c, &exp, "r", None, 1).await;
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &exp,
        "-o",
        "-",
    ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let items = read_items(&out.stdout[..]).unwrap();
    assert_eq!(
        items.iter().filter(|i| matches!(i, Item::Run(_))).count(),
        1
    );

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        "no such experiment",
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("\"no such experiment\" not found"),
        "{stderr}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing is left behind"
    );
}

/// `--notebook-formats`. The runs and artifacts are on a real MLflow server; the Databricks
/// workspace API (`GET api/2.0/workspace/export`) cannot run here, so a proxy in front of the
/// server answers that one endpoint with a fixed notebook: a fake, for that endpoint only.
#[tokio::test]
async fn notebook_formats_add_the_runs_notebooks_and_say_when_there_are_none() {
    use crate::util::proxy::{Fault, FaultProxy};
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let name = unique("notebooks");
    let exp = c.create_experiment(&name, None, &[]).await.unwrap();
    let plain = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            run_name: Some("from-a-script".into()),
            ..CreateRun::default()
        })
        .await
        .unwrap()
        .info
        .run_id;
    let dir = tempfile::tempdir().unwrap();
    let export = |uri: &str, formats: &str, file: &str| {
        let mut cmd = cli();
        cmd.args([
            "export-experiment",
            "--src-uri",
            uri,
            "--experiment",
            &name,
            "--notebook-formats",
            formats,
            "-o",
        ])
        .arg(dir.path().join(file));
        output(cmd)
    };

    // No run comes from a notebook (as on any server but Databricks): a note, no files.
    let out = export(&pair.src.uri, "SOURCE", "none.mlar").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("no exported run was logged from a Databricks notebook"),
        "{stderr}"
    );

    let nb = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            run_name: Some("from-a-notebook".into()),
            tags: vec![
                KeyValue::new(
                    "mlflow.databricks.notebookPath",
                    "/Users/ann@example.com/train nb",
                ),
                KeyValue::new("mlflow.databricks.notebookRevisionID", "1700000000123"),
            ],
            ..CreateRun::default()
        })
        .await
        .unwrap()
        .info
        .run_id;

    // A run names a notebook the server cannot give (no workspace API): the export completes and
    // a warning names the run, the notebook and the cause.
    let out = export(&pair.src.uri, "SOURCE", "failed.mlar").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: run {nb}: notebook \"/Users/ann@example.com/train nb\" as SOURCE"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("notebooks: 0 files written for 1 runs")
            && stderr.contains("1 could not be exported"),
        "{stderr}"
    );

    // The library returns the same in its report.
    let mut opts = mlflow_archive::transfer::export::ExportOptions::default();
    opts.notebook_formats = vec![mlflow_archive::mlflow::api::workspace::NotebookFormat::Source];
    let e = c.get_experiment(&exp).await.unwrap();
    let mut sink = mlflow_archive::transfer::archive_sink::ArchiveSink::start(
        std::io::sink(),
        mlflow_archive::format::WriterBuilder::new(),
    );
    let report = mlflow_archive::transfer::export::export_experiments(
        &c,
        std::slice::from_ref(&e),
        &mut sink,
        &opts,
    )
    .await
    .unwrap();
    sink.finish().await.unwrap();
    let notebooks = &report.notebooks;
    assert_eq!((notebooks.runs, notebooks.exported), (1, 0), "{report:?}");
    assert_eq!(notebooks.failures.len(), 1, "{report:?}");
    assert!(
        notebooks.failures[0].starts_with(&format!("run {nb}: notebook ")),
        "{report:?}"
    );

    // The workspace API (faked) answers: each format becomes an artifact, with a manifest.
    let proxy = FaultProxy::start(&pair.src.uri).await;
    proxy.route(
        "/api/2.0/workspace/export",
        Fault::Reply(
            200,
            "application/json",
            r#"{"content":"IyBEYXRhYnJpY2tzIG5vdGVib29rIHNvdXJjZQpwcmludCgnaGknKQo=","file_type":"py"}"#,
        ),
    );
    let out = export(&proxy.uri, "source,HTML", "nb.mlar").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("notebooks: 2 files written for 1 runs"),
        "{stderr}"
    );
    let asked: Vec<String> = proxy
        .request_lines()
        .into_iter()
        .filter(|l| l.contains("workspace/export"))
        .collect();
    assert_eq!(asked.len(), 2, "{asked:?}");
    for (l, f) in asked.iter().zip(["SOURCE", "HTML"]) {
        assert!(l.contains(&format!("format={f}")), "{l}");
        assert!(
            l.contains("revision.revision_timestamp=1700000000123"),
            "{l}"
        );
        assert!(
            l.contains("path=%2FUsers%2Fann%40example.com%2Ftrain+nb"),
            "{l}"
        );
    }
    let items = read_items(std::fs::File::open(dir.path().join("nb.mlar")).unwrap()).unwrap();
    let mut current = String::new();
    let mut files: HashMap<String, Vec<(String, Vec<u8>)>> = HashMap::new();
    for i in items {
        match i {
            Item::Run(r) => current = r.run_id,
            Item::Artifact(p, d) => files.entry(current.clone()).or_default().push((p, d)),
            _ => {}
        }
    }
    assert!(
        !files.contains_key(&plain),
        "a run without a notebook gets none"
    );
    let got = &files[&nb];
    let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        names,
        [
            "notebooks/train nb.source",
            "notebooks/train nb.html",
            "notebooks/manifest.json"
        ]
    );
    assert_eq!(got[0].1, b"# Databricks notebook source\nprint('hi')\n");
    let manifest: serde_json::Value = serde_json::from_slice(&got[2].1).unwrap();
    assert_eq!(
        manifest,
        serde_json::json!({
            "mlflow.databricks.notebookPath": "/Users/ann@example.com/train nb",
            "mlflow.databricks.notebookRevisionID": "1700000000123",
            "formats": ["SOURCE", "HTML"],
        })
    );

    // A bad format is refused before anything is read.
    let out = export(&pair.src.uri, "SOURCE,PDF", "bad.mlar").await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("PDF"), "{stderr}");
}
