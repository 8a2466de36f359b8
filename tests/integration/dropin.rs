//! Drop-in (issue 19): the command lines of the Python tool's README (the fork we replace), with the
//! command name in kebab case and the rest unchanged but for ids and names, run against real
//! servers, each checked for what it says it does. The servers come from `MLFLOW_TRACKING_URI`
//! where the line names none, as for the Python tool.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::{KeyValue, Metric, ViewType};
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, CreateLoggedModel, CreateModelVersion, CreateRun, UpdateRun,
};
use mlflow_archive::transfer::import::is_abandoned;

use crate::live_pair;
use crate::util::server::MlflowServer;
use crate::util::{cli, client, output, unique};

/// Runs `line` with `MLFLOW_TRACKING_URI=uri`, in `cwd`; returns its exit code and stderr.
async fn run_line(line: &[&str], uri: &str, cwd: &Path) -> (Option<i32>, String) {
    let mut cmd = cli();
    cmd.args(line)
        .env("MLFLOW_TRACKING_URI", uri)
        .current_dir(cwd);
    let out = output(cmd).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `line` and asserts it succeeds.
async fn ok(line: &[&str], uri: &str, cwd: &Path) -> String {
    let (code, stderr) = run_line(line, uri, cwd).await;
    assert_eq!(code, Some(0), "{}: {stderr}", line.join(" "));
    stderr
}

/// The runs of experiment `name` on `c` (live, not given up by an import), by run name, with their
/// tags and params; `None` when there is no such experiment.
async fn runs(
    c: &Client,
    name: &str,
) -> Option<BTreeMap<String, (BTreeMap<String, String>, BTreeMap<String, String>)>> {
    let e = c.get_experiment_by_name(name).await.unwrap()?;
    let found: Vec<_> = c
        .search_runs(&[&e.experiment_id], None, ViewType::ActiveOnly)
        .try_collect()
        .await
        .unwrap();
    let kv = |v: &[KeyValue]| {
        v.iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    Some(
        found
            .iter()
            .filter(|r| !is_abandoned(r))
            .map(|r| {
                (
                    r.info.run_name.clone(),
                    (kv(&r.data.tags), kv(&r.data.params)),
                )
            })
            .collect(),
    )
}

/// The run names of experiment `name` on `c` (which must exist).
async fn run_names(c: &Client, name: &str) -> Vec<String> {
    let found = runs(c, name)
        .await
        .unwrap_or_else(|| panic!("no experiment {name:?} on {}", c.server()));
    found.into_keys().collect()
}

/// An experiment `name` with runs named `runs` (params, a short history, a file, a source tag);
/// returns the experiment id and the run ids.
async fn experiment(c: &Client, name: &str, runs: &[&str]) -> (String, Vec<String>) {
    let exp = c.create_experiment(name, None, &[]).await.unwrap();
    let mut ids = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let r = c
            .create_run(&CreateRun {
                experiment_id: exp.clone(),
                run_name: Some(run.to_string()),
                tags: vec![
                    KeyValue::new("mlflow.user", "alice"),
                    KeyValue::new("mlflow.source.name", "train.py"),
                ],
                ..CreateRun::default()
            })
            .await
            .unwrap();
        let id = r.info.run_id.clone();
        let points: Vec<Metric> = (0..3)
            .map(|s| Metric {
                key: "rmse".into(),
                value: 1.0 / (s + 1 + i) as f64,
                timestamp: 1_700_000_000_000 + s as i64,
                step: s as i64,
                ..Metric::default()
            })
            .collect();
        c.log_batch(&id, &points, &[KeyValue::new("alpha", i.to_string())], &[])
            .await
            .unwrap();
        let root = ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
        c.upload_artifact_bytes(
            &root,
            "model/MLmodel",
            Bytes::from(format!("run_id: {id}\nflavors: {{}}\n")),
        )
        .await
        .unwrap();
        c.update_run(&UpdateRun {
            run_id: id.clone(),
            status: Some("FINISHED".into()),
            end_time: Some(1_700_000_100_000),
            run_name: None,
        })
        .await
        .unwrap();
        ids.push(id);
    }
    (exp, ids)
}

#[tokio::test]
async fn the_python_tools_documented_command_lines_run_unchanged() {
    let pair = live_pair!();
    // A source of its own: `--experiments all` and `list-registered-models` see only this data.
    let Some(own) = tokio::task::spawn_blocking(|| MlflowServer::start("dropin-src", None))
        .await
        .unwrap()
    else {
        return;
    };
    let (s, d) = (own.uri.as_str(), pair.dst.uri.as_str());
    let src = client(s);
    let dst = client(d);
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let at = |p: &str| cwd.join(p).to_string_lossy().into_owned();

    // The source: an experiment with two runs and a logged model, another with one run, and a
    // registered model whose version 1 comes from a run and version 2 from the logged model
    // (MLflow 3: `models:/m-…`).
    let wine = unique("sklearn_wine");
    let (wine_id, wine_runs) = experiment(&src, &wine, &["train a", "train b"]).await;
    let spark = unique("sparkml");
    let (spark_id, _) = experiment(&src, &spark, &["spark"]).await;
    let lm = src
        .create_logged_model(&CreateLoggedModel {
            experiment_id: wine_id.clone(),
            name: Some("wine-lm".into()),
            source_run_id: Some(wine_runs[0].clone()),
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap()
        .info
        .model_id;
    src.finalize_logged_model(&lm, "LOGGED_MODEL_READY")
        .await
        .unwrap();
    let model = unique("sklearn_wine");
    src.create_registered_model(&model, Some("wine"), &[])
        .await
        .unwrap();
    for (source, model_id) in [
        (format!("runs:/{}/model", wine_runs[0]), None),
        (format!("models:/{lm}"), Some(lm.clone())),
    ] {
        src.create_model_version(&CreateModelVersion {
            name: model.clone(),
            source,
            run_id: Some(wine_runs[0].clone()),
            model_id,
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    let run = wine_runs[1].as_str();

    // copy-run --src-run-id R --dst-experiment-name E --src-uri … --dst-uri …
    let copied = unique("sklearn_wine");
    ok(
        &[
            "copy-run",
            "--src-run-id",
            run,
            "--dst-experiment-name",
            &copied,
            "--src-uri",
            s,
            "--dst-uri",
            d,
        ],
        d,
        cwd,
    )
    .await;
    let got = runs(&dst, &copied).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["train b"]);
    assert_eq!(got["train b"].1["alpha"], "1");

    // export-experiment --experiment E --output-dir out --notebook-formats DBC,SOURCE, with the
    // boolean spelling --export-metadata-tags True.
    ok(
        &[
            "export-experiment",
            "--experiment",
            &wine,
            "--output-dir",
            &at("exp"),
            "--notebook-formats",
            "DBC,SOURCE",
            "--export-metadata-tags",
            "True",
        ],
        s,
        cwd,
    )
    .await;
    let run_json = std::fs::read_to_string(cwd.join("exp").join(run).join("run.json")).unwrap();
    assert!(
        run_json.contains("mlflow_tools.metadata.run-id"),
        "--export-metadata-tags True adds the provenance tags"
    );

    // import-experiment --experiment-name X --input-dir out, with --use-src-user-id False,
    // --import-mlflow-tags True, --import-metadata-tags False.
    let imported = unique("imported_sklearn");
    ok(
        &[
            "import-experiment",
            "--experiment-name",
            &imported,
            "--input-dir",
            &at("exp"),
            "--use-src-user-id",
            "False",
            "--import-mlflow-tags",
            "True",
            "--import-metadata-tags",
            "False",
        ],
        d,
        cwd,
    )
    .await;
    let got = runs(&dst, &imported).await.unwrap();
    assert_eq!(got.keys().collect::<Vec<_>>(), ["train a", "train b"]);
    for (name, (tags, _)) in &got {
        assert_eq!(
            tags["mlflow.source.name"], "train.py",
            "{name}: mlflow tags"
        );
        assert_ne!(
            tags.get("mlflow.user").map(String::as_str),
            Some("alice"),
            "{name}: not the source's user"
        );
        assert!(
            !tags.keys().any(|k| k.starts_with("mlflow_tools.metadata.")),
            "{name}: no metadata tags"
        );
    }
    // --just-peek True: shows, imports nothing.
    let peeked = unique("peeked");
    let stderr = ok(
        &[
            "import-experiment",
            "--experiment-name",
            &peeked,
            "--input-dir",
            &at("exp"),
            "--just-peek",
            "True",
        ],
        d,
        cwd,
    )
    .await;
    assert!(
        runs(&dst, &peeked).await.is_none(),
        "--just-peek created the experiment: {stderr}"
    );

    // export-experiment-list --experiment ID --output-dir out: that one experiment, in the layout
    // of export-experiments.
    ok(
        &[
            "export-experiment-list",
            "--experiment",
            &spark_id,
            "--output-dir",
            &at("one"),
        ],
        s,
        cwd,
    )
    .await;
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("one/experiments.json")).unwrap()).unwrap();
    let ids: Vec<&str> = list["mlflow"]["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [spark_id.as_str()]);
    assert!(
        cwd.join("one")
            .join(&spark_id)
            .join("experiment.json")
            .is_file()
    );

    // export-experiment-list --experiments ID,ID | NAME,NAME | all --output-dir out, each imported
    // with import-experiment-list --experiment-name-prefix P --input-dir out.
    let by_ids = format!("{wine_id},{spark_id}");
    let by_names = format!("{wine},{spark}");
    for (i, list) in [by_ids.as_str(), by_names.as_str(), "all"]
        .into_iter()
        .enumerate()
    {
        let out = at(&format!("list{i}"));
        ok(
            &[
                "export-experiment-list",
                "--experiments",
                list,
                "--output-dir",
                &out,
            ],
            s,
            cwd,
        )
        .await;
        let prefix = format!("{}_", unique("imported"));
        ok(
            &[
                "import-experiment-list",
                "--experiment-name-prefix",
                &prefix,
                "--input-dir",
                &out,
            ],
            d,
            cwd,
        )
        .await;
        assert_eq!(
            run_names(&dst, &format!("{prefix}{wine}")).await,
            ["train a", "train b"],
            "{list}"
        );
        assert_eq!(
            run_names(&dst, &format!("{prefix}{spark}")).await,
            ["spark"],
            "{list}"
        );
    }

    // copy-experiment --src-experiment E --dst-experiment-name X --src-uri … --dst-uri …
    let copied = unique("sklearn_wine_imported");
    ok(
        &[
            "copy-experiment",
            "--src-experiment",
            &wine,
            "--dst-experiment-name",
            &copied,
            "--src-uri",
            s,
            "--dst-uri",
            d,
        ],
        d,
        cwd,
    )
    .await;
    assert_eq!(run_names(&dst, &copied).await, ["train a", "train b"]);

    // export-run --run-id R --output out, then import-run --run-id R --input out
    // --experiment-name X.
    ok(
        &["export-run", "--run-id", run, "--output", &at("run")],
        s,
        cwd,
    )
    .await;
    let one = unique("sklearn_wine_imported");
    ok(
        &[
            "import-run",
            "--run-id",
            run,
            "--input",
            &at("run"),
            "--experiment-name",
            &one,
        ],
        d,
        cwd,
    )
    .await;
    assert_eq!(run_names(&dst, &one).await, ["train b"]);
    // From an input holding several runs: that run alone.
    let picked = unique("picked");
    ok(
        &[
            "import-run",
            "--run-id",
            run,
            "--input",
            &at("exp"),
            "--experiment-name",
            &picked,
        ],
        d,
        cwd,
    )
    .await;
    assert_eq!(run_names(&dst, &picked).await, ["train b"]);
    // A run the input does not hold: an error naming it, and nothing created.
    let none = unique("none");
    let missing = "0123456789abcdef0123456789abcdef";
    let (code, stderr) = run_line(
        &[
            "import-run",
            "--run-id",
            missing,
            "--input",
            &at("exp"),
            "--experiment-name",
            &none,
        ],
        d,
        cwd,
    )
    .await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("run {missing}: not in the input")) && stderr.contains(run),
        "{stderr}"
    );
    assert!(runs(&dst, &none).await.is_none(), "{stderr}");

    // export-model --model M --output-dir out, then import-model --model M --experiment-name E
    // --input-dir out --delete-model True: version 2 comes from the logged model.
    ok(
        &[
            "export-model",
            "--model",
            &model,
            "--output-dir",
            &at("model"),
        ],
        s,
        cwd,
    )
    .await;
    let model_runs = unique("sklearn_wine_imported");
    for _ in 0..2 {
        ok(
            &[
                "import-model",
                "--model",
                &model,
                "--experiment-name",
                &model_runs,
                "--input-dir",
                &at("model"),
                "--delete-model",
                "True",
            ],
            d,
            cwd,
        )
        .await;
    }
    let versions = dst.all_model_versions(&model).await.unwrap();
    let numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(
        numbers,
        ["1", "2"],
        "--delete-model True: replaced, not added to"
    );
    // Its source names the destination's copy of the logged model.
    let v2 = &versions[1];
    let dst_lm = v2
        .source
        .strip_prefix("models:/")
        .unwrap_or_else(|| panic!("version 2 is not from a logged model: {v2:?}"));
    assert_ne!(dst_lm, lm);
    let dst_lm = dst.get_logged_model(dst_lm).await.unwrap();
    assert_eq!(dst_lm.info.name, "wine-lm");
    assert_eq!(run_names(&dst, &model_runs).await, ["train a"]);

    // list-registered-models: registered_models.json in the working directory.
    ok(&["list-registered-models"], s, cwd).await;
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cwd.join("registered_models.json")).unwrap())
            .unwrap();
    let names: Vec<&str> = listed["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [model.as_str()]);
}
