//! MLflow workspaces (`--enable-workspaces`): a server holding the same names in three
//! workspaces (made with MLflow's own Python client, tests/harness/workspaces.py) moves with
//! export-all → import-all into another server with workspaces, each object into its own
//! workspace; `--workspace` exports one, `--dst-workspace` imports into one; into a server
//! without workspaces the import says which workspaces it merged.

use crate::util::server::MlflowServer;
use crate::util::stores::harness_python;
use crate::util::{cli, output, unique};

const WORKSPACES: [&str; 3] = ["default", "team-a", "team-b"];

async fn harness(uri: &str, what: &str, tag: &str, workspaces: &[&str]) -> serde_json::Value {
    let (uri, what, tag) = (uri.to_string(), what.to_string(), tag.to_string());
    let workspaces: Vec<String> = workspaces.iter().map(|w| w.to_string()).collect();
    let out = tokio::task::spawn_blocking(move || {
        let mut args = vec![what.as_str(), tag.as_str()];
        args.extend(workspaces.iter().map(String::as_str));
        harness_python("workspaces.py", &uri, &args, &[])
    })
    .await
    .unwrap();
    serde_json::from_str(&out).unwrap()
}

async fn run_ok(args: &[&str]) -> String {
    let mut cmd = cli();
    cmd.args(args);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{args:?}: {err}");
    err
}

#[tokio::test]
async fn workspaces_round_trip_each_object_into_its_own() {
    let (src, dst, plain) = tokio::task::spawn_blocking(|| {
        let d = std::thread::spawn(|| MlflowServer::start_with_workspaces("ws-dst"));
        let p = std::thread::spawn(|| MlflowServer::start("ws-plain", None));
        (
            MlflowServer::start_with_workspaces("ws-src"),
            d.join().unwrap(),
            p.join().unwrap(),
        )
    })
    .await
    .unwrap();
    let (Some(src), Some(dst), Some(plain)) = (src, dst, plain) else {
        return;
    };
    let tag = unique("w");
    harness(&src.uri, "populate", &tag, &WORKSPACES).await;
    let want = harness(&src.uri, "dump", &tag, &WORKSPACES).await;
    for ws in WORKSPACES {
        let runs = &want[ws]["experiments"][format!("exp-{tag}")]["r"];
        assert_eq!(runs["note"], format!("from {ws}"), "{want:#}");
    }

    let dir = tempfile::tempdir().unwrap();
    let all = dir.path().join("all.mlar");
    let all_s = all.display().to_string();
    run_ok(&["export-all", "--src-uri", &src.uri, "-o", &all_s]).await;
    for _ in 0..2 {
        let err = run_ok(&["import-all", "--dst-uri", &dst.uri, "-i", &all_s]).await;
        assert!(
            err.contains("into workspaces: default, team-a, team-b"),
            "{err}"
        );
    }
    assert_eq!(harness(&dst.uri, "dump", &tag, &WORKSPACES).await, want);

    // One workspace out, into another one (made by the import).
    let one = dir.path().join("team-a.mlar");
    let one_s = one.display().to_string();
    run_ok(&[
        "export-all",
        "--src-uri",
        &src.uri,
        "--workspace",
        "team-a",
        "-o",
        &one_s,
    ])
    .await;
    run_ok(&[
        "import-all",
        "--dst-uri",
        &dst.uri,
        "--dst-workspace",
        "team-c",
        "-i",
        &one_s,
    ])
    .await;
    let got = harness(&dst.uri, "dump", &tag, &["team-c"]).await;
    assert_eq!(got["team-c"], want["team-a"]);

    // Into a server without workspaces: one namespace, and the import says what it merged.
    let err = run_ok(&["import-all", "--dst-uri", &plain.uri, "-i", &one_s]).await;
    assert!(err.contains("workspaces team-a"), "{err}");
    let got = harness(&plain.uri, "dump", &tag, &["default"]).await;
    assert_eq!(got["default"], want["team-a"]);
    // The whole archive there too: the model of each workspace keeps its version (they share a
    // name, and their versions are told apart by the source model, not merged by number).
    run_ok(&["import-all", "--dst-uri", &plain.uri, "-i", &all_s]).await;
    let versions = crate::util::client(&plain.uri)
        .all_model_versions(&format!("model-{tag}"))
        .await
        .unwrap();
    assert_eq!(versions.len(), 3, "{versions:?}");
    // Naming a workspace there is refused, naming the server.
    let mut cmd = cli();
    cmd.args([
        "import-all",
        "--dst-uri",
        &plain.uri,
        "--dst-workspace",
        "x",
        "-i",
        &one_s,
    ]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("has no workspaces"),
        "{err}"
    );
}
