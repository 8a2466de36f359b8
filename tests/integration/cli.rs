//! The command line as a user runs it: output, exit codes and one-line errors.

use mlflow_archive::mlflow::CreateModelVersion;

use crate::live_pair;
use crate::util::proxy::{Fault, FaultProxy};
use crate::util::{cli, client, experiment_with_run, output, unique};

#[tokio::test]
async fn list_registered_models_writes_every_version_in_numeric_order() {
    let pair = live_pair!();
    let c = client(&pair.dst.uri);
    let rid = experiment_with_run(&c, "cli").await.info.run_id;
    let name = unique("twelve");
    c.create_registered_model(&name, Some("desc"), &[])
        .await
        .unwrap();
    for _ in 0..12 {
        c.create_model_version(&CreateModelVersion {
            name: name.clone(),
            source: format!("runs:/{rid}/model"),
            run_id: Some(rid.clone()),
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    c.delete_model_version(&name, "5").await.unwrap();
    c.set_registered_model_alias(&name, "best", "11")
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("registered_models.json");
    let mut out_cmd = cli();
    out_cmd
        .args(["list-registered-models", "--src-uri", &pair.dst.uri, "-o"])
        .arg(&out_path);
    let out = output(out_cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("registered models with"),
        "a summary: {stderr}"
    );
    assert!(!dir.path().join("registered_models.json.partial").exists());
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let model = doc["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .expect("the model is listed");
    assert_eq!(model["description"], "desc");
    let versions: Vec<&str> = model["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["1", "2", "3", "4", "6", "7", "8", "9", "10", "11", "12"]
    );
    let v11 = &model["versions"][9];
    assert_eq!(v11["aliases"], serde_json::json!(["best"]));
    assert_eq!(v11["run_id"], rid.as_str());

    let mut quiet_cmd = cli();
    quiet_cmd.args([
        "--quiet",
        "list-registered-models",
        "--src-uri",
        &pair.dst.uri,
        "-o",
        "-",
    ]);
    let quiet = output(quiet_cmd).await;
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert!(!doc["registered_models"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_servers_get_one_line_errors_and_exit_1() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    proxy.push([
        Fault::Reply(
            200,
            "text/html",
            "<!doctype html><html><body>Sign in</body></html>",
        ),
        Fault::Reply(404, "text/html", "<html><body>Not Found</body></html>"),
        Fault::Reply(200, "application/json", "{\"registered_models\": [tru"),
    ]);
    let cases = [
        (dead.as_str(), "cannot reach"),
        ("file:///tmp/mlruns", "backend store"),
        (proxy.uri.as_str(), "HTML page"),
        (proxy.uri.as_str(), "does not serve the MLflow REST API"),
        (proxy.uri.as_str(), "malformed JSON"),
    ];
    for (uri, want) in cases {
        let mut out_cmd = cli();
        out_cmd.args(["list-registered-models", "-o", "-", "--src-uri", uri]);
        let out = output(out_cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{uri}: {stderr}");
        assert!(out.stdout.is_empty(), "{uri}: nothing written");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("mlflow-archive: error: "), "{stderr}");
        assert!(stderr.contains(want), "{uri}: want {want:?} in {stderr}");
    }
    let mut none = cli();
    none.args(["list-registered-models", "-o", "-"]);
    let none = output(none).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("MLFLOW_TRACKING_URI"));

    let mut usage = cli();
    usage.args(["list-registered-models", "--bogus"]);
    let usage = output(usage).await;
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test]
async fn debug_and_rust_log_trace_requests_and_retries_on_stderr() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let list = |env: (&str, &str)| {
        let mut c = cli();
        c.args(["list-registered-models", "-o", "-", "--src-uri", &proxy.uri])
            .env(env.0, env.1);
        c
    };
    let search = "path=\"/api/2.0/mlflow/registered-models/search\"";

    // MLFLOW_ARCHIVE_DEBUG: every request (no query string) and every retry.
    proxy.push([Fault::Status(503, None)]);
    let out = output(list(("MLFLOW_ARCHIVE_DEBUG", "1"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let requests: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" DEBUG mlflow_archive::mlflow::http: request method=GET"))
        .collect();
    assert_eq!(requests.len(), 2, "the 503 and its retry: {stderr}");
    assert!(
        requests[0].contains(&format!("{search} status=503 ms=")),
        "{stderr}"
    );
    assert!(
        requests[1].contains(&format!("{search} status=200 ms=")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            " INFO mlflow_archive::mlflow::http: retrying call=\"GET registered-models/search\""
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("max_results"), "no query string: {stderr}");

    // RUST_LOG: targets and levels; info shows the retry, not the requests.
    proxy.push([Fault::Status(503, None)]);
    let out = output(list(("RUST_LOG", "mlflow_archive=info"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("retrying call="), "{stderr}");
    assert!(!stderr.contains("request method="), "{stderr}");

    // A RUST_LOG it cannot read is said once, then ignored.
    let out = output(list(("RUST_LOG", "mlflow_archive=loud"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("mlflow-archive: warning: RUST_LOG ignored"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        2,
        "the warning and the summary: {stderr}"
    );
}

#[test]
fn every_command_has_help() {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    let top = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout).to_string();
    let commands: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter(|l| !l.starts_with("   ")) // continuation lines of wrapped descriptions
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert!(commands.len() >= 6, "{commands:?}");
    for c in commands {
        let out = std::process::Command::new(&bin)
            .args([c, "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{c} --help: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{c}"
        );
    }
}

/// Runs a command line under a pseudo-terminal (`script`), as a user at a terminal would, and
/// returns everything the terminal showed.
async fn on_a_terminal(args: &[String]) -> (bool, String) {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    let line = std::iter::once(bin.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn progress_shows_on_a_terminal_and_never_in_pipes_or_with_quiet() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let run = experiment_with_run(&c, "progress").await;
    let rid = run.info.run_id.clone();
    let points: Vec<_> = (0..3000)
        .map(|i| mlflow_archive::mlflow::types::Metric {
            key: "loss".into(),
            value: f64::from(i),
            timestamp: 1_700_000_000_000 + i64::from(i),
            step: i64::from(i),
            ..Default::default()
        })
        .collect();
    c.log_batch(&rid, &points, &[], &[]).await.unwrap();
    let exp = c.get_experiment(&run.info.experiment_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mlar");
    let export = |quiet: bool| {
        let mut a: Vec<String> = Vec::new();
        if quiet {
            a.push("--quiet".into());
        }
        a.extend(
            [
                "export-experiment",
                "--src-uri",
                &pair.src.uri,
                "--experiment",
                &exp.name,
                "-o",
                &path.display().to_string(),
            ]
            .map(String::from),
        );
        a
    };

    let (ok, shown) = on_a_terminal(&export(false)).await;
    assert!(ok, "{shown}");
    assert!(shown.contains("exporting ["), "no progress line: {shown}");
    assert!(shown.contains(" runs · "), "{shown}");
    assert!(shown.contains("points ("), "{shown}");
    assert!(shown.contains("exported experiment"), "{shown}");

    let (ok, shown) = on_a_terminal(&export(true)).await;
    assert!(ok, "{shown}");
    assert!(shown.trim().is_empty(), "--quiet prints nothing: {shown}");

    // An import at a terminal shows its own line; through a pipe, only the summary.
    let target = unique("progress-import");
    let import = [
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--experiment-name",
        &target,
        "-i",
        &path.display().to_string(),
    ]
    .map(String::from);
    let (ok, shown) = on_a_terminal(&import).await;
    assert!(ok, "{shown}");
    assert!(shown.contains("importing ["), "no progress line: {shown}");
    let mut piped = cli();
    piped.args(&import);
    let out = output(piped).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("importing ["), "{stderr}");
    assert!(stderr.contains("1 runs imported") || stderr.contains("1 already complete"));
}
