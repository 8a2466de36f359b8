//! `compare` on real servers: after an export → import of a source holding every kind of run
//! object, a logged model and a registered model with a gap, stages and aliases, compare says
//! equal (server against server, and the archive against the server it was imported into); then
//! four changes made at the destination through MLflow's Python client (a metric point, a deleted
//! file, a retagged version, a deleted run) are each named, and nothing else is.

use std::collections::BTreeMap;

use crate::fidelity::populate_everything;
use crate::util::server::MlflowServer;
use crate::util::stores::harness_python;
use crate::util::{cli, client, output, runs_of};

async fn compare(args: &[&str]) -> (bool, serde_json::Value, String) {
    let mut cmd = cli();
    cmd.arg("compare").args(args).arg("--json");
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{err}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.success(), report, err)
}

/// (equal, missing, extra, different) per kind.
fn counts(report: &serde_json::Value) -> BTreeMap<String, [u64; 4]> {
    report["kinds"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, c)| {
            let n = |f: &str| c[f].as_u64().unwrap();
            (
                k.clone(),
                [n("equal"), n("missing"), n("extra"), n("different")],
            )
        })
        .collect()
}

/// `import-all` of `archive` into `uri` with `options`, which must succeed.
async fn import_all(archive: &str, uri: &str, options: &[&str]) {
    let mut cmd = cli();
    cmd.args(["import-all", "--dst-uri", uri, "-i", archive])
        .args(options);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn tamper(uri: &str, args: &[&str]) {
    let (uri, args): (String, Vec<String>) = (
        uri.to_string(),
        args.iter().map(|a| a.to_string()).collect(),
    );
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        harness_python("tamper.py", &uri, &args, &[])
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn compare_finds_a_migration_equal_then_names_each_of_four_changes_and_nothing_else() {
    let Some(servers) =
        MlflowServer::start_fresh(&["compare-src", "compare-dst", "compare-renamed"]).await
    else {
        return;
    };
    let (src, dst, renamed) = (&servers[0], &servers[1], &servers[2]);
    let (experiment, model) = populate_everything(&client(&src.uri)).await;
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.mlar");
    let archive = archive.to_str().unwrap();
    let mut cmd = cli();
    cmd.args(["export-all", "--src-uri", &src.uri, "-o", archive]);
    assert!(output(cmd).await.status.success());
    import_all(archive, &dst.uri, &[]).await;

    // Equal: server against server, and the archive against the server it went into.
    for args in [
        vec!["--src-uri", &src.uri, "--dst-uri", &dst.uri],
        vec![archive, "--dst-uri", &dst.uri],
    ] {
        let (ok, report, err) = compare(&args).await;
        let c = counts(&report);
        assert!(ok, "{args:?}: {report:#}\n{err}");
        // 4 active runs (the deleted one is not compared), 12 versions (one deleted: a gap).
        assert_eq!(c["runs"], [4, 0, 0, 0], "{report:#}");
        assert_eq!(
            c["experiments"],
            [2, 0, 0, 0],
            "the experiment and Default: {report:#}"
        );
        assert_eq!(c["logged models"], [1, 0, 0, 0], "{report:#}");
        assert_eq!(c["registered models"], [1, 0, 0, 0], "{report:#}");
        assert_eq!(c["model versions"], [12, 0, 0, 0], "{report:#}");
        assert!(
            report["differences"].as_array().unwrap().is_empty(),
            "{report:#}"
        );
        assert!(!report["not_compared"].as_array().unwrap().is_empty());
    }

    // Scoped to the experiment: its runs and logged model, no registry.
    let (ok, report, err) = compare(&[
        "--src-uri",
        &src.uri,
        "--dst-uri",
        &dst.uri,
        "--experiments",
        &experiment,
    ])
    .await;
    assert!(ok, "{report:#}\n{err}");
    let c = counts(&report);
    assert_eq!(c["runs"], [4, 0, 0, 0], "{report:#}");
    assert!(!c.contains_key("model versions"), "{report:#}");

    // Two archives: the source's and one exported from the destination.
    let replica = dir.path().join("replica.mlar");
    let replica = replica.to_str().unwrap();
    let mut cmd = cli();
    cmd.args(["export-all", "--src-uri", &dst.uri, "-o", replica]);
    assert!(output(cmd).await.status.success());
    let (ok, report, err) = compare(&[archive, replica]).await;
    assert!(ok, "{report:#}\n{err}");
    assert_eq!(
        counts(&report)["model versions"],
        [12, 0, 0, 0],
        "{report:#}"
    );

    // An import that renamed: equal when compare is given the same names, not without them.
    let map = format!("{model}={model}-renamed");
    let names = [
        "--experiment-name-prefix",
        "renamed/",
        "--model-name-map",
        &map,
    ];
    import_all(archive, &renamed.uri, &names).await;
    for args in [
        vec!["--src-uri", &src.uri, "--dst-uri", &renamed.uri],
        vec![archive, "--dst-uri", &renamed.uri],
        vec![
            "--src-uri",
            &src.uri,
            "--dst-uri",
            &renamed.uri,
            "--experiments",
            &experiment,
        ],
        // An archive's experiment, looked up at the destination under the prefix.
        vec![
            archive,
            "--dst-uri",
            &renamed.uri,
            "--experiments",
            &experiment,
        ],
        vec![
            "--src-uri",
            &src.uri,
            "--dst-uri",
            &renamed.uri,
            "--models",
            &model,
        ],
    ] {
        let (ok, report, err) = compare(&[&args[..], &names[..]].concat()).await;
        assert!(ok, "{args:?}: {report:#}\n{err}");
        let c = counts(&report);
        if args.contains(&"--models") {
            assert_eq!(c["model versions"], [12, 0, 0, 0], "{report:#}");
        } else {
            assert_eq!(c["runs"], [4, 0, 0, 0], "{args:?}: {report:#}");
        }
        if args.len() == 4 {
            assert_eq!(c["model versions"], [12, 0, 0, 0], "{report:#}");
            assert_eq!(c["experiments"], [2, 0, 0, 0], "{report:#}");
        }
    }
    let (ok, report, _) = compare(&["--src-uri", &src.uri, "--dst-uri", &renamed.uri]).await;
    assert!(!ok, "the renamed objects are missing without the names");
    let c = counts(&report);
    assert_eq!(
        c["experiments"],
        [1, 1, 2, 0],
        "Default paired with the destination's own, the experiment missing, both imported ones extra: {report:#}"
    );
    assert_eq!(c["registered models"], [0, 1, 1, 0], "{report:#}");

    // A cut archive is a failure naming the side, not a verdict.
    let bytes = std::fs::read(replica).unwrap();
    let cut = dir.path().join("cut.mlar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let mut cmd = cli();
    cmd.args(["compare", archive, cut.to_str().unwrap(), "--json"]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no report from a side that could not be read"
    );
    assert!(err.contains("reading the destination"), "{err}");

    // Four changes at the destination, through MLflow's own client.
    let at_dst = runs_of(&client(&dst.uri), &experiment).await;
    let id = |name: &str, lineage: bool| {
        let r = at_dst.iter().find(|r| r.info.run_name == name).unwrap();
        if lineage {
            r.data
                .tags
                .iter()
                .find(|t| t.key == "mlflow_archive.source.run_id")
                .unwrap()
                .value
                .clone()
        } else {
            r.info.run_id.clone()
        }
    };
    tamper(
        &dst.uri,
        &[
            "log-point",
            &id("root", false),
            "accuracy",
            "5",
            "1600000009999",
            "0.25",
        ],
    )
    .await;
    tamper(
        &dst.uri,
        &["delete-artifact", &id("child", false), "empty.txt"],
    )
    .await;
    tamper(
        &dst.uri,
        &["set-version-tag", &model, "1", "build", "tampered"],
    )
    .await;
    tamper(&dst.uri, &["delete-run", &id("still running", false)]).await;

    let (ok, report, err) = compare(&["--src-uri", &src.uri, "--dst-uri", &dst.uri]).await;
    assert!(
        !ok,
        "a changed destination must fail the compare: {report:#}\n{err}"
    );
    let c = counts(&report);
    assert_eq!(c["runs"], [1, 1, 0, 2], "{report:#}");
    assert_eq!(c["model versions"], [11, 0, 0, 1], "{report:#}");
    for kind in ["experiments", "logged models", "registered models"] {
        assert_eq!(c[kind][1..], [0, 0, 0], "{kind}: {report:#}");
    }
    let named: Vec<(String, String, Vec<String>)> = report["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["what"].as_str().unwrap().to_string(),
                d["object"].as_str().unwrap().to_string(),
                d["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["field"].as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect();
    assert_eq!(named.len(), 4, "{named:#?}");
    let find = |what: &str, object: &str| {
        named
            .iter()
            .find(|(w, o, _)| w == what && o.contains(object))
            .unwrap_or_else(|| panic!("no {what} {object} in {named:#?}"))
            .2
            .clone()
    };
    assert_eq!(find("different", &id("root", true)), ["metric accuracy"]);
    assert_eq!(find("different", &id("child", true)), ["file empty.txt"]);
    assert_eq!(
        find("different", "version 1 of registered model"),
        ["tag build"]
    );
    let missing = find("missing", "run ");
    assert!(missing.is_empty(), "{named:#?}");
    assert!(
        named
            .iter()
            .any(|(w, o, _)| w == "missing" && o.contains("still running")),
        "{named:#?}"
    );
}

/// MLflow 3's objects: after a `copy-all` of a server holding prompts (versions, aliases),
/// traces (spans, assessments, an attachment) and an evaluation dataset (records, a run input
/// naming it), compare finds every kind equal, then names a trace tag set at the destination.
#[tokio::test]
async fn prompts_traces_and_datasets_compare_equal_after_a_copy() {
    let Some(servers) =
        MlflowServer::start_fresh(&["compare-genai-src", "compare-genai-dst"]).await
    else {
        return;
    };
    let (src, dst) = (&servers[0], &servers[1]);
    let tag = crate::util::unique("cg");
    let (uri, t) = (src.uri.clone(), tag.clone());
    tokio::task::spawn_blocking(move || harness_python("genai.py", &uri, &["populate", &t], &[]))
        .await
        .unwrap();
    let mut cmd = cli();
    cmd.args(["copy-all", "--src-uri", &src.uri, "--dst-uri", &dst.uri]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (ok, report, err) = compare(&["--src-uri", &src.uri, "--dst-uri", &dst.uri]).await;
    assert!(ok, "{report:#}\n{err}");
    let c = counts(&report);
    assert_eq!(c["traces"], [4, 0, 0, 0], "{report:#}");
    assert_eq!(c["datasets"], [1, 0, 0, 0], "{report:#}");
    assert_eq!(c["prompts"], [2, 0, 0, 0], "{report:#}");
    assert_eq!(c["prompt versions"], [3, 0, 0, 0], "{report:#}");

    let trace = client(&dst.uri);
    let traces: Vec<_> = {
        use futures_util::TryStreamExt;
        let exps: Vec<String> = trace
            .search_experiments(mlflow_archive::mlflow::types::ViewType::ActiveOnly, None)
            .map_ok(|e| e.experiment_id)
            .try_collect()
            .await
            .unwrap();
        trace
            .search_traces(&exps, None)
            .try_collect()
            .await
            .unwrap()
    };
    let id = traces[0].trace_id.clone();
    tamper(&dst.uri, &["set-trace-tag", &id, "reviewed", "yes"]).await;
    let (ok, report, _) = compare(&["--src-uri", &src.uri, "--dst-uri", &dst.uri]).await;
    assert!(!ok);
    let c = counts(&report);
    assert_eq!(c["traces"], [3, 0, 0, 1], "{report:#}");
    let d = &report["differences"][0];
    assert_eq!(d["object"], format!("trace {id}"), "{report:#}");
    assert_eq!(d["fields"][0]["field"], "tag reviewed", "{report:#}");
}
