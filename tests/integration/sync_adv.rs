//! `sync` against what a user does between syncs: windows that leave a parent out, then take
//! it in; a metric logged to a copy by hand; new prompt versions and traces; time windows on
//! exports.

use mlflow_archive::mlflow::types::{KeyValue, Run};
use mlflow_archive::mlflow::{Client, CreateRun, UpdateRun};

use crate::sync::tag;
use crate::util::server::MlflowServer;
use crate::util::{cli, client, output, run_ok, runs_of, unique};

async fn sync(src: &str, dst: &str, extra: &[&str]) -> serde_json::Value {
    let mut cmd = cli();
    cmd.args(["sync", "--src-uri", src, "--dst-uri", dst, "--json"])
        .args(extra);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn ended_run(c: &Client, exp: &str, name: &str, start: i64, tags: Vec<KeyValue>) -> String {
    let id = c
        .create_run(&CreateRun {
            experiment_id: exp.to_string(),
            run_name: Some(name.into()),
            start_time: Some(start),
            tags,
            ..CreateRun::default()
        })
        .await
        .unwrap()
        .info
        .run_id;
    c.update_run(&UpdateRun {
        run_id: id.clone(),
        status: Some("FINISHED".into()),
        end_time: Some(start + 1000),
        run_name: None,
    })
    .await
    .unwrap();
    id
}

fn copy_of<'a>(runs: &'a [Run], src: &str) -> &'a Run {
    runs.iter()
        .find(|r| {
            r.data
                .tags
                .iter()
                .any(|t| t.key == "mlflow_archive.source.run_id" && t.value == src)
        })
        .unwrap_or_else(|| panic!("run {src} is not at the destination"))
}

/// A child synced while its parent was outside `--since` is pointed at the parent once a later
/// sync copies the parent (the child itself did not change, so it is not read again).
#[tokio::test]
async fn a_child_synced_without_its_parent_is_linked_when_the_parent_follows() {
    let Some([a, b]) = MlflowServer::start_fresh(&["sync-adv-src", "sync-adv-dst"])
        .await
        .and_then(|s| <[MlflowServer; 2]>::try_from(s).ok())
    else {
        return;
    };
    let (src, dst) = (client(&a.uri), client(&b.uri));
    let name = unique("window-parent");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    // 2020-01-01 and 2026-01-01.
    let parent = ended_run(&src, &exp, "parent", 1_577_836_800_000, vec![]).await;
    let child = ended_run(
        &src,
        &exp,
        "child",
        1_767_225_600_000,
        vec![KeyValue::new("mlflow.parentRunId", parent.clone())],
    )
    .await;

    let first = sync(&a.uri, &b.uri, &["--since", "2025-01-01"]).await;
    assert_eq!(first["runs_new"], 1, "{first}");
    let runs = runs_of(&dst, &name).await;
    assert_eq!(
        tag(
            copy_of(&runs, &child),
            "mlflow_archive.source.parent_run_id"
        ),
        Some(parent.as_str())
    );

    let all = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(all["runs_new"], 1, "the parent: {all}");
    assert_eq!(all["runs_relinked"], 1, "{all}");
    let runs = runs_of(&dst, &name).await;
    let (p, c) = (copy_of(&runs, &parent), copy_of(&runs, &child));
    assert_eq!(
        tag(c, "mlflow.parentRunId"),
        Some(p.info.run_id.as_str()),
        "the child points at its parent's copy: {:?}",
        c.data.tags
    );
    assert_eq!(tag(c, "mlflow_archive.source.parent_run_id"), None);
    let idle = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (&idle["runs_new"], &idle["runs_updated"]),
        (&serde_json::json!(0), &serde_json::json!(0)),
        "{idle}"
    );
}

/// A metric logged by hand to a destination copy (a key the source run does not have) does not
/// make the run look changed at every sync: no update can take it away.
#[tokio::test]
async fn a_metric_logged_to_a_copy_by_hand_does_not_update_it_at_every_sync() {
    let Some([a, b]) = MlflowServer::start_fresh(&["sync-adv-src2", "sync-adv-dst2"])
        .await
        .and_then(|s| <[MlflowServer; 2]>::try_from(s).ok())
    else {
        return;
    };
    let (src, dst) = (client(&a.uri), client(&b.uri));
    let name = unique("hand-metric");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    let id = ended_run(&src, &exp, "r", 1_767_225_600_000, vec![]).await;
    let point = |key: &str| mlflow_archive::mlflow::types::Metric {
        key: key.into(),
        value: 1.0,
        timestamp: 1_767_225_600_000,
        step: 0,
        ..Default::default()
    };
    src.log_batch(&id, &[point("loss")], &[], &[])
        .await
        .unwrap();
    sync(&a.uri, &b.uri, &[]).await;
    let runs = runs_of(&dst, &name).await;
    let copy = copy_of(&runs, &id).info.run_id.clone();
    dst.log_batch(&copy, &[point("by-hand")], &[], &[])
        .await
        .unwrap();
    for _ in 0..2 {
        let again = sync(&a.uri, &b.uri, &[]).await;
        assert_eq!(
            (&again["runs_updated"], &again["runs_unchanged"]),
            (&serde_json::json!(0), &serde_json::json!(1)),
            "{again}"
        );
    }
    // A point the source logs later is still seen.
    src.log_batch(
        &id,
        &[mlflow_archive::mlflow::types::Metric {
            step: 1,
            ..point("loss")
        }],
        &[],
        &[],
    )
    .await
    .unwrap();
    let moved = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(moved["runs_updated"], 1, "{moved}");
}

const GENAI: &str = r#"
import sys
import mlflow
what, uri, tag = sys.argv[1], sys.argv[2], sys.argv[3]
mlflow.set_tracking_uri(uri)
name = f"ask-{tag}"
if what == "load":
    print(mlflow.genai.load_prompt(f"prompts:/{name}@production").template)
    sys.exit(0)
exp_id = mlflow.set_experiment(f"genai-sync-{tag}").experiment_id
import mlflow.genai.datasets as gd
if what == "first":
    ds = gd.create_dataset(name=f"ds-{tag}", experiment_id=[exp_id])
    ds.merge_records([{"inputs": {"q": "a"}}, {"inputs": {"q": "b"}}])
else:
    found = list(gd.search_datasets(experiment_ids=[exp_id]))
    ds = gd.get_dataset(dataset_id=found[0].dataset_id)
if what == "second":
    ds.merge_records([{"inputs": {"q": "c"}}])
if what == "third":
    with mlflow.start_run(run_name="uses"):
        mlflow.log_input(ds, context="evaluation")
    sys.exit(0)
version = mlflow.genai.register_prompt(name=name, template=f"Answer {{{{q}}}} ({what}).")
mlflow.genai.set_prompt_alias(name, alias="production", version=version.version)
@mlflow.trace
def answer(q):
    return q.upper()
answer(what)
try:
    mlflow.flush_trace_async_logging()
except Exception:
    pass
"#;

async fn genai(what: &str, uri: &str, tag: &str) -> String {
    let python = crate::util::server::venv()
        .expect("the venv")
        .join("bin/python");
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(GENAI)
        .args([what, uri, tag])
        .env("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "genai {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// New prompt versions (and a moved alias) and new traces made after a first sync are carried
/// by the next one, and the traces already there are not read again.
#[tokio::test]
async fn new_prompt_versions_and_traces_follow() {
    let Some([a, b]) = MlflowServer::start_fresh(&["sync-genai-src", "sync-genai-dst"])
        .await
        .and_then(|s| <[MlflowServer; 2]>::try_from(s).ok())
    else {
        return;
    };
    let tag = unique("g");
    genai("first", &a.uri, &tag).await;
    let first = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (first["traces_new"].as_u64(), first["versions_new"].as_u64()),
        (Some(1), Some(1)),
        "{first}"
    );
    genai("second", &a.uri, &tag).await;
    let second = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            second["traces_new"].as_u64(),
            second["traces_unchanged"].as_u64(),
            second["versions_new"].as_u64(),
            second["versions_unchanged"].as_u64()
        ),
        (Some(1), Some(1), Some(1), Some(1)),
        "{second}"
    );
    assert!(
        genai("load", &b.uri, &tag).await.contains("(second)"),
        "the alias follows the new version"
    );
    let dst = client(&b.uri);
    let exp = dst
        .get_experiment_by_name(&format!("genai-sync-{tag}"))
        .await
        .unwrap()
        .unwrap()
        .experiment_id;
    let traces: Vec<_> = {
        use futures_util::TryStreamExt;
        use mlflow_archive::transfer::source::Source;
        Source::traces(&dst, &[exp]).try_collect().await.unwrap()
    };
    assert_eq!(traces.len(), 2, "{traces:?}");
    // The dataset changed once (a record added): copied again; then it is left alone, and a
    // new run that used it points at the destination's copy.
    assert_eq!(
        (
            first["datasets_new"].as_u64(),
            second["datasets_new"].as_u64(),
            second["dataset_records"].as_u64()
        ),
        (Some(1), Some(1), Some(3)),
        "{first} {second}"
    );
    genai("third", &a.uri, &tag).await;
    let third = sync(&a.uri, &b.uri, &[]).await;
    assert_eq!(
        (
            third["traces_new"].as_u64(),
            third["datasets_unchanged"].as_u64(),
            third["dataset_records"].as_u64(),
            third["runs_new"].as_u64()
        ),
        (Some(0), Some(1), Some(0), Some(1)),
        "{third}"
    );
    let copy: Vec<_> = {
        use futures_util::TryStreamExt;
        use mlflow_archive::transfer::source::Source;
        Source::datasets(&dst, &[]).try_collect().await.unwrap()
    };
    assert_eq!(copy.len(), 1, "{copy:?}");
    let runs = runs_of(&dst, &format!("genai-sync-{tag}")).await;
    let uses = runs.iter().find(|r| r.info.run_name == "uses").unwrap();
    let input: serde_json::Value =
        serde_json::from_str(&uses.inputs.dataset_inputs[0].dataset.source).unwrap();
    assert_eq!(
        input["dataset_id"].as_str(),
        Some(copy[0].dataset_id.as_str()),
        "the new run's input names the destination's dataset"
    );
}

/// `--since`/`--until` (and the Python tool's names for them) on an export: only the runs
/// started in `[since, until)` are in the archive; a window that holds no time is refused before
/// anything is read.
#[tokio::test]
async fn exports_take_the_runs_started_in_a_time_window() {
    let pair = crate::live_pair!();
    let src = client(&pair.src.uri);
    let name = unique("window");
    let exp = src.create_experiment(&name, None, &[]).await.unwrap();
    // 2020-01-01, 2024-01-01 and 2026-01-01.
    for (run, start) in [
        ("old", 1_577_836_800_000),
        ("mid", 1_704_067_200_000),
        ("new", 1_767_225_600_000),
    ] {
        ended_run(&src, &exp, run, start, vec![]).await;
    }
    let dir = tempfile::tempdir().unwrap();
    for (flags, want) in [
        (
            ["--since", "2023-01-01", "--until", "2026-01-01"],
            vec!["mid"],
        ),
        (
            [
                "--run-start-time",
                "2024-01-01T00:00:00Z",
                "--runs-until",
                "1767225600001",
            ],
            vec!["mid", "new"],
        ),
    ] {
        let path = dir.path().join(format!("{}.mlar", want.len()));
        let path = path.to_str().unwrap();
        let mut export = vec![
            "export-experiment",
            "--src-uri",
            &pair.src.uri,
            "--experiment",
            &name,
        ];
        export.extend(flags);
        export.extend(["-o", path]);
        run_ok(&export).await;
        let target = unique("window-copy");
        run_ok(&[
            "import-experiment",
            "--dst-uri",
            &pair.dst.uri,
            "--experiment-name",
            &target,
            "-i",
            path,
        ])
        .await;
        let mut got: Vec<String> = runs_of(&client(&pair.dst.uri), &target)
            .await
            .into_iter()
            .map(|r| r.info.run_name)
            .collect();
        got.sort();
        assert_eq!(got, want, "{flags:?}");
    }
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &name,
        "--since",
        "2026-01-01",
        "--until",
        "2025-01-01",
        "-o",
    ])
    .arg(dir.path().join("none.mlar"));
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("is not before --until"), "{err}");
}
