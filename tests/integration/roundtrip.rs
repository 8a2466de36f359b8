//! export-experiment → import-experiment between two real servers: everything observable on the
//! destination equals the source except ids (mapped) and the import's own lineage tags; an import
//! cut short and run again completes with no duplicates.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::format::model::{Run as RecRun, Tag};
use mlflow_archive::mlflow::types::{KeyValue, Metric, ViewType};
use mlflow_archive::mlflow::{ArtifactRoot, Client, CreateRun, UpdateRun};
use mlflow_archive::transfer::import::{
    ABANDONED, LINEAGE_RUN, STATE, is_abandoned, patch_mlmodel,
};
use mlflow_archive::transfer::map;

use crate::format_util::{Item, read_items, retar, untar};
use crate::live_pair;
use crate::util::{cli, client, output, runs_of, unique};

/// A source experiment with nested runs, a deleted run, histories, inputs and artifacts.
pub async fn populate(c: &Client) -> String {
    let name = unique("roundtrip");
    let exp = c
        .create_experiment(
            &name,
            None,
            &[
                KeyValue::new("mlflow.note.content", "round trip"),
                KeyValue::new("team", "x"),
            ],
        )
        .await
        .unwrap();
    let mut ids: Vec<String> = Vec::new();
    for i in 0..4 {
        let mut tags = vec![
            KeyValue::new("mlflow.user", "alice"),
            KeyValue::new("i", i.to_string()),
        ];
        if i > 0 {
            tags.push(KeyValue::new("mlflow.parentRunId", ids[i - 1].clone()));
        }
        let rid = c
            .create_run(&CreateRun {
                experiment_id: exp.clone(),
                run_name: Some(format!("run {i}")),
                start_time: Some(1_600_000_000_000 + i as i64),
                tags,
                ..CreateRun::default()
            })
            .await
            .unwrap()
            .info
            .run_id;
        let points: Vec<Metric> = (0..2_500)
            .map(|j| Metric {
                key: format!("m/{i}"),
                value: if j == 3 { f64::NAN } else { j as f64 * 0.5 },
                timestamp: 1_600_000_000_000 + j,
                step: j / 2,
                ..Metric::default()
            })
            .collect();
        let params: Vec<KeyValue> = (0..120)
            .map(|p| KeyValue::new(format!("p{p}"), format!("{i}-{p}")))
            .collect();
        c.log_batch(&rid, &points, &params, &[]).await.unwrap();
        let root = ArtifactRoot::parse(&c.get_run(&rid).await.unwrap().info.artifact_uri).unwrap();
        c.upload_artifact_bytes(
            &root,
            "model/MLmodel",
            Bytes::from(format!("run_id: {rid}\n")),
        )
        .await
        .unwrap();
        c.upload_artifact_bytes(&root, "empty.txt", Bytes::new())
            .await
            .unwrap();
        c.upload_artifact_bytes(&root, "d d/é.bin", Bytes::from(vec![i as u8; 100_000]))
            .await
            .unwrap();
        c.update_run(&UpdateRun {
            run_id: rid.clone(),
            status: Some(if i == 2 { "FAILED" } else { "FINISHED" }.into()),
            end_time: Some(1_600_000_100_000 + i as i64),
            run_name: None,
        })
        .await
        .unwrap();
        ids.push(rid);
    }
    c.delete_run(&ids[3]).await.unwrap();
    name
}

fn by_lineage(items: &[Item]) -> HashMap<String, RecRun> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Run(r) => Some(r),
            _ => None,
        })
        .filter(|r| {
            // Half-imports given up by a later import are not the import.
            let tag = |k: &str| r.tags.iter().find(|t| t.key == k).map(|t| t.value.as_str());
            tag(ABANDONED).is_none()
                && !(r.lifecycle_stage == "deleted" && tag(STATE) != Some("complete"))
        })
        .map(|r| {
            let src = r
                .tags
                .iter()
                .find(|t| t.key == LINEAGE_RUN)
                .map(|t| t.value.clone())
                .unwrap_or_default();
            (src, r.clone())
        })
        .collect()
}

/// Points as (step, timestamp, value bits; NaN as 0), by (run id, metric key).
type Histories = HashMap<(String, String), Vec<(i64, i64, u64)>>;

fn histories(items: &[Item]) -> Histories {
    let mut out = Histories::new();
    let mut current = String::new();
    for i in items {
        match i {
            Item::Run(r) => current = r.run_id.clone(),
            Item::Chunk(c) => out
                .entry((current.clone(), c.key.clone()))
                .or_default()
                .extend(c.points.iter().map(|p| {
                    (
                        p.step,
                        p.timestamp,
                        if p.value.is_nan() {
                            0
                        } else {
                            p.value.to_bits()
                        },
                    )
                })),
            _ => {}
        }
    }
    out
}

fn artifacts(items: &[Item]) -> HashMap<(String, String), Vec<u8>> {
    let mut out = HashMap::new();
    let mut current = String::new();
    for i in items {
        match i {
            Item::Run(r) => current = r.run_id.clone(),
            Item::Artifact(p, d) => {
                out.insert((current.clone(), p.clone()), d.clone());
            }
            _ => {}
        }
    }
    out
}

async fn export(uri: &str, experiment: &str) -> Vec<u8> {
    export_jobs(uri, experiment, "4").await
}

async fn export_jobs(uri: &str, experiment: &str, jobs: &str) -> Vec<u8> {
    let mut cmd = cli();
    cmd.args([
        "--jobs",
        jobs,
        "export-experiment",
        "--src-uri",
        uri,
        "--experiment",
        experiment,
        "--export-deleted-runs",
        "-o",
        "-",
    ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

async fn import(uri: &str, archive: Vec<u8>, name: &str) -> std::process::Output {
    import_with(uri, archive, name, &[]).await
}

async fn import_with(
    uri: &str,
    archive: Vec<u8>,
    name: &str,
    extra: &[&str],
) -> std::process::Output {
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        uri,
        "--experiment-name",
        name,
        "--use-src-user-id",
        "-i",
        "-",
    ])
    .args(extra)
    .write_stdin(archive);
    output(cmd).await
}

#[tokio::test]
async fn export_import_gives_the_same_experiment_and_reruns_duplicate_nothing() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = populate(&src).await;
    let a = export(&pair.src.uri, &name).await;
    // Runs are fetched concurrently, yet the archive does not depend on how many at once.
    assert!(
        export_jobs(&pair.src.uri, &name, "1").await == a,
        "--jobs 1 and --jobs 4 give different archives"
    );
    assert!(
        export_jobs(&pair.src.uri, &name, "16").await == a,
        "--jobs 16 and --jobs 4 give different archives"
    );
    let target = unique("imported");

    // Cut the archive in the middle: the import fails, naming the cause, and leaves complete runs
    // complete and the run it was in marked in-progress. What was completed is listed.
    // (The tar stream is cut and compressed again: the whole archive is one small zstd block, and
    // a cut inside it leaves nothing readable.)
    let tar = untar(&a);
    let cut = retar(&tar[..tar.len() * 3 / 5]);
    let out = import_with(&pair.dst.uri, cut, &target, &["--jobs", "8", "--json"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("truncated") || stderr.contains("corrupt"),
        "{stderr}"
    );
    let partial: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(partial["error"].as_str().unwrap().contains("truncated"));
    let listed: HashMap<String, String> = serde_json::from_value(partial["runs"].clone()).unwrap();
    let complete_on_dst: HashMap<String, String> = runs_of(&dst, &target)
        .await
        .into_iter()
        .filter(|r| {
            r.data
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == "complete")
        })
        .map(|r| {
            let src = r.data.tags.iter().find(|t| t.key == LINEAGE_RUN).unwrap();
            (src.value.clone(), r.info.run_id.clone())
        })
        .collect();
    assert_eq!(
        listed, complete_on_dst,
        "the report lists exactly the runs complete on the destination"
    );
    assert!(
        (1..4).contains(&listed.len()),
        "the cut archive holds some runs whole, not all: {listed:?}"
    );
    // The same import again, whole and one run at a time: it completes, redoing only what was
    // half done.
    let out = import_with(&pair.dst.uri, a.clone(), &target, &["--jobs", "1"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = import(&pair.dst.uri, a.clone(), &target).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0 runs imported, 4 already complete"),
        "{stderr}"
    );

    let dst_exp = dst.get_experiment_by_name(&target).await.unwrap().unwrap();
    let all: Vec<_> = dst
        .search_runs(&[&dst_exp.experiment_id], None, ViewType::All)
        .try_collect()
        .await
        .unwrap();
    let live: Vec<_> = all
        .iter()
        .filter(|r| r.data.tags.iter().any(|t| t.key == LINEAGE_RUN) && !is_abandoned(r))
        .collect();
    assert_eq!(
        live.len(),
        4,
        "one destination run per source run, whatever was redone"
    );
    assert!(live.iter().all(|r| {
        r.data
            .tags
            .iter()
            .any(|t| t.key == STATE && t.value == "complete")
    }));

    // Everything observable equals the source, but for ids and the import's own tags.
    let b = export(&pair.dst.uri, &target).await;
    let (ia, ib) = (read_items(&a[..]).unwrap(), read_items(&b[..]).unwrap());
    let src_exp = src.get_experiment_by_name(&name).await.unwrap().unwrap();
    let tags = |e: &mlflow_archive::mlflow::types::Experiment| {
        let mut t = map::experiment(e).tags;
        t.sort_by(|x, y| x.key.cmp(&y.key));
        t
    };
    assert_eq!(tags(&src_exp), tags(&dst_exp));
    assert_same_runs(&ia, &ib, 4);
}

/// Every run of archive `a` (the source) has its import in archive `b` (the destination, runs
/// found by lineage tag), equal in everything but ids and the import's own tags.
fn assert_same_runs(ia: &[Item], ib: &[Item], runs: usize) {
    let runs_b = by_lineage(ib);
    let id_map: HashMap<String, String> = runs_b
        .iter()
        .map(|(s, r)| (s.clone(), r.run_id.clone()))
        .collect();
    let (hist_a, hist_b) = (histories(ia), histories(ib));
    let (art_a, art_b) = (artifacts(ia), artifacts(ib));
    let mut compared = 0;
    for it in ia {
        let Item::Run(ra) = it else { continue };
        let rb = &runs_b[&ra.run_id];
        let dst_id = &rb.run_id;
        assert_eq!(rb.run_name, ra.run_name);
        assert_eq!(rb.status, ra.status, "{}", ra.run_name);
        assert_eq!(
            (rb.start_time, rb.end_time),
            (ra.start_time, ra.end_time),
            "{}",
            ra.run_name
        );
        assert_eq!(rb.lifecycle_stage, ra.lifecycle_stage, "{}", ra.run_name);
        let sorted = |v: &[Tag]| {
            let mut v = v.to_vec();
            v.sort_by(|x, y| x.key.cmp(&y.key));
            v
        };
        assert_eq!(sorted(&rb.params), sorted(&ra.params));
        let want_tags: Vec<Tag> = sorted(&ra.tags)
            .into_iter()
            .map(|t| match t.key.as_str() {
                "mlflow.parentRunId" => Tag::new(t.key.clone(), id_map[&t.value].clone()),
                _ => t,
            })
            .collect();
        let got_tags: Vec<Tag> = sorted(&rb.tags)
            .into_iter()
            .filter(|t| !t.key.starts_with("mlflow_archive."))
            .collect();
        assert_eq!(got_tags, want_tags, "{}", ra.run_name);
        assert_eq!(rb.dataset_inputs, ra.dataset_inputs);
        for ((run, key), points) in hist_a.iter().filter(|((r, _), _)| r == &ra.run_id) {
            assert_eq!(
                &hist_b[&(dst_id.clone(), key.clone())],
                points,
                "{run} {key}"
            );
        }
        for ((_, path), bytes) in art_a.iter().filter(|((r, _), _)| r == &ra.run_id) {
            // MLmodel files point at their run: the import rewrites the run id, nothing else.
            let want = if path.ends_with("MLmodel") {
                let patched = patch_mlmodel(bytes, &ra.run_id, dst_id);
                assert_ne!(&patched, bytes, "the MLmodel names its source run");
                patched
            } else {
                bytes.clone()
            };
            assert_eq!(art_b[&(dst_id.clone(), path.clone())], want, "{path}");
        }
        compared += 1;
    }
    assert_eq!(compared, runs);
}

#[tokio::test]
async fn copy_experiment_goes_server_to_server_with_nothing_staged() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let name = populate(&src).await;
    let target = unique("copied");
    let copy = |target: String| {
        let mut cmd = cli();
        cmd.args([
            "copy-experiment",
            "--src-uri",
            &pair.src.uri,
            "--dst-uri",
            &pair.dst.uri,
            "--src-experiment",
            &name,
            "--dst-experiment-name",
            &target,
            "--export-deleted-runs",
            "--use-src-user-id",
        ]);
        output(cmd)
    };
    let out = copy(target.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 runs copied"), "{stderr}");
    let again = copy(target.clone()).await;
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 runs copied, 4 already complete"));
    let a = export(&pair.src.uri, &name).await;
    let b = export(&pair.dst.uri, &target).await;
    assert_same_runs(
        &read_items(&a[..]).unwrap(),
        &read_items(&b[..]).unwrap(),
        4,
    );
}

#[tokio::test]
async fn single_runs_export_import_and_copy_with_their_parent_named() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = populate(&src).await;
    let exp = src.get_experiment_by_name(&name).await.unwrap().unwrap();
    let runs: Vec<_> = src
        .search_runs(&[&exp.experiment_id], Some("tags.i = '2'"), ViewType::All)
        .try_collect()
        .await
        .unwrap();
    let child = &runs[0];
    let parent = child
        .data
        .tags
        .iter()
        .find(|t| t.key == "mlflow.parentRunId")
        .unwrap()
        .value
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-run",
        "--src-uri",
        &pair.src.uri,
        "--run-id",
        &child.info.run_id,
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let target = unique("one-run");
    let mut cmd = cli();
    cmd.args([
        "import-run",
        "--dst-uri",
        &pair.dst.uri,
        "--experiment-name",
        &target,
        "-i",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("parent that was not in the archive"),
        "says so: {stderr}"
    );

    let copied = unique("copied-run");
    let mut cmd = cli();
    cmd.args([
        "copy-run",
        "--src-uri",
        &pair.src.uri,
        "--dst-uri",
        &pair.dst.uri,
        "--run-id",
        &child.info.run_id,
        "--experiment-name",
        &copied,
    ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    for exp_name in [&target, &copied] {
        let got = runs_of(&dst, exp_name).await;
        assert_eq!(got.len(), 1, "{exp_name}");
        let r = &got[0];
        let tag = |k: &str| {
            r.data
                .tags
                .iter()
                .find(|t| t.key == k)
                .map(|t| t.value.clone())
        };
        assert_eq!(tag(LINEAGE_RUN), Some(child.info.run_id.clone()));
        assert_eq!(
            tag(mlflow_archive::transfer::import::MISSING_PARENT),
            Some(parent.clone())
        );
        assert_eq!(tag("mlflow.parentRunId"), None);
        assert_eq!(
            (r.info.status.as_str(), r.info.start_time, r.info.end_time),
            (
                child.info.status.as_str(),
                child.info.start_time,
                child.info.end_time
            )
        );
        let history: Vec<Metric> = dst
            .metric_history(&r.info.run_id, "m/2", None)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .concat();
        assert_eq!(history.len(), 2_500);
        let root = ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
        let files: Vec<_> = dst.walk_artifacts(&root).try_collect().await.unwrap();
        assert_eq!(files.len(), 3);
    }
}

#[tokio::test]
async fn metric_points_linked_to_a_logged_model_keep_their_link() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = unique("linked");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    let rid = src
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            run_name: Some("trainer".into()),
            ..CreateRun::default()
        })
        .await
        .unwrap()
        .info
        .run_id;
    let lm = src
        .create_logged_model(&mlflow_archive::mlflow::CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("clf".into()),
            source_run_id: Some(rid.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let linked: Vec<Metric> = (0..3)
        .map(|i| Metric {
            key: "acc".into(),
            value: 0.5 + i as f64 / 10.0,
            timestamp: 10 + i,
            step: i,
            model_id: Some(lm.info.model_id.clone()),
            dataset_name: Some("eval".into()),
            dataset_digest: Some("d1".into()),
            ..Metric::default()
        })
        .collect();
    src.log_batch(&rid, &linked, &[], &[]).await.unwrap();
    src.finalize_logged_model(&lm.info.model_id, "LOGGED_MODEL_READY")
        .await
        .unwrap();

    let archive = export(&pair.src.uri, &name).await;
    let target = unique("linked-dst");
    let out = import(&pair.dst.uri, archive, &target).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runs = runs_of(&dst, &target).await;
    let run = &runs[0];
    assert!(
        run.data
            .tags
            .iter()
            .any(|t| t.key == STATE && t.value == "complete")
    );
    let exp_id = &run.info.experiment_id;
    let models: Vec<_> = dst
        .search_logged_models(&[exp_id], None)
        .try_collect()
        .await
        .unwrap();
    let dst_model = &models[0].info.model_id;
    let history: Vec<Metric> = dst
        .metric_history(&run.info.run_id, "acc", None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .concat();
    assert_eq!(history.len(), 3);
    let got = dst.get_logged_model(dst_model).await.unwrap();
    let metric = got
        .data
        .metrics
        .iter()
        .find(|m| m.key == "acc")
        .expect("the logged model has its metric");
    assert_eq!(metric.dataset_name.as_deref(), Some("eval"));
}

#[tokio::test]
async fn an_import_killed_at_any_point_finishes_on_rerun_without_duplicates() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = populate(&src).await;
    let archive = export(&pair.src.uri, &name).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.mlar");
    std::fs::write(&path, &archive).unwrap();
    let target = unique("killed");
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    // Kill -9 at several points of the import (spread over its ~1-2 s), each time resuming the
    // previous, interrupted state.
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_millis() as u64;
    for (i, base) in [60u64, 250, 500, 900].into_iter().enumerate() {
        let delay = base + (seed * (i as u64 + 7)) % 150;
        let mut child = std::process::Command::new(&bin)
            .args([
                "--quiet",
                "import-experiment",
                "--dst-uri",
                &pair.dst.uri,
                "--experiment-name",
                &target,
                "-i",
            ])
            .arg(&path)
            .spawn()
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
        let _ = std::process::Command::new("kill")
            .args(["-9", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let out = import(&pair.dst.uri, archive.clone(), &target).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    eprintln!("after the kills: {stderr}");

    let runs = runs_of(&dst, &target).await;
    eprintln!("destination runs, abandoned ones included: {}", runs.len());
    let live: Vec<_> = runs
        .iter()
        .filter(|r| r.data.tags.iter().any(|t| t.key == LINEAGE_RUN) && !is_abandoned(r))
        .collect();
    assert_eq!(
        live.len(),
        4,
        "one run per source run, however often the import was killed"
    );
    for r in live {
        assert!(
            r.data
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == "complete")
        );
        let i = r
            .data
            .tags
            .iter()
            .find(|t| t.key == "i")
            .unwrap()
            .value
            .clone();
        let history: Vec<Metric> = dst
            .metric_history(&r.info.run_id, &format!("m/{i}"), None)
            .try_collect::<Vec<_>>()
            .await
            .unwrap()
            .concat();
        assert_eq!(history.len(), 2_500, "no point lost or doubled in run {i}");
        assert_eq!(r.data.params.len(), 120);
        let root = ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
        let files: Vec<_> = dst.walk_artifacts(&root).try_collect().await.unwrap();
        assert_eq!(files.len(), 3);
    }
    // Runs abandoned by killed imports are deleted, never complete, and still name their source.
    assert_eq!(
        runs.iter().filter(|r| is_abandoned(r)).count(),
        runs.len() - 4
    );
    for r in runs.iter().filter(|r| is_abandoned(r)) {
        assert_eq!(
            r.info.lifecycle_stage, "deleted",
            "an abandoned half-import is deleted"
        );
        assert!(
            !r.data
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == "complete")
        );
        assert!(r.data.tags.iter().any(|t| t.key == LINEAGE_RUN));
    }
}

#[tokio::test]
async fn metadata_tags_are_added_on_request_and_kept_on_request_and_peeking_imports_nothing() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = unique("meta");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    let rid = src
        .create_run(&CreateRun {
            experiment_id: exp,
            ..CreateRun::default()
        })
        .await
        .unwrap()
        .info
        .run_id;
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &name,
        "--export-metadata-tags",
        "-o",
        "-",
    ]);
    let out = output(cmd).await;
    assert!(out.status.success());
    let items = read_items(&out.stdout[..]).unwrap();
    let Some(Item::Run(r)) = items.iter().find(|i| matches!(i, Item::Run(_))) else {
        panic!("a run")
    };
    let tag = |k: &str| r.tags.iter().find(|t| t.key == k).map(|t| t.value.clone());
    assert_eq!(tag("mlflow_tools.metadata.run-id"), Some(rid.clone()));
    assert_eq!(
        tag("mlflow_tools.metadata.experiment-name"),
        Some(name.clone())
    );
    assert_eq!(
        tag("mlflow_tools.metadata.tracking_uri"),
        Some(pair.src.uri.clone())
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.mlar");
    std::fs::write(&path, &out.stdout).unwrap();

    let peek_target = unique("peek");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--experiment-name",
        &peek_target,
        "--just-peek",
        "-i",
    ])
    .arg(&path);
    let out = output(cmd).await;
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing was imported"));
    assert!(
        dst.get_experiment_by_name(&peek_target)
            .await
            .unwrap()
            .is_none()
    );

    for (flag, kept) in [(None, false), (Some("--import-metadata-tags"), true)] {
        let target = unique("meta-dst");
        let mut cmd = cli();
        cmd.args([
            "import-experiment",
            "--dst-uri",
            &pair.dst.uri,
            "--experiment-name",
            &target,
            "-i",
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
        let runs = runs_of(&dst, &target).await;
        let has = runs[0]
            .data
            .tags
            .iter()
            .any(|t| t.key.starts_with("mlflow_tools.metadata."));
        assert_eq!(has, kept, "{flag:?}");
    }
}
