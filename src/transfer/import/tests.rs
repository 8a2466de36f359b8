//! The import's protocols against the in-memory server: everything arrives once, a kill at any
//! call is finished by the next import, points wait for their logged model, and version numbers
//! are reproduced (gaps) or reported (taken).

use std::io::Cursor;

use crate::format::WriterBuilder;
use crate::format::model::{
    Alias, Experiment, LoggedModel, MetricChunk, ModelOutput, ModelVersion, Point, RegisteredModel,
    Run as RecRun, Tag,
};
use crate::transfer::archive_source::ArchiveSource;
use crate::transfer::destination::Destination;
use crate::transfer::memory::MemoryServer;

use super::*;

const EXP: &str = "exp";
const RUNS: [&str; 3] = [
    "aaaa0000000000000000000000000001",
    "bbbb0000000000000000000000000002",
    "cccc0000000000000000000000000003",
];
const POINTS: i64 = 2_500;
const BIG: usize = (1 << 20) + 17;

/// A history of `n` points of metric "loss": step j, value j.
fn loss(n: i64) -> MetricChunk {
    MetricChunk {
        key: "loss".into(),
        points: (0..n)
            .map(|j| Point {
                step: j,
                timestamp: 1_600_000_000_000 + j,
                value: j as f64,
            })
            .collect(),
        ..MetricChunk::default()
    }
}

fn big() -> Vec<u8> {
    (0..BIG).map(|i| (i * 7 % 251) as u8).collect()
}

/// An experiment of three runs (a parent, its child, and a deleted run), each with 2,500 points
/// (three batches), a small and a large file; the child's points of "acc" are linked to a logged
/// model made later from the parent; a registered model with versions 1, 2 and 4 (3 deleted at
/// the source), one of them made from the logged model, and an alias.
fn archive() -> Vec<u8> {
    archive_as(false)
}

/// [`archive`] after changes at the source, as an incremental archive of a sync holds them:
/// run 0's tag `i` changed and `extra` added, its status `KILLED`; run 1 with ten more points
/// and one more file; run 2 restored.
fn archive_changed() -> Vec<u8> {
    archive_as(true)
}

/// An archive in memory that holds experiment 1, named [`EXP`], so far.
fn with_experiment() -> crate::format::ArchiveWriter<Vec<u8>> {
    let mut w = WriterBuilder::new().build(Vec::new()).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: EXP.into(),
        lifecycle_stage: "active".into(),
        ..Experiment::default()
    })
    .unwrap();
    w
}

fn archive_as(changed: bool) -> Vec<u8> {
    let mut w = with_experiment();
    for (i, id) in RUNS.iter().enumerate() {
        let mut tags = vec![
            Tag::new("mlflow.user", "alice"),
            Tag::new(
                "i",
                if changed && i == 0 {
                    "changed".to_string()
                } else {
                    i.to_string()
                },
            ),
        ];
        if changed && i == 0 {
            tags.push(Tag::new("extra", "yes"));
        }
        if i == 1 {
            tags.push(Tag::new("mlflow.parentRunId", RUNS[0]));
        }
        w.begin_run(&RecRun {
            run_id: (*id).into(),
            experiment_id: "1".into(),
            run_name: format!("run {i}"),
            status: if changed && i == 0 {
                "KILLED"
            } else {
                "FINISHED"
            }
            .into(),
            start_time: Some(1_600_000_000_000),
            end_time: Some(1_600_000_100_000),
            lifecycle_stage: if i == 2 && !changed {
                "deleted"
            } else {
                "active"
            }
            .into(),
            params: vec![Tag::new("alpha", i.to_string())],
            tags,
            model_outputs: if i == 0 {
                vec![ModelOutput {
                    model_id: "m-src".into(),
                    step: 3,
                }]
            } else {
                Vec::new()
            },
            ..RecRun::default()
        })
        .unwrap();
        w.metric_chunk(&loss(POINTS + if changed && i == 1 { 10 } else { 0 }))
            .unwrap();
        if i == 1 {
            w.metric_chunk(&MetricChunk {
                key: "acc".into(),
                model_id: Some("m-src".into()),
                points: vec![Point {
                    step: 0,
                    timestamp: 5,
                    value: 0.9,
                }],
                ..MetricChunk::default()
            })
            .unwrap();
        }
        w.artifact("small.txt", 5, &b"hello"[..]).unwrap();
        w.artifact("dir/big.bin", BIG as u64, &big()[..]).unwrap();
        if changed && i == 1 {
            w.artifact("later.txt", 5, &b"later"[..]).unwrap();
        }
        w.end_unit().unwrap();
    }
    w.begin_logged_model(&LoggedModel {
        model_id: "m-src".into(),
        experiment_id: "1".into(),
        name: "clf".into(),
        source_run_id: RUNS[0].into(),
        status: "LOGGED_MODEL_READY".into(),
        ..LoggedModel::default()
    })
    .unwrap();
    w.artifact("MLmodel", 3, &b"x: 1"[..3]).unwrap();
    w.end_unit().unwrap();
    w.begin_registered_model(&RegisteredModel {
        name: "reg".into(),
        description: "d".into(),
        aliases: vec![Alias {
            alias: "champion".into(),
            version: 4,
        }],
        ..RegisteredModel::default()
    })
    .unwrap();
    for (n, source, model) in [
        (1, format!("runs:/{}/model", RUNS[0]), ""),
        (2, format!("runs:/{}/model", RUNS[1]), ""),
        (4, "models:/m-src".to_string(), "m-src"),
    ] {
        w.model_version(&ModelVersion {
            version: n,
            source,
            run_id: RUNS[0].into(),
            model_id: model.into(),
            current_stage: if n == 4 { "Production" } else { "None" }.into(),
            status: "READY".into(),
            ..ModelVersion::default()
        })
        .unwrap();
    }
    w.end_unit().unwrap();
    w.finish().unwrap().0
}

async fn import(server: &MemoryServer, bytes: &[u8]) -> std::result::Result<ImportReport, Failed> {
    import_as(server, bytes, false).await
}

/// An import that brings complete runs up to date (`update`, as a sync's).
async fn import_as(
    server: &MemoryServer,
    bytes: &[u8],
    update: bool,
) -> std::result::Result<ImportReport, Failed> {
    let source = ArchiveSource::start(Cursor::new(bytes.to_vec()));
    let opts = ImportOptions {
        jobs: 4,
        update,
        ..ImportOptions::default()
    };
    import_archive(server, source, &opts).await
}

fn tag<'a>(tags: &'a [KeyValue], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

/// What the destination must hold after a complete import, however it got there.
async fn assert_complete(server: &MemoryServer) {
    let live: Vec<_> = server
        .runs_of(EXP)
        .into_iter()
        .filter(|r| !is_abandoned(r))
        .collect();
    assert_eq!(live.len(), RUNS.len(), "one run per source run: {live:#?}");
    let lm = server
        .logged_models()
        .into_iter()
        .filter(|m| tag(&m.info.tags, STATE) == Some("complete"))
        .collect::<Vec<_>>();
    assert_eq!(lm.len(), 1, "one complete logged model");
    let lm = &lm[0];
    assert_eq!(lm.info.status, "LOGGED_MODEL_READY");
    for r in &live {
        let src = tag(&r.data.tags, LINEAGE_RUN).unwrap();
        let i = RUNS.iter().position(|x| *x == src).unwrap();
        assert_eq!(tag(&r.data.tags, STATE), Some("complete"), "run {i}");
        assert_eq!(tag(&r.data.tags, "mlflow.user"), Some("memory-user"));
        assert_eq!(r.info.status, "FINISHED");
        assert_eq!(r.info.end_time, Some(1_600_000_100_000));
        assert_eq!(
            r.info.lifecycle_stage,
            if i == 2 { "deleted" } else { "active" }
        );
        let history = server.history(&r.info.run_id);
        let loss: Vec<_> = history.iter().filter(|m| m.key == "loss").collect();
        assert_eq!(loss.len(), POINTS as usize, "run {i}: every point once");
        let acc: Vec<_> = history.iter().filter(|m| m.key == "acc").collect();
        if i == 1 {
            assert_eq!(acc.len(), 1, "the linked point, once");
            assert_eq!(acc[0].model_id.as_deref(), Some(lm.info.model_id.as_str()));
        } else {
            assert!(acc.is_empty());
        }
        let files = server.files(&r.info.artifact_uri);
        assert_eq!(files.len(), 2, "run {i}");
        assert_eq!(&files["small.txt"][..], b"hello");
        assert!(files["dir/big.bin"][..] == big()[..]);
        if i == 1 {
            let parent = tag(&r.data.tags, "mlflow.parentRunId").unwrap();
            let p = live.iter().find(|x| x.info.run_id == parent).unwrap();
            assert_eq!(tag(&p.data.tags, LINEAGE_RUN), Some(RUNS[0]));
        }
        if i == 0 {
            assert_eq!(r.outputs.model_outputs.len(), 1);
            assert_eq!(r.outputs.model_outputs[0].model_id, lm.info.model_id);
        }
    }
    let versions = server.model_versions("reg").await.unwrap();
    let numbers: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(numbers, ["1", "2", "4"], "the gap is reproduced");
    assert_eq!(versions[2].current_stage, "Production");
    assert_eq!(versions[2].source, format!("models:/{}", lm.info.model_id));
    let model = server.registered_model("reg").await.unwrap();
    assert_eq!(model.aliases.len(), 1);
    assert_eq!(model.aliases[0].version, "4");
    // The placeholder for 3 left no trace on the logged model.
    assert_eq!(
        tag(&lm.info.tags, "mlflow.modelVersions"),
        Some(r#"[{"name": "reg", "version": 4}]"#)
    );
}

#[tokio::test]
async fn everything_arrives_once_with_links_outputs_and_numbers() {
    let server = MemoryServer::default();
    let bytes = archive();
    let report = import(&server, &bytes).await.unwrap();
    assert_eq!(report.runs_imported, 3);
    assert_eq!(report.versions_imported, 3);
    assert!(report.renumbered_versions.is_empty());
    assert_complete(&server).await;
    // Again: nothing is written twice.
    let again = import(&server, &bytes).await.unwrap();
    assert_eq!((again.runs_imported, again.runs_skipped), (0, 3));
    assert_eq!((again.versions_imported, again.versions_skipped), (0, 3));
    assert_complete(&server).await;
}

#[tokio::test]
async fn an_import_killed_at_any_call_is_finished_by_the_next() {
    let bytes = archive();
    let calls = {
        let server = MemoryServer::default();
        import(&server, &bytes).await.unwrap();
        server.calls()
    };
    assert!(calls > 40, "{calls}");
    for kill in 1..=calls {
        let server = MemoryServer::default();
        server.fail_from(Some(kill));
        let first = import(&server, &bytes).await;
        assert!(first.is_err(), "killed at call {kill} of {calls}");
        server.fail_from(None);
        import(&server, &bytes)
            .await
            .unwrap_or_else(|f| panic!("the import after a kill at call {kill}: {f}"));
        assert_complete(&server).await;
    }
}

/// A sync's update of complete runs, killed at any of its calls, is finished by the next: each
/// source run once, its tags (set and deleted), status, lifecycle, every point once and every
/// file as the changed source has them. And whenever the kill came, a run whose digest is the
/// changed source run's (what a sync compares, with the latest metric values) has what the
/// digest covers (tags, status, lifecycle): the digest is emptied first and set last.
#[tokio::test]
async fn an_update_killed_at_any_call_is_finished_by_the_next() {
    let (before, after) = (archive(), archive_changed());
    let (calls, digests) = {
        let server = MemoryServer::default();
        import(&server, &before).await.unwrap();
        let at = server.calls();
        let report = import_as(&server, &after, true).await.unwrap();
        assert_eq!(report.runs_updated, 3, "{report:?}");
        let digests: HashMap<String, String> = server
            .runs_of(EXP)
            .iter()
            .map(|r| {
                let d = tag(&r.data.tags, crate::transfer::sync::DIGEST).unwrap();
                (
                    tag(&r.data.tags, LINEAGE_RUN).unwrap().to_string(),
                    d.to_string(),
                )
            })
            .collect();
        (server.calls() - at, digests)
    };
    assert!(calls > 10, "{calls}");
    // Whether run `r` (source run `i`) has what the digest covers as the changed source has it.
    let covered = |r: &crate::mlflow::types::Run, i: usize| {
        let want_i = if i == 0 {
            "changed".to_string()
        } else {
            i.to_string()
        };
        r.info.lifecycle_stage == "active"
            && tag(&r.data.tags, "i") == Some(want_i.as_str())
            && tag(&r.data.tags, "extra").is_some() == (i == 0)
            && r.info.status == if i == 0 { "KILLED" } else { "FINISHED" }
    };
    // And every point and file.
    let up_to_date = |server: &MemoryServer, r: &crate::mlflow::types::Run, i: usize| {
        let loss = server
            .history(&r.info.run_id)
            .into_iter()
            .filter(|m| m.key == "loss")
            .count();
        let points = POINTS as usize + if i == 1 { 10 } else { 0 };
        covered(r, i)
            && loss == points
            && server.files(&r.info.artifact_uri).len() == if i == 1 { 3 } else { 2 }
    };
    for kill in 1..=calls {
        let server = MemoryServer::default();
        import(&server, &before).await.unwrap();
        server.fail_from(Some(kill));
        let first = import_as(&server, &after, true).await;
        assert!(first.is_err(), "killed at call {kill} of {calls}");
        server.fail_from(None);
        for r in server.runs_of(EXP).iter().filter(|r| !is_abandoned(r)) {
            let src = tag(&r.data.tags, LINEAGE_RUN).unwrap();
            let i = RUNS.iter().position(|x| *x == src).unwrap();
            if tag(&r.data.tags, crate::transfer::sync::DIGEST) == Some(digests[src].as_str()) {
                assert!(
                    covered(r, i),
                    "kill at {kill}: run {i} claims to be up to date: {r:#?}"
                );
            }
        }
        import_as(&server, &after, true)
            .await
            .unwrap_or_else(|f| panic!("the update after a kill at call {kill}: {f}"));
        let live: Vec<_> = server
            .runs_of(EXP)
            .into_iter()
            .filter(|r| !is_abandoned(r))
            .collect();
        assert_eq!(
            live.len(),
            RUNS.len(),
            "kill at {kill}: one run per source run"
        );
        for r in &live {
            let src = tag(&r.data.tags, LINEAGE_RUN).unwrap();
            let i = RUNS.iter().position(|x| *x == src).unwrap();
            assert!(up_to_date(&server, r, i), "kill at {kill}, run {i}: {r:#?}");
            assert_eq!(
                tag(&r.data.tags, crate::transfer::sync::DIGEST),
                Some(digests[src].as_str())
            );
        }
    }
}

#[tokio::test]
async fn errors_say_whose_fault_they_are() {
    // A truncated archive is invalid input of the format, naming the spec.
    let bytes = archive();
    let cut = &bytes[..bytes.len() / 2];
    let failed = import(&MemoryServer::default(), cut).await.unwrap_err();
    assert!(
        matches!(failed.error.root(), Error::Format { .. }),
        "{:?}",
        failed.error
    );
    // A record out of the format's order is the caller's misuse of the writer.
    let mut w = WriterBuilder::new().build(Vec::new()).unwrap();
    let err = w.metric_chunk(&MetricChunk::default()).unwrap_err();
    assert!(matches!(err, Error::Usage(_)), "{err:?}");
    // A server that went away is a remote failure.
    let server = MemoryServer::default();
    server.fail_from(Some(1));
    let failed = import(&server, &bytes).await.unwrap_err();
    assert!(
        matches!(failed.error.root(), Error::Transport { .. }),
        "{:?}",
        failed.error
    );
}

#[tokio::test]
async fn versions_whose_numbers_are_taken_are_renumbered_and_reported() {
    let server = MemoryServer::default();
    server
        .create_registered_model("reg", None, &[])
        .await
        .unwrap();
    let exp = server.create_experiment("other", &[]).await.unwrap();
    let run = server
        .create_run(&CreateRun {
            experiment_id: exp,
            ..CreateRun::default()
        })
        .await
        .unwrap();
    for _ in 0..5 {
        server
            .create_model_version(&crate::mlflow::CreateModelVersion {
                name: "reg".into(),
                source: format!("runs:/{}/m", run.info.run_id),
                run_id: Some(run.info.run_id.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let report = import(&server, &archive()).await.unwrap();
    assert_eq!(
        report.renumbered_versions,
        [
            ("reg".to_string(), 1, 6),
            ("reg".to_string(), 2, 7),
            ("reg".to_string(), 4, 8)
        ]
    );
    let model = server.registered_model("reg").await.unwrap();
    assert_eq!(
        model.aliases[0].version, "8",
        "the alias follows its version"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_imports_at_once_settle_on_one_run_per_source_run() {
    let bytes = archive();
    for _ in 0..10 {
        let server = MemoryServer::default();
        let (a, b) = tokio::join!(import(&server, &bytes), import(&server, &bytes));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert_complete(&server).await;
        // Each names, for every source run, the run that stands for it: the same one.
        assert_eq!(a.runs, b.runs);
        assert_eq!(a.runs_imported + b.runs_imported, RUNS.len() as u64);
    }
}

#[tokio::test]
async fn a_version_another_import_made_first_is_used_and_ours_given_up() {
    let server = MemoryServer::default();
    server.twin_versions(true);
    let report = import(&server, &archive()).await.unwrap();
    // Each version was made twice, the other import's first: ours were deleted, theirs used.
    assert_eq!(report.versions_skipped, 3);
    let versions = server.model_versions("reg").await.unwrap();
    let lineage: Vec<_> = versions
        .iter()
        .map(|v| tag(&v.tags, LINEAGE_VERSION).unwrap_or("-"))
        .collect();
    assert_eq!(lineage, ["1", "2", "4"], "one version per source version");
    let model = server.registered_model("reg").await.unwrap();
    let champion = versions
        .iter()
        .find(|v| v.version == model.aliases[0].version)
        .unwrap();
    assert_eq!(tag(&champion.tags, LINEAGE_VERSION), Some("4"));
}

/// A version whose source is a store address inside its run's or its logged model's root (as
/// registering from `s3://…` or `gs://…` gives) points at the same place under the new run's or
/// new model's root, whatever the destination's scheme.
#[tokio::test]
async fn store_sources_inside_a_run_or_a_logged_model_move_with_them() {
    let run = RUNS[0];
    let mut w = with_experiment();
    w.begin_run(&RecRun {
        run_id: run.into(),
        experiment_id: "1".into(),
        status: "FINISHED".into(),
        lifecycle_stage: "active".into(),
        ..RecRun::default()
    })
    .unwrap();
    w.end_unit().unwrap();
    w.begin_logged_model(&LoggedModel {
        model_id: "m-src".into(),
        experiment_id: "1".into(),
        name: "clf".into(),
        source_run_id: run.into(),
        status: "LOGGED_MODEL_READY".into(),
        ..LoggedModel::default()
    })
    .unwrap();
    w.end_unit().unwrap();
    w.begin_registered_model(&RegisteredModel {
        name: "reg".into(),
        ..RegisteredModel::default()
    })
    .unwrap();
    let sources = [
        format!("s3://old-bucket/mlruns/1/{run}/artifacts/model"),
        "gs://old/mlruns/1/models/m-src/artifacts".to_string(),
        format!("wasbs://c@acct.blob.core.windows.net/1/{run}/artifactsX/model"),
    ];
    for (n, source) in sources.iter().enumerate() {
        w.model_version(&ModelVersion {
            version: n as u64 + 1,
            source: source.clone(),
            run_id: run.into(),
            model_id: if n == 1 { "m-src" } else { "" }.into(),
            status: "READY".into(),
            ..ModelVersion::default()
        })
        .unwrap();
    }
    w.end_unit().unwrap();
    let bytes = w.finish().unwrap().0;
    let server = MemoryServer::default();
    import(&server, &bytes).await.unwrap();
    let dst_run = &server.runs_of(EXP)[0];
    let lm = &server.logged_models()[0];
    let versions = server.model_versions("reg").await.unwrap();
    let got: Vec<&str> = versions.iter().map(|v| v.source.as_str()).collect();
    assert_eq!(
        got,
        [
            format!("{}/model", dst_run.info.artifact_uri),
            lm.info.artifact_uri.clone(),
            // Not inside the run's root (`artifactsX`): kept as it was.
            sources[2].clone(),
        ]
    );
}

/// One parent with seven children, then four runs on their own, a file and a few points each;
/// a registered model of eight versions, each inside one of the runs' artifacts.
fn family() -> (Vec<u8>, Vec<String>) {
    let mut w = with_experiment();
    let ids: Vec<String> = (0..12).map(|i| format!("{i:032x}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut tags = vec![Tag::new("i", i.to_string())];
        if (1..8).contains(&i) {
            tags.push(Tag::new("mlflow.parentRunId", ids[0].clone()));
        }
        w.begin_run(&RecRun {
            end_time: Some(1_600_000_100_000),
            tags,
            ..numbered_run(id, i)
        })
        .unwrap();
        w.metric_chunk(&loss(3)).unwrap();
        w.artifact("f.txt", 1, &b"x"[..]).unwrap();
        w.end_unit().unwrap();
    }
    w.begin_registered_model(&RegisteredModel {
        name: "fam".into(),
        ..RegisteredModel::default()
    })
    .unwrap();
    for n in 1..=8u64 {
        let run = &ids[n as usize];
        w.model_version(&ModelVersion {
            version: n,
            source: format!("mlflow-artifacts:/1/{run}/artifacts/model"),
            run_id: run.clone(),
            current_stage: if n == 8 { "Production" } else { "None" }.into(),
            status: "READY".into(),
            ..ModelVersion::default()
        })
        .unwrap();
    }
    w.end_unit().unwrap();
    (w.finish().unwrap().0, ids)
}

/// Issue 18: through a network's latency, the reader waits for no run's requests. Runs are made
/// and completed by their own tasks, several at once (made one by one on the reader's path
/// before, one round trip each), and each child still completes only after its parent, pointing
/// at it.
///
/// (Real time: the archive is read by a thread of its own, and a paused clock would run ahead
/// while the runtime waits for it. Reading a run of this archive takes microseconds, the latency
/// 80 ms.)
#[tokio::test]
async fn runs_are_made_and_completed_several_at_once_children_after_their_parent() {
    let server = MemoryServer::default();
    server.set_latency(std::time::Duration::from_millis(80));
    let (bytes, ids) = family();
    let report = import(&server, &bytes).await.unwrap();
    assert_eq!(report.runs_imported, 12);
    assert!(
        server.most_in_flight("create_run") >= 3,
        "runs made one at a time: {}",
        server.most_in_flight("create_run")
    );
    assert!(
        server.most_in_flight("set_run_tag") >= 3,
        "runs completed one at a time: {}",
        server.most_in_flight("set_run_tag")
    );
    let runs = server.runs_of(EXP);
    assert_eq!(runs.len(), 12, "one run per source run");
    let parent = runs
        .iter()
        .find(|r| tag(&r.data.tags, LINEAGE_RUN) == Some(ids[0].as_str()))
        .unwrap();
    for r in &runs {
        assert_eq!(tag(&r.data.tags, STATE), Some(COMPLETE));
        let i: usize = tag(&r.data.tags, "i").unwrap().parse().unwrap();
        let want = (1..8).contains(&i).then_some(parent.info.run_id.as_str());
        assert_eq!(tag(&r.data.tags, PARENT_RUN), want, "run {i}");
        assert_eq!(server.history(&r.info.run_id).len(), 3, "run {i}");
        assert_eq!(server.files(&r.info.artifact_uri).len(), 1, "run {i}");
    }
}

/// Issue 18: a model's versions are made one after another (the registry numbers them in
/// order), and only the create waits for the version before: each version's check for a
/// concurrent import's twin, and its stage, are done by a task of its own. Nothing per version
/// is asked that the import knows: the run's root (its task made the run), the version's
/// readiness (the create said READY), the versions before it (this import made them).
#[tokio::test]
async fn a_models_versions_are_made_in_order_and_settled_several_at_once() {
    let server = MemoryServer::default();
    server.set_latency(std::time::Duration::from_millis(80));
    let (bytes, ids) = family();
    let report = import(&server, &bytes).await.unwrap();
    assert_eq!(report.versions_imported, 8);
    let calls = server.log();
    let count = |name: &str| calls.iter().filter(|c| **c == name).count();
    assert_eq!(count("create_model_version"), 8);
    assert_eq!(count("model_versions"), 8, "one twin check a version");
    assert_eq!(count("get_run"), 0, "run roots asked again");
    assert_eq!(count("wait_model_version_ready"), 0);
    assert!(
        server.overlapped("create_model_version", "model_versions"),
        "a version made only once the one before was settled"
    );
    let versions = server.model_versions("fam").await.unwrap();
    let numbers: Vec<_> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(numbers, ["1", "2", "3", "4", "5", "6", "7", "8"]);
    let runs = server.runs_of(EXP);
    for v in &versions {
        let src = &ids[v.version.parse::<usize>().unwrap()];
        let run = runs
            .iter()
            .find(|r| tag(&r.data.tags, LINEAGE_RUN) == Some(src.as_str()))
            .unwrap();
        assert_eq!(v.run_id, run.info.run_id);
        assert_eq!(
            v.source,
            format!("{}/model", run.info.artifact_uri.trim_end_matches('/'))
        );
        let stage = if v.version == "8" {
            "Production"
        } else {
            "None"
        };
        assert_eq!(v.current_stage, stage, "version {}", v.version);
    }
}

/// An import asks first for what it likely finds: a new experiment and model are created
/// without a lookup before (each a round trip on the reader's path), and the existing ones a
/// sync finds are looked up, not created. Either way the other answer is handled: a second
/// import finds everything there through the server's "already exists".
#[tokio::test]
async fn new_experiments_and_models_are_created_without_a_lookup_first() {
    let server = MemoryServer::default();
    let bytes = archive();
    import(&server, &bytes).await.unwrap();
    let count = |log: &[&str], name: &str| log.iter().filter(|c| **c == name).count();
    let log = server.log();
    // The one lookup of the new experiment reads its artifact location.
    assert_eq!(count(&log, "experiment_by_name"), 1, "{log:?}");
    assert_eq!(count(&log, "registered_model"), 0, "{log:?}");

    let before = log.len();
    let again = import(&server, &bytes).await.unwrap();
    assert_eq!((again.runs_imported, again.runs_skipped), (0, 3));
    assert_eq!((again.versions_imported, again.versions_skipped), (0, 3));
    let log = server.log()[before..].to_vec();
    assert_eq!(
        count(&log, "create_experiment"),
        1,
        "tried, and there: {log:?}"
    );
    assert_eq!(count(&log, "create_registered_model"), 1, "{log:?}");
    assert_complete(&server).await;

    let before = server.log().len();
    import_as(&server, &archive_changed(), true).await.unwrap();
    let log = server.log()[before..].to_vec();
    assert_eq!(
        count(&log, "create_experiment"),
        0,
        "a sync looks up first: {log:?}"
    );
    assert_eq!(count(&log, "create_registered_model"), 0, "{log:?}");
    assert_eq!(count(&log, "experiment_by_name"), 1, "{log:?}");
}

/// Run `i` of experiment 1, finished, with source id `id` and the tag `i`.
fn numbered_run(id: &str, i: usize) -> RecRun {
    RecRun {
        run_id: id.to_string(),
        experiment_id: "1".into(),
        run_name: format!("run {i}"),
        status: "FINISHED".into(),
        start_time: Some(1_600_000_000_000),
        lifecycle_stage: "active".into(),
        tags: vec![Tag::new("i", i.to_string())],
        ..RecRun::default()
    }
}

/// A child run opened while its parent is still being made gets its parent tag from its task, in
/// its first batch: the reader leaves a slot for it, so no call exceeds the server's 1,000 items
/// (the HTTP client would split one of 1,001 into 1,000 and a request of one metric; found on
/// the large bench set at 100 ms, up to one request more per child run).
#[tokio::test]
async fn a_child_opened_before_its_parent_is_made_sends_full_batches_only() {
    let mut w = with_experiment();
    let ids: Vec<String> = (0..4).map(|i| format!("{i:032x}")).collect();
    for (i, id) in ids.iter().enumerate() {
        let mut tags = vec![Tag::new("i", i.to_string())];
        if i > 0 {
            tags.push(Tag::new("mlflow.parentRunId", ids[0].clone()));
        }
        w.begin_run(&RecRun {
            params: vec![Tag::new("alpha", i.to_string())],
            tags,
            ..numbered_run(id, i)
        })
        .unwrap();
        w.metric_chunk(&loss(POINTS)).unwrap();
        w.end_unit().unwrap();
    }
    let bytes = w.finish().unwrap().0;

    let server = MemoryServer::default();
    // The parent's create takes a while: the reader opens its children meanwhile.
    server.set_latency(std::time::Duration::from_millis(80));
    let report = import(&server, &bytes).await.unwrap();
    assert_eq!(report.runs_imported, 4);
    // The case this test is about happened: the children's creates were in flight with their
    // parent's, so none of them knew its parent's id when it began (its task added the tag).
    assert_eq!(
        server.most_in_flight("create_run"),
        4,
        "the children were not opened before their parent was made"
    );
    assert!(
        server.largest_batch() <= 1000,
        "a batch of {} items",
        server.largest_batch()
    );
    let runs = server.runs_of(EXP);
    let parent = runs
        .iter()
        .find(|r| tag(&r.data.tags, LINEAGE_RUN) == Some(ids[0].as_str()))
        .unwrap();
    for r in &runs {
        let src = tag(&r.data.tags, LINEAGE_RUN).unwrap();
        if src != ids[0] {
            assert_eq!(
                tag(&r.data.tags, PARENT_RUN),
                Some(parent.info.run_id.as_str()),
                "run {src}"
            );
        }
        assert_eq!(
            server.history(&r.info.run_id).len(),
            POINTS as usize,
            "run {src}"
        );
    }
}

/// Issue 18: a run's `MLmodel` names the run (its `run_id`, and an `artifact_path` inside its
/// root), which only the destination run's creation tells; the run's task points it there, and
/// the reader reads on meanwhile. (It used to wait for each run's creation at its `MLmodel`: one
/// round trip per run on the reader's path, the runs made one at a time.)
#[tokio::test]
async fn a_runs_mlmodel_names_the_run_made_and_the_reader_does_not_wait_for_it() {
    let mut w = with_experiment();
    let ids: Vec<String> = (0..6).map(|i| format!("{i:032x}")).collect();
    let mlmodel = |id: &str| {
        format!(
            "artifact_path: mlflow-artifacts:/1/{id}/artifacts/model\nflavors:\n  python_function:\n    run_id: {id}\nrun_id: {id}\n"
        )
    };
    for (i, id) in ids.iter().enumerate() {
        w.begin_run(&numbered_run(id, i)).unwrap();
        let body = mlmodel(id);
        w.artifact("model/MLmodel", body.len() as u64, body.as_bytes())
            .unwrap();
        w.end_unit().unwrap();
    }
    let bytes = w.finish().unwrap().0;

    let server = MemoryServer::default();
    server.set_latency(std::time::Duration::from_millis(80));
    let report = import(&server, &bytes).await.unwrap();
    assert_eq!(report.runs_imported, 6);
    assert!(
        server.most_in_flight("create_run") >= 3,
        "runs made one at a time: {}",
        server.most_in_flight("create_run")
    );
    let runs = server.runs_of(EXP);
    assert_eq!(runs.len(), 6);
    for r in &runs {
        let src = tag(&r.data.tags, LINEAGE_RUN).unwrap();
        let dst = &r.info.run_id;
        let files = server.files(&r.info.artifact_uri);
        let root = r.info.artifact_uri.trim_end_matches('/');
        assert_eq!(
            std::str::from_utf8(&files["model/MLmodel"]).unwrap(),
            // The top-level lines name the run made; nested ones stay byte for byte.
            format!(
                "artifact_path: {root}/model\nflavors:\n  python_function:\n    run_id: {src}\nrun_id: {dst}\n"
            ),
            "run {src}"
        );
    }
}
