//! runs against the Databricks stand-in, not a real workspace.
//!
//! Workspace → workspace, the way Databricks users connect: two profiles of a generated
//! `DATABRICKS_CONFIG_FILE` (a personal access token for workspace A, OAuth machine-to-machine
//! service principals with 3-second tokens for both), an experiment logged in A by MLflow's own
//! client (nested artifacts, an empty file, a 12 MiB file, a logged model, a child run, a
//! notebook), moved by `export-experiment --notebook-formats` → `import-experiment
//! --dst-notebook-dir`, and directly by `copy-experiment`, while every fourth signed URL expires.
//! What lands in B is read back through the stand-in's REST API and the bucket.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::databricks_standin;
use crate::util::databricks::{ClientAuth, Settings, rest};
use crate::util::{cli, output, unique};

/// The runs of experiment `name` in a workspace, by run name.
async fn runs_named(host: &str, token: &str, name: &str) -> BTreeMap<String, Value> {
    let e = rest(
        host,
        token,
        "GET",
        "mlflow/experiments/get-by-name",
        json!({ "experiment_name": name }),
    )
    .await;
    let id = e["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = rest(
        host,
        token,
        "POST",
        "mlflow/runs/search",
        json!({ "experiment_ids": [id], "max_results": 100 }),
    )
    .await;
    runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["info"]["run_name"].as_str().unwrap().to_string(),
                r.clone(),
            )
        })
        .collect()
}

fn tag<'a>(run: &'a Value, key: &str) -> Option<&'a str> {
    run["data"]["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

async fn mlflow_archive(cfg: &std::path::Path, args: &[&str]) -> (bool, String) {
    let mut cmd = cli();
    for v in [
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "DATABRICKS_CONFIG_PROFILE",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("DATABRICKS_CONFIG_FILE", cfg).args(args);
    let out = output(cmd).await;
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn workspace_to_workspace_by_archive_and_copy_with_expiring_tokens_and_urls() {
    let standin = databricks_standin!();
    let t = unique("w2w");
    let ann = format!("ann-{t}@example.com");
    let ann_token = standin.user_with_token(0, &ann).await;
    let bob = format!("bob-{t}@example.com");
    let bob_token = standin.user_with_token(1, &bob).await;
    let (sp_a, sp_b) = (format!("sp-a-{t}"), format!("sp-b-{t}"));
    standin
        .add_service_principal(0, &sp_a, "SECRET-A-never-shown", 3.0)
        .await;
    standin
        .add_service_principal(1, &sp_b, "SECRET-B-never-shown", 3.0)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("databrickscfg");
    std::fs::write(
        &cfg,
        format!(
            "[A]\nhost = {a}\ntoken = {ann_token}\n\n[A-sp]\nhost = {a}\nclient_id = {sp_a}\nclient_secret = SECRET-A-never-shown\n\n[B]\nhost = {b}\nclient_id = {sp_b}\nclient_secret = SECRET-B-never-shown\n",
            a = standin.hosts[0],
            b = standin.hosts[1],
        ),
    )
    .unwrap();

    // Workspace A, filled by MLflow's own client; a notebook the run was logged from.
    let seeded = standin
        .mlflow_client(
            0,
            ClientAuth::Pat(&ann_token),
            "dbx_client.py",
            &["seed", &t, &ann, &(12 << 20).to_string()],
        )
        .await;
    let exp_name = seeded["experiment_name"].as_str().unwrap().to_string();
    let nb_path = format!("/Users/{ann}/{t}/train");
    standin
        .add_notebook(
            0,
            &nb_path,
            "PYTHON",
            "# Databricks notebook source\nprint('train')\n",
        )
        .await;
    let run_id = seeded["run_id"].as_str().unwrap();
    for (k, v) in [
        ("mlflow.databricks.notebookPath", nb_path.as_str()),
        ("mlflow.databricks.notebookRevisionID", "1700000000123"),
    ] {
        rest(
            &standin.hosts[0],
            &ann_token,
            "POST",
            "mlflow/runs/set-tag",
            json!({ "run_id": run_id, "key": k, "value": v }),
        )
        .await;
    }
    let src_runs = runs_named(&standin.hosts[0], &ann_token, &exp_name).await;
    let src_files = standin
        .stored(src_runs["r"]["info"]["artifact_uri"].as_str().unwrap())
        .await;
    assert!(src_files.contains_key("files/a/empty.txt"), "{src_files:?}");
    assert_eq!(src_files["large/big.bin"].size, 12 << 20);

    // Listings in pages of two; every fourth signed URL expires; every third download is cut
    // halfway (resumed from its last byte on a fresh URL).
    standin
        .settings(&Settings {
            list_page_size: Some(2),
            expire_every: Some(4),
            cut_every_get: Some(3),
            ..Settings::default()
        })
        .await;
    standin.clear_log().await;

    let archive = dir.path().join("a.mlar");
    let archive_s = archive.display().to_string();
    let (ok, err) = mlflow_archive(
        &cfg,
        &[
            "export-experiment",
            "--src-uri",
            "databricks://A",
            "--experiment",
            &exp_name,
            "--notebook-formats",
            "SOURCE,JUPYTER",
            "-o",
            &archive_s,
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert!(
        err.contains("Databricks publishes no API for revisions"),
        "{err}"
    );
    let (ok, err) = mlflow_archive(
        &cfg,
        &[
            "import-experiment",
            "--dst-uri",
            "databricks://B",
            "-i",
            &archive_s,
            "--dst-notebook-dir",
            &format!("/Shared/{t}/notebooks"),
            "--use-src-user-id",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let expired = |log: &[crate::util::databricks::LogEntry]| {
        log.iter()
            .filter(|e| e.path.starts_with("/_signed/") && e.status == 403)
            .count()
    };
    assert!(expired(&standin.log().await) > 3, "no signed URL expired");
    assert!(err.contains("--use-src-user-id is ignored"), "{err}");
    assert!(err.contains("1 notebooks into the workspace"), "{err}");
    assert!(
        !err.contains("SECRET") && !err.contains(&ann_token),
        "{err}"
    );

    let dst_runs = runs_named(&standin.hosts[1], &bob_token, &exp_name).await;
    let (src, dst) = (&src_runs["r"], &dst_runs["r"]);
    assert_eq!(
        standin
            .stored(dst["info"]["artifact_uri"].as_str().unwrap())
            .await
            .into_iter()
            .filter(|(k, _)| !k.starts_with("notebooks/"))
            .collect::<BTreeMap<_, _>>(),
        src_files
    );
    assert_eq!(dst["data"]["params"], src["data"]["params"]);
    // The token decides the user; the source's is kept beside.
    assert_eq!(tag(dst, "mlflow.user"), Some(sp_b.as_str()), "{dst:#}");
    assert_eq!(dst["info"]["user_id"], sp_b.as_str());
    assert_eq!(
        tag(dst, "mlflow_archive.source.mlflow.user"),
        Some(ann.as_str())
    );
    // The notebook, imported, and the run pointing at it.
    let new_nb = format!("/Shared/{t}/notebooks/train");
    assert_eq!(
        tag(dst, "mlflow.databricks.notebookPath"),
        Some(new_nb.as_str())
    );
    let status = rest(
        &standin.hosts[1],
        &bob_token,
        "GET",
        "workspace/get-status",
        json!({ "path": new_nb }),
    )
    .await;
    assert_eq!(status["object_type"], "NOTEBOOK");
    assert_eq!(
        tag(dst, "mlflow.databricks.notebookID"),
        Some(status["object_id"].to_string().as_str())
    );
    assert_eq!(
        tag(dst, "mlflow_archive.source.mlflow.databricks.notebookPath"),
        Some(nb_path.as_str())
    );
    assert_eq!(tag(dst, "mlflow.databricks.notebookRevisionID"), None);
    let exported = rest(
        &standin.hosts[1],
        &bob_token,
        "GET",
        "workspace/export",
        json!({ "path": new_nb, "format": "SOURCE" }),
    )
    .await;
    use base64::Engine as _;
    let content = base64::engine::general_purpose::STANDARD
        .decode(exported["content"].as_str().unwrap())
        .unwrap();
    assert!(String::from_utf8_lossy(&content).contains("print('train')"));
    // The child still points at its parent.
    assert_eq!(
        tag(&dst_runs["child"], "mlflow.parentRunId"),
        dst["info"]["run_id"].as_str()
    );

    // Directly, with OAuth on both sides: 3-second tokens outlived several times over.
    standin
        .settings(&Settings {
            object_delay_ms: Some(400),
            ..Settings::default()
        })
        .await;
    standin.clear_log().await;
    let copy_name = format!("/Shared/{t}/copy/exp");
    let started = std::time::Instant::now();
    let (ok, err) = mlflow_archive(
        &cfg,
        &[
            "copy-experiment",
            "--src-uri",
            "databricks://A-sp",
            "--dst-uri",
            "databricks://B",
            "--src-experiment",
            &exp_name,
            "--dst-experiment-name",
            &copy_name,
            "--jobs",
            "1",
        ],
    )
    .await;
    assert!(ok, "{err}");
    let took = started.elapsed().as_secs_f64();
    let copied = runs_named(&standin.hosts[1], &bob_token, &copy_name).await;
    assert_eq!(
        standin
            .stored(copied["r"]["info"]["artifact_uri"].as_str().unwrap())
            .await,
        src_files
    );
    let log = standin.log().await;
    let token_requests = |ws: usize| {
        log.iter()
            .filter(|e| e.path == "/oidc/v1/token" && e.workspace == Some(ws))
            .count()
    };
    assert!(
        took > 7.0,
        "the copy took {took} s: too short to outlive tokens"
    );
    assert!(
        token_requests(0) >= 2 && token_requests(1) >= 2,
        "tokens asked: A {}, B {} in {took} s",
        token_requests(0),
        token_requests(1)
    );
    // Tokens were renewed (before they ran out, or, on a slow machine, when the workspace
    // refused one: either way the copy went on); URLs that expired were asked for again.
    assert!(expired(&log) > 3, "no signed URL expired");
    // The 12 MiB file went up in parts, and every signed request carried the store's header.
    for p in ["create-multipart-upload", "complete-multipart-upload"] {
        assert!(log.iter().any(|e| e.path.ends_with(p)), "no {p}");
    }
    assert!(
        log.iter()
            .filter(|e| e.path.starts_with("/_signed/"))
            .all(|e| e.signed_header)
    );

    // The whole workspace, with its workspace-registry model: the experiment is found complete,
    // the model and its version (with its stage) arrive.
    let all = dir.path().join("all.mlar");
    let all_s = all.display().to_string();
    let (ok, err) = mlflow_archive(
        &cfg,
        &["export-all", "--src-uri", "databricks://A", "-o", &all_s],
    )
    .await;
    assert!(ok, "{err}");
    let (ok, err) = mlflow_archive(
        &cfg,
        &["import-all", "--dst-uri", "databricks://B", "-i", &all_s],
    )
    .await;
    assert!(ok, "{err}");
    let ws_model = seeded["ws_model"].as_str().unwrap();
    let v = rest(
        &standin.hosts[1],
        &bob_token,
        "GET",
        "mlflow/model-versions/get",
        json!({ "name": ws_model, "version": "1" }),
    )
    .await;
    assert_eq!(v["model_version"]["current_stage"], "Staging", "{v:#}");
    assert_eq!(v["model_version"]["status"], "READY", "{v:#}");
}

#[tokio::test]
async fn refused_and_missing_credentials_fail_clearly_without_showing_them() {
    // Its own stand-in: the shared one's request log is read by the conformance test.
    let standin = databricks_standin!();
    let t = unique("creds");
    let user = format!("cy-{t}@example.com");
    let token = standin.user_with_token(0, &user).await;
    standin.revoke_token(&token).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("cfg");
    std::fs::write(
        &cfg,
        format!(
            "[revoked]\nhost = {h}\ntoken = {token}\n[bad-sp]\nhost = {h}\nclient_id = nobody-{t}\nclient_secret = SECRET-wrong\n[both]\nhost = {h}\ntoken = SECRET-1\nclient_id = c\nclient_secret = SECRET-2\n",
            h = standin.hosts[0]
        ),
    )
    .unwrap();
    // The ways that work: DATABRICKS_HOST and DATABRICKS_TOKEN under MLFLOW_TRACKING_URI=databricks,
    // and DATABRICKS_CONFIG_PROFILE.
    let good = standin.user_with_token(0, &format!("ok-{user}")).await;
    std::fs::write(
        dir.path().join("cfg2"),
        format!("[good]\nhost = {}\ntoken = {good}\n", standin.hosts[0]),
    )
    .unwrap();
    for env in [
        vec![
            ("MLFLOW_TRACKING_URI", "databricks".to_string()),
            ("DATABRICKS_HOST", standin.hosts[0].clone()),
            ("DATABRICKS_TOKEN", good.clone()),
        ],
        vec![
            ("MLFLOW_TRACKING_URI", "databricks".to_string()),
            ("DATABRICKS_CONFIG_PROFILE", "good".to_string()),
            (
                "DATABRICKS_CONFIG_FILE",
                dir.path().join("cfg2").display().to_string(),
            ),
        ],
    ] {
        let mut cmd = cli();
        for v in [
            "DATABRICKS_HOST",
            "DATABRICKS_TOKEN",
            "DATABRICKS_CONFIG_PROFILE",
        ] {
            cmd.env_remove(v);
        }
        cmd.env("DATABRICKS_CONFIG_FILE", dir.path().join("none"));
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd.current_dir(dir.path()).args(["list-registered-models"]);
        let out = output(cmd).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{env:?}: {err}");
    }
    for (uri, want) in [
        ("databricks://revoked", "Invalid access token"),
        ("databricks://bad-sp", "refused the client credentials"),
        ("databricks://both", "more than one authorization method"),
        ("databricks://missing", "\"missing\" is not in"),
        ("databricks://scope:prefix", "secret scope"),
    ] {
        let (ok, err) = mlflow_archive(&cfg, &["export-all", "--src-uri", uri, "-o", "-"]).await;
        assert!(!ok, "{uri}: {err}");
        assert!(err.contains(want), "{uri}: {err}");
        assert!(
            !err.contains("SECRET") && !err.contains(&token),
            "{uri}: {err}"
        );
    }
}
