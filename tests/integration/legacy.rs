//! The Python tool's layouts. The trees under `tests/data/legacy/v2` were written by the real
//! `mlflow-export-import` 1.2.0 from PyPI (`tests/data/legacy/make_fixtures.sh`): importing them
//! with mlflow-archive gives what the Python tool's own import gives, and keeps what that import
//! drops.

use std::collections::BTreeMap;

use crate::fidelity::{SeenRun, observe};
use crate::live_pair;
use crate::util::server::{repo_root, venv};
use crate::util::{cli, client, output, unique};

fn fixture(kind: &str) -> std::path::PathBuf {
    repo_root().join("tests/data/legacy/v2").join(kind)
}

/// The Python tool's import of `tree` into `experiment` on `uri`.
async fn python_import(uri: &str, tree: &std::path::Path, args: &[&str]) {
    let venv = venv().expect("the test venv (scripts/ensure-venv.sh)");
    let mut cmd = std::process::Command::new(venv.join("bin").join(args[0]));
    cmd.args(&args[1..])
        .arg("--input-dir")
        .arg(tree)
        .env("MLFLOW_TRACKING_URI", uri);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the Python tool's {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What both imports must agree on: names, params, tags, histories, artifacts, nesting.
fn comparable(runs: &BTreeMap<String, SeenRun>) -> BTreeMap<String, String> {
    runs.iter()
        .map(|(name, r)| {
            let tags: BTreeMap<&String, &String> = r
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("mlflow_export_import."))
                .collect();
            (
                name.clone(),
                format!(
                    "params {:?}\ntags {:?}\nhistories {:?}\nartifacts {:?}",
                    r.params, tags, r.histories, r.artifacts
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_v2_experiment_tree_imports_as_the_python_tool_imports_it_and_keeps_its_times() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let tree = fixture("experiment");
    let ours = unique("legacy-ours");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--use-src-user-id",
        "-i",
    ])
    .arg(&tree)
    .args(["--experiment-name", &ours]);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 runs imported"), "{stderr}");
    let theirs = unique("legacy-python");
    python_import(
        &pair.dst.uri,
        &tree,
        &[
            "import-experiment",
            "--experiment-name",
            &theirs,
            "--use-src-user-id",
            "True",
        ],
    )
    .await;

    let a = observe(&dst, &ours, None).await;
    let b = observe(&dst, &theirs, None).await;
    assert_eq!(a.runs.len(), 4);
    let (ca, cb) = (comparable(&a.runs), comparable(&b.runs));
    assert_eq!(ca.keys().collect::<Vec<_>>(), cb.keys().collect::<Vec<_>>());
    for (name, want) in &cb {
        assert_eq!(
            &ca[name], want,
            "run {name:?}: mlflow-archive vs the Python tool"
        );
    }
    assert_eq!(a.runs["grandchild"].tags["mlflow.parentRunId"], "<child>");
    assert_eq!(a.runs["grandchild"].histories["loss"].len(), 20);

    // What the tree holds of each run's times and status arrives too.
    for (name, r) in &a.runs {
        let dir = std::fs::read_dir(&tree)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                std::fs::read_to_string(p.join("run.json"))
                    .is_ok_and(|t| t.contains(&format!("\"run_name\": \"{name}\"")))
            })
            .unwrap_or_else(|| panic!("no run.json for {name}"));
        let doc: serde_json::Value =
            mlflow_archive::mlflow::json::parse(&std::fs::read(dir.join("run.json")).unwrap())
                .unwrap();
        let info = &doc["mlflow"]["info"];
        assert_eq!(r.start_time, info["start_time"].as_i64(), "{name}");
        assert_eq!(r.end_time, info["end_time"].as_i64(), "{name}");
        assert_eq!(r.status, info["status"].as_str().unwrap(), "{name}");
    }
}

/// The Python tool's own `import-model` cannot import this tree into a server that serves
/// artifacts (it checks each version's source as a local path), so the destination is compared
/// with the tree itself.
#[tokio::test]
async fn a_v2_model_tree_imports_with_every_version_number_stage_alias_and_run() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let (model, experiment) = (unique("legacy-model"), unique("legacy-model-runs"));
    let mut cmd = cli();
    cmd.args(["import-model", "--dst-uri", &pair.dst.uri, "-i"])
        .arg(fixture("model"))
        .args(["--model", &model, "--experiment-name", &experiment]);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let got = observe(&dst, &experiment, Some(&model)).await;
    assert_eq!(got.model_description, "legacy fixture");
    assert_eq!(got.model_tags["owner"], "fixtures");
    assert_eq!(got.aliases["champion"], "3");
    assert_eq!(got.versions.keys().copied().collect::<Vec<_>>(), [1, 3, 4]);
    for (n, run) in [(1, "parent"), (3, "grandchild"), (4, "other child")] {
        let v = &got.versions[&n];
        assert_eq!(v.run, format!("<{run}>"), "version {n}");
        assert_eq!(v.source, format!("runs:/<{run}>/model"), "version {n}");
        assert_eq!(v.description, format!("build {n}"));
        assert_eq!(v.tags["build"], n.to_string());
        let stage = if n == 3 { "Production" } else { "None" };
        assert_eq!(v.stage, stage, "version {n}");
    }
    // The versions' runs, with their histories and files.
    assert_eq!(got.runs.len(), 3);
    assert_eq!(got.runs["parent"].histories["loss"].len(), 20);
    assert_eq!(got.runs["parent"].artifacts.len(), 3);
}

/// Copies a fixture tree to a scratch directory, to break it.
fn scratch_copy(kind: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixture(kind))
        .arg(dir.path().join("t"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn inspect_fails(tree: &std::path::Path, want: &[&str]) {
    let out = assert_cmd::Command::cargo_bin("mlflow-archive")
        .unwrap()
        .arg("inspect")
        .arg(tree)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for w in want {
        assert!(stderr.contains(w), "{w:?} not in: {stderr}");
    }
}

#[test]
fn malformed_trees_get_an_error_naming_the_file() {
    // A listed run whose directory is missing.
    let d = scratch_copy("experiment");
    let t = d.path().join("t");
    let run = std::fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let id = run.file_name().unwrap().to_string_lossy().to_string();
    std::fs::remove_dir_all(&run).unwrap();
    inspect_fails(&t, &[&id, "is listed but neither"]);

    // A run.json of the wrong shape.
    let d = scratch_copy("run");
    let t = d.path().join("t");
    std::fs::write(t.join("run.json"), r#"{"mlflow": {"info": 5}}"#).unwrap();
    inspect_fails(
        &t,
        &["run.json", "not the layout mlflow-export-import writes"],
    );

    // Unknown keys are ignored; a symbolic link among the artifacts is refused.
    let d = scratch_copy("run");
    let t = d.path().join("t");
    std::os::unix::fs::symlink("/etc/passwd", t.join("artifacts/escape")).unwrap();
    inspect_fails(&t, &["escape", "not a regular file"]);

    // Not a tree of the Python tool at all.
    let d = tempfile::tempdir().unwrap();
    inspect_fails(d.path(), &["not an export of mlflow-export-import"]);
}

#[tokio::test]
async fn a_v2_export_all_tree_imports_whole_and_twice_changes_nothing() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let prefix = unique("bulk");
    for round in 0..2 {
        let mut cmd = cli();
        cmd.args(["import-all", "--dst-uri", &pair.dst.uri, "-i"])
            .arg(fixture("all"))
            .args(["--experiment-name-prefix", &format!("{prefix}/")]);
        let out = output(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if round == 1 {
            assert!(
                stderr.contains("0 runs imported, 4 already complete"),
                "{stderr}"
            );
        }
    }
    let got = observe(
        &dst,
        &format!("{prefix}/fixture/wine"),
        Some("fixture-model"),
    )
    .await;
    assert_eq!(got.runs.len(), 4);
    assert_eq!(got.versions.keys().copied().collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(got.versions[&3].run, "<grandchild>");
    assert_eq!(got.aliases["champion"], "3");
}
