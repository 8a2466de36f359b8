//! MLflow 3's GenAI objects, made with MLflow's own Python client (tests/harness/genai.py):
//! prompts (text and chat templates, response format, model config, aliases), an evaluation
//! dataset with its records and the run that used it, and traces (nested spans, attributes,
//! events, exceptions, a prompt link, a run link, feedback, an override, expectations, a trace
//! whose spans MLflow keeps as a file, a trace the source holds only part of) move with
//! export-all → import-all and with copy-all, between fresh servers of their own; MLflow's client
//! then reads the same on every side, and importing twice duplicates nothing.

use crate::util::server::MlflowServer;
use crate::util::stores::harness_python;
use crate::util::{cli, output, unique};

fn dump(uri: &str, tag: &str) -> serde_json::Value {
    serde_json::from_str(&harness_python("genai.py", uri, &["dump", tag], &[])).unwrap()
}

/// The first place two dumps differ, as a path into them.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value::{Array, Object};
    match (a, b) {
        (Object(x), Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (&x.get(k), &y.get(k));
                match (l, r) {
                    (Some(l), Some(r)) => first_difference(l, r, &format!("{at}.{k}")),
                    _ => Some(format!("{at}.{k}: {l:?} vs {r:?}")),
                }
            })
        }
        (Array(x), Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

#[tokio::test]
async fn prompts_datasets_and_traces_move_with_a_whole_server() {
    let (a, b, c) = tokio::task::spawn_blocking(|| {
        let b = std::thread::spawn(|| MlflowServer::start("genai-dst", None));
        let c = std::thread::spawn(|| MlflowServer::start("genai-copy", None));
        (
            MlflowServer::start("genai-src", None),
            b.join().unwrap(),
            c.join().unwrap(),
        )
    })
    .await
    .unwrap();
    let (Some(a), Some(b), Some(c)) = (a, b, c) else {
        return;
    };
    let tag = unique("g");
    let (uri, t) = (a.uri.clone(), tag.clone());
    tokio::task::spawn_blocking(move || harness_python("genai.py", &uri, &["populate", &t], &[]))
        .await
        .unwrap();
    let (uri, t) = (a.uri.clone(), tag.clone());
    let want = tokio::task::spawn_blocking(move || dump(&uri, &t))
        .await
        .unwrap();
    // The source holds what the test is about.
    assert_eq!(want["traces"].as_array().unwrap().len(), 4, "{want:#}");
    let with_attachment = want["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tags"]["mlflow.traceName"] == "with-attachment")
        .unwrap();
    let files = with_attachment["attachments"].as_object().unwrap();
    assert_eq!(files.len(), 1, "{with_attachment:#}");
    assert!(files.values().all(|v| v.is_string()), "{files:?}");
    assert_eq!(want["dataset"]["records"].as_array().unwrap().len(), 12);
    assert_eq!(
        want["run_input_points_at_dataset"],
        serde_json::json!([true])
    );
    assert_eq!(want["traces_linked_to_greet"].as_array().unwrap().len(), 1);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.mlar");
    let mut cmd = cli();
    cmd.args(["export-all", "--src-uri", &a.uri, "-o"])
        .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Every kind is counted (the server's default experiment aside, which has nothing).
    assert!(
        err.contains("2 prompts with 3 versions")
            && err.contains("4 traces with 5 assessments")
            && err.contains("1 evaluation datasets with 12 records"),
        "{err}"
    );
    for round in 0..2 {
        let mut cmd = cli();
        cmd.args(["import-all", "--dst-uri", &b.uri, "-i"])
            .arg(&path);
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "import {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cmd = cli();
    cmd.args(["copy-all", "--src-uri", &a.uri, "--dst-uri", &c.uri]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (server, what) in [(&b, "export-all → import-all twice"), (&c, "copy-all")] {
        let (uri, t) = (server.uri.clone(), tag.clone());
        let got = tokio::task::spawn_blocking(move || dump(&uri, &t))
            .await
            .unwrap();
        if let Some(d) = first_difference(&want, &got, "") {
            panic!("{what}: {d}\nsource: {want:#}\ndestination: {got:#}");
        }
    }
}

/// An archive of a later minor version with a unit of a kind this version does not know (the
/// vector `future-kind`): `verify` checks and names it, an import refuses the archive naming the
/// kind, and with `--skip-unknown-kinds` imports the rest and warns with the kind and its count.
#[tokio::test]
async fn a_unit_of_a_later_kind_is_refused_by_an_import_unless_it_is_told_to_skip_it() {
    let pair = crate::live_pair!();
    let vector = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/spec/vectors/valid/future-kind.mlar"
    );
    let mut cmd = cli();
    cmd.args(["verify", vector]);
    let out = output(cmd).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("1 units of kind \"scorers\""), "{said}");

    let mut cmd = cli();
    cmd.args(["import-all", "--dst-uri", &pair.dst.uri, "-i", vector]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("units of kind \"scorers\"") && err.contains("--skip-unknown-kinds"),
        "{err}"
    );

    let mut cmd = cli();
    cmd.args([
        "import-all",
        "--dst-uri",
        &pair.dst.uri,
        "--skip-unknown-kinds",
        "-i",
        vector,
    ]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: skipped 1 units of kind \"scorers\""),
        "{err}"
    );
}

/// Records of a dataset on `uri`, as the set of their inputs.
async fn inputs_of(c: &mlflow_archive::mlflow::Client, id: &str) -> Vec<String> {
    use futures_util::TryStreamExt;
    let pages: Vec<Vec<serde_json::Value>> =
        c.dataset_records(id, None).try_collect().await.unwrap();
    let mut out: Vec<String> = pages
        .concat()
        .iter()
        .map(|r| r["inputs"].to_string())
        .collect();
    out.sort();
    out
}

/// Dataset names are not unique in MLflow: two source datasets of one name stay two at the
/// destination, and a dataset of that name the import did not make is left alone, however often
/// the import runs. A trace cannot be imported a second time into its own server (MLflow keys
/// traces by id): the import says so, naming it, and `--no-traces` imports the rest.
#[tokio::test]
async fn same_named_datasets_stay_apart_and_traces_can_be_left_out() {
    let pair = crate::live_pair!();
    let (src, dst) = (
        crate::util::client(&pair.src.uri),
        crate::util::client(&pair.dst.uri),
    );
    let exp_name = unique("twins");
    let exp = src.create_experiment(&exp_name, None, &[]).await.unwrap();
    let name = unique("twin");
    let mut want = Vec::new();
    for side in ["left", "right"] {
        let d = src
            .create_dataset(&name, std::slice::from_ref(&exp), &Default::default())
            .await
            .unwrap();
        let records: Vec<serde_json::Value> = (0..3)
            .map(|i| serde_json::json!({"inputs": {"side": side, "i": i}}))
            .collect();
        src.upsert_dataset_records(&d.dataset_id, &records)
            .await
            .unwrap();
        want.push(inputs_of(&src, &d.dataset_id).await);
    }
    let unrelated = dst
        .create_dataset(&name, &[], &Default::default())
        .await
        .unwrap();
    let theirs = vec![serde_json::json!({"inputs": {"not": "ours"}})];
    dst.upsert_dataset_records(&unrelated.dataset_id, &theirs)
        .await
        .unwrap();

    // A trace in the experiment, made by MLflow's own client.
    let script = "import mlflow, sys\nmlflow.set_experiment(experiment_id=sys.argv[1])\n@mlflow.trace\ndef f(x):\n    return x\nf(1)\nmlflow.flush_trace_async_logging()\n";
    let uri = pair.src.uri.clone();
    let e = exp.clone();
    tokio::task::spawn_blocking(move || {
        let venv = crate::util::server::venv().unwrap();
        let out = std::process::Command::new(venv.join("bin/python"))
            .args(["-c", script, &e])
            .env("MLFLOW_TRACKING_URI", uri)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("twins.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &exp_name,
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.contains("1 traces"), "{err}");
    for _ in 0..2 {
        let mut cmd = cli();
        cmd.args(["import-experiment", "--dst-uri", &pair.dst.uri, "-i"])
            .arg(&path);
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let found = dst.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(found.len(), 3, "two imported, one left alone: {found:?}");
    let mut got = Vec::new();
    for d in &found {
        let inputs = inputs_of(&dst, &d.dataset_id).await;
        if d.dataset_id == unrelated.dataset_id {
            assert_eq!(
                inputs,
                [r#"{"not":"ours"}"#],
                "the unrelated dataset is untouched"
            );
        } else {
            got.push(inputs);
        }
    }
    got.sort();
    want.sort();
    assert_eq!(got, want);

    // Back into the server it came from, as another experiment: the trace is refused by name…
    let again = unique("again");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.src.uri,
        "--experiment-name",
        &again,
        "-i",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is already on") && err.contains("--no-traces"),
        "{err}"
    );
    // … and left out when asked.
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.src.uri,
        "--experiment-name",
        &again,
        "--no-traces",
        "-i",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success()
            && err.contains("1 traces and evaluation datasets of the archive left out"),
        "{err}"
    );
}
