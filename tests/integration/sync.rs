//! `sync` between fresh servers of their own: only what changed is read and written (new runs,
//! finished runs, tags set and deleted, deletions and restores, new versions and stages), a kill
//! in the middle is finished by the next sync with nothing twice, two destinations are kept
//! apart, and an incremental archive brings a third server to the same state.

use bytes::Bytes;
use mlflow_archive::mlflow::types::ModelOutput;
use mlflow_archive::mlflow::types::{KeyValue, Metric, Run};
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, CreateLoggedModel, CreateModelVersion, CreateRun, UpdateRun,
};

use crate::util::server::MlflowServer;
use crate::util::{cli, client, history, output, runs_of, unique};

fn report(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

async fn sync(src: &str, dst: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = cli();
    cmd.args(["sync", "--src-uri", src, "--dst-uri", dst, "--json"])
        .args(extra);
    report(&output(cmd).await)
}

async fn run(c: &Client, exp: &str, name: &str, tags: Vec<KeyValue>, points: i64) -> String {
    let r = c
        .create_run(&CreateRun {
            experiment_id: exp.to_string(),
            run_name: Some(name.into()),
            start_time: Some(1_700_000_000_000),
            tags,
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let id = r.info.run_id;
    log_points(c, &id, 0..points).await;
    let root = ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
    c.upload_artifact_bytes(&root, "a.txt", Bytes::from(format!("{name}\n")))
        .await
        .unwrap();
    id
}

async fn log_points(c: &Client, id: &str, steps: std::ops::Range<i64>) {
    let points: Vec<Metric> = steps
        .map(|j| Metric {
            key: "loss".into(),
            value: j as f64 * 0.25,
            timestamp: 1_700_000_000_000 + j,
            step: j,
            ..Metric::default()
        })
        .collect();
    c.log_batch(id, &points, &[KeyValue::new("p", "1")], &[])
        .await
        .unwrap();
}

async fn finish(c: &Client, id: &str) {
    c.update_run(&UpdateRun {
        run_id: id.to_string(),
        status: Some("FINISHED".into()),
        end_time: Some(1_700_000_100_000),
        run_name: None,
    })
    .await
    .unwrap();
}

/// The destination's active copies of source run `src` in experiment `name` (exactly one is
/// expected, whatever happened before).
fn copies<'a>(runs: &'a [Run], src: &str) -> Vec<&'a Run> {
    runs.iter()
        .filter(|r| {
            r.data
                .tags
                .iter()
                .any(|t| t.key == "mlflow_archive.source.run_id" && t.value == src)
                && r.info.lifecycle_stage == "active"
        })
        .collect()
}

/// The value of tag `key` of run `r`.
pub(crate) fn tag<'a>(r: &'a Run, key: &str) -> Option<&'a str> {
    r.data
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

fn n(v: &serde_json::Value, k: &str) -> u64 {
    v[k].as_u64().unwrap_or_else(|| panic!("{k} in {v}"))
}

#[tokio::test]
async fn sync_moves_only_what_changed_and_finishes_after_a_kill_into_two_destinations() {
    let servers =
        MlflowServer::start_fresh(&["sync-src", "sync-dst1", "sync-dst2", "sync-dst3"]).await;
    let Some(servers) = servers else {
        return;
    };
    let (a, b, c3, d) = (&servers[0], &servers[1], &servers[2], &servers[3]);
    let src = client(&a.uri);
    let dst = client(&b.uri);
    let name = unique("replica");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    let parent = run(
        &src,
        &exp,
        "parent",
        vec![KeyValue::new("keep", "1"), KeyValue::new("gone", "x")],
        5,
    )
    .await;
    finish(&src, &parent).await;
    let running = run(&src, &exp, "running", vec![], 10).await;
    // The running run has logged a model, whose files are still being written (PENDING).
    let lm = src
        .create_logged_model(&CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("net".into()),
            source_run_id: Some(running.clone()),
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    let lm_id = lm.info.model_id.clone();
    src.log_outputs(
        &running,
        &[ModelOutput {
            model_id: lm_id.clone(),
            step: 0,
        }],
    )
    .await
    .unwrap();
    let to_delete = run(&src, &exp, "to-delete", vec![], 3).await;
    finish(&src, &to_delete).await;
    let to_restore = run(&src, &exp, "to-restore", vec![], 3).await;
    finish(&src, &to_restore).await;
    src.delete_run(&to_restore).await.unwrap();
    let mut quiet = Vec::new();
    for i in 0..3 {
        let id = run(&src, &exp, &format!("quiet {i}"), vec![], 4).await;
        finish(&src, &id).await;
        quiet.push(id);
    }
    let model = unique("replica-model");
    src.create_registered_model(&model, None, &[])
        .await
        .unwrap();
    src.set_registered_model_tag(&model, "team", "a")
        .await
        .unwrap();
    src.create_model_version(&CreateModelVersion {
        name: model.clone(),
        source: format!("runs:/{parent}/a.txt"),
        run_id: Some(parent.clone()),
        ..CreateModelVersion::default()
    })
    .await
    .unwrap();

    src.set_model_version_tag(&model, "1", "old", "x")
        .await
        .unwrap();
    src.set_registered_model_alias(&model, "champion", "1")
        .await
        .unwrap();

    // The first sync is a full copy.
    let first = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(n(&first, "runs_new"), 7, "{first}");
    assert_eq!(n(&first, "versions_new"), 1, "{first}");

    // Nothing changed but the running run (read again: it may have new points without any
    // other sign): a few requests per experiment, nothing else read.
    let again = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            n(&again, "runs_new"),
            n(&again, "runs_updated"),
            n(&again, "runs_unchanged")
        ),
        (0, 1, 6),
        "{again}"
    );
    finish(&src, &running).await;
    src.finalize_logged_model(&lm_id, "LOGGED_MODEL_READY")
        .await
        .unwrap();
    let idle = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            n(&idle, "runs_new"),
            n(&idle, "runs_updated"),
            n(&idle, "runs_unchanged")
        ),
        (0, 1, 6),
        "the run that finished is brought up to date: {idle}"
    );
    assert_eq!(
        (n(&idle, "metric_points"), n(&idle, "artifacts")),
        (10, 1),
        "copied while running: its points and files are sent again (the server keeps each point once): {idle}"
    );
    let idle = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            n(&idle, "runs_new"),
            n(&idle, "runs_updated"),
            n(&idle, "runs_unchanged")
        ),
        (0, 0, 7),
        "{idle}"
    );
    assert_eq!(
        n(&idle, "metric_points") + n(&idle, "artifacts"),
        0,
        "{idle}"
    );
    // A tag set on an ended run: the run is brought up to date without reading its histories
    // or files again.
    src.set_run_tag(&quiet[1], "reviewed", "yes").await.unwrap();
    let tagged = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            n(&tagged, "runs_updated"),
            n(&tagged, "metric_points"),
            n(&tagged, "artifacts")
        ),
        (1, 0, 0),
        "{tagged}"
    );
    assert!(
        n(&idle, "requests_source") <= 20,
        "a sync with nothing to do asks the source little: {idle}"
    );
    let dst_lm: Vec<_> = {
        use futures_util::TryStreamExt;
        let e = dst.get_experiment_by_name(&name).await.unwrap().unwrap();
        dst.search_logged_models(&[e.experiment_id], None)
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(dst_lm.len(), 1, "the logged model once: {dst_lm:?}");
    assert_eq!(
        dst_lm[0].info.status, "LOGGED_MODEL_READY",
        "a model copied while pending is finalized when the source's is"
    );

    // Changes of every kind.
    let running2 = run(&src, &exp, "running 2", vec![], 4).await;
    sync(&a.uri, &b.uri, &[]).await;
    log_points(&src, &running2, 4..9).await;
    let root =
        ArtifactRoot::parse(&src.get_run(&running2).await.unwrap().info.artifact_uri).unwrap();
    src.upload_artifact_bytes(&root, "later/b.bin", Bytes::from(vec![7u8; 5000]))
        .await
        .unwrap();
    finish(&src, &running2).await;
    src.set_run_tag(&parent, "keep", "2").await.unwrap();
    src.delete_run_tag(&parent, "gone").await.unwrap();
    src.delete_run(&to_delete).await.unwrap();
    src.restore_run(&to_restore).await.unwrap();
    let child = run(
        &src,
        &exp,
        "child",
        vec![KeyValue::new("mlflow.parentRunId", parent.clone())],
        2,
    )
    .await;
    finish(&src, &child).await;
    src.create_model_version(&CreateModelVersion {
        name: model.clone(),
        source: format!("runs:/{child}/a.txt"),
        run_id: Some(child.clone()),
        ..CreateModelVersion::default()
    })
    .await
    .unwrap();
    src.transition_model_version_stage(&model, "1", "Production", false)
        .await
        .unwrap();
    src.update_model_version(&model, "1", "described later")
        .await
        .unwrap();
    src.delete_model_version_tag(&model, "1", "old")
        .await
        .unwrap();
    src.set_model_version_tag(&model, "1", "new", "y")
        .await
        .unwrap();
    src.delete_registered_model_tag(&model, "team")
        .await
        .unwrap();
    src.delete_registered_model_alias(&model, "champion")
        .await
        .unwrap();
    src.set_registered_model_alias(&model, "newest", "2")
        .await
        .unwrap();
    // A run the source no longer has (purged there): at the destination, a complete copy.
    let dst_exp = dst
        .get_experiment_by_name(&name)
        .await
        .unwrap()
        .unwrap()
        .experiment_id;
    let copy_of = |server: &str, src_id: &str| CreateRun {
        experiment_id: dst_exp.clone(),
        tags: vec![
            KeyValue::new("mlflow_archive.source.run_id", src_id),
            KeyValue::new("mlflow_archive.source.server", server),
            KeyValue::new("mlflow_archive.import", "complete"),
        ],
        ..CreateRun::default()
    };
    let orphan = dst
        .create_run(&copy_of(src.server(), "0123456789abcdef0123456789abcdef"))
        .await
        .unwrap()
        .info
        .run_id;
    // A copy of another server's run in the same experiment: not this sync's to delete.
    let foreign = dst
        .create_run(&copy_of(
            "http://elsewhere:5000",
            "fedcba9876543210fedcba9876543210",
        ))
        .await
        .unwrap()
        .info
        .run_id;

    // A kill in the middle, more than once, then a whole sync.
    for wait_ms in [300u64, 900] {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mlflow-archive"));
        cmd.args([
            "sync",
            "--src-uri",
            &a.uri,
            "--dst-uri",
            &b.uri,
            "-j",
            "1",
            "--quiet",
        ]);
        let mut child = cmd.spawn().unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(wait_ms)).await;
        let _ = child.kill();
        let _ = child.wait();
    }
    let changed = sync(&a.uri, &b.uri, &["--delete-missing"]).await;
    assert_eq!(
        changed["runs_deleted"],
        serde_json::json!([{"source": "0123456789abcdef0123456789abcdef", "destination": orphan}]),
        "{changed}"
    );
    assert_eq!(
        dst.get_run(&foreign).await.unwrap().info.lifecycle_stage,
        "active"
    );
    assert_eq!(
        n(&changed, "runs_unchanged") + n(&changed, "runs_updated") + n(&changed, "runs_new"),
        9,
        "{changed}"
    );
    assert!(
        n(&changed, "runs_unchanged") >= 3,
        "the quiet runs are not read: {changed}"
    );

    // The destination is the source, each run once.
    let runs = runs_of(&dst, &name).await;
    let one = |src_id: &str| -> Run {
        let c = copies(&runs, src_id);
        assert!(c.len() <= 1, "run {src_id} copied {} times", c.len());
        c.first().map(|r| (*r).clone()).unwrap_or_else(|| {
            runs.iter()
                .find(|r| tag(r, "mlflow_archive.source.run_id") == Some(src_id))
                .cloned()
                .unwrap_or_else(|| panic!("run {src_id} is not at the destination"))
        })
    };
    let p = one(&parent);
    assert_eq!(tag(&p, "keep"), Some("2"));
    assert_eq!(
        tag(&p, "gone"),
        None,
        "a tag deleted at the source is deleted"
    );
    let r2 = one(&running2);
    assert_eq!(r2.info.status, "FINISHED");
    let points = history(&dst, &r2.info.run_id, "loss").await;
    assert_eq!(points.len(), 9, "every point once: {points:?}");
    let files = dst
        .list_artifacts(
            &ArtifactRoot::parse(&r2.info.artifact_uri).unwrap(),
            "later",
        )
        .await
        .unwrap();
    assert_eq!(
        files.len(),
        1,
        "the file logged after the first copy: {files:?}"
    );
    assert_eq!(one(&to_delete).info.lifecycle_stage, "deleted");
    assert_eq!(one(&to_restore).info.lifecycle_stage, "active");
    let ch = one(&child);
    assert_eq!(
        tag(&ch, "mlflow.parentRunId"),
        Some(p.info.run_id.as_str()),
        "a new child of a parent left as it was"
    );
    let orphan_now = dst.get_run(&orphan).await.unwrap();
    assert_eq!(orphan_now.info.lifecycle_stage, "deleted");
    let versions = dst.all_model_versions(&model).await.unwrap();
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].current_stage, "Production");
    assert_eq!(versions[0].description, "described later");
    let v1_tags: Vec<(&str, &str)> = versions[0]
        .tags
        .iter()
        .filter(|t| !t.key.starts_with("mlflow_archive."))
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    assert_eq!(v1_tags, [("new", "y")], "version tags follow the source");
    let m = dst.get_registered_model(&model).await.unwrap();
    assert!(
        !m.tags.iter().any(|t| t.key == "team"),
        "a model tag deleted at the source is deleted: {:?}",
        m.tags
    );
    let aliases: Vec<(&str, &str)> = m
        .aliases
        .iter()
        .map(|a| (a.alias.as_str(), a.version.as_str()))
        .collect();
    assert_eq!(aliases, [("newest", "2")], "aliases follow the source");
    assert_eq!(
        versions[1].run_id, ch.info.run_id,
        "the new version points at the new run"
    );
    let idle = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (n(&idle, "runs_new"), n(&idle, "runs_updated")),
        (0, 0),
        "{idle}"
    );

    // A version moved out of its stage at the source is moved out at the destination.
    src.transition_model_version_stage(&model, "1", "None", false)
        .await
        .unwrap();
    let demoted = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            n(&demoted, "versions_updated"),
            n(&demoted, "versions_unchanged")
        ),
        (1, 1),
        "{demoted}"
    );
    let versions = dst.all_model_versions(&model).await.unwrap();
    assert_eq!(versions[0].current_stage, "None");

    // A second destination, synced from the same source, is independent of the first.
    let second = sync(&a.uri, &c3.uri, &[]).await;
    assert_eq!(n(&second, "runs_new"), 9, "{second}");
    let second = sync(&a.uri, &c3.uri, &[]).await;
    assert_eq!(
        (n(&second, "runs_new"), n(&second, "runs_updated")),
        (0, 0),
        "{second}"
    );
    let runs3 = runs_of(&client(&c3.uri), &name).await;
    assert_eq!(runs3.len(), 9);

    // An incremental archive: a full one, a change, an incremental one; both applied in order
    // bring a fourth server to the source's state.
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let archive = |file: &str| dir.path().join(file);
    for (file, expect_new) in [("full.mlar", 9u64), ("incr.mlar", 0)] {
        if file == "incr.mlar" {
            src.set_run_tag(&quiet[0], "late", "yes").await.unwrap();
        }
        let mut cmd = cli();
        cmd.args(["sync", "--src-uri", &a.uri, "--state"])
            .arg(&state)
            .arg("-o")
            .arg(archive(file));
        let out = output(cmd).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        assert!(err.contains(&format!("runs: {expect_new} new")), "{err}");
    }
    for file in ["full.mlar", "incr.mlar"] {
        let mut cmd = cli();
        cmd.args(["import-all", "--dst-uri", &d.uri, "-i"])
            .arg(archive(file));
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let runs4 = runs_of(&client(&d.uri), &name).await;
    let q = runs4
        .iter()
        .find(|r| tag(r, "mlflow_archive.source.run_id") == Some(quiet[0].as_str()))
        .unwrap();
    assert_eq!(
        tag(q, "late"),
        Some("yes"),
        "the incremental archive's change is applied"
    );
    assert_eq!(copies(&runs4, &quiet[0]).len(), 1);
}
