//! The inventory of what a server holds that mlflow-archive does not carry (`Client::uncarried`)
//! and the warnings the export and copy commands print from it, on fresh servers of their own
//! (the counts are of a whole server). The objects are made through the server's own REST API,
//! with the bodies MLflow 3.17.2's Python client sends.

use std::time::Instant;

use futures_util::TryStreamExt;
use mlflow_archive::mlflow::Uncarried;
use serde_json::{Value, json};

use crate::util::proxy::{Fault, FaultProxy};
use crate::util::server::MlflowServer;
use crate::util::{cli, client, output, unique};

/// Sends a JSON request to `uri` + `path` and returns the answer, which must be a success.
async fn rest(method: reqwest::Method, uri: &str, path: &str, body: Value) -> Value {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resp = reqwest::Client::new()
        .request(method.clone(), format!("{uri}/{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

async fn post(uri: &str, path: &str, body: Value) -> Value {
    rest(reqwest::Method::POST, uri, path, body).await
}

/// Registers a scorer (a new version when the name exists) and returns its id.
async fn scorer(uri: &str, experiment_id: &str, name: &str) -> String {
    // What `Safety().register(name=…)` serializes to, cut to what the server needs.
    let serialized = json!({
        "name": name,
        "aggregations": null,
        "description": null,
        "is_session_level_scorer": false,
        "mlflow_version": "3.17.2",
        "serialization_version": 1,
        "builtin_scorer_class": "Safety",
        "builtin_scorer_pydantic_data": {"name": name, "required_columns": ["inputs", "outputs"]},
        "call_source": null,
        "call_signature": null,
        "original_func_name": null,
        "instructions_judge_pydantic_data": null
    });
    let a = post(
        uri,
        "api/3.0/mlflow/scorers/register",
        json!({
            "experiment_id": experiment_id,
            "name": name,
            "serialized_scorer": serialized.to_string(),
        }),
    )
    .await;
    a["scorer_id"].as_str().unwrap().to_string()
}

async fn issue(uri: &str, experiment_id: &str) {
    post(
        uri,
        "api/3.0/mlflow/issues",
        json!({"experiment_id": experiment_id, "name": unique("issue"), "description": "makes things up"}),
    )
    .await;
}

/// The warning lines of a command's standard error.
fn warnings(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .map(str::to_string)
        .collect()
}

/// The warning for `count` objects of a kind (`noun` as it reads after the count) on `uri`.
fn warning(uri: &str, count: u64, noun: &str) -> String {
    format!("warning: {uri} holds {count} {noun}, which mlflow-archive does not carry (")
}

/// Asserts that the warnings are exactly these, in this order.
fn assert_warnings(stderr: &[u8], uri: &str, expected: &[(u64, &str)]) {
    let got = warnings(stderr);
    assert_eq!(
        got.len(),
        expected.len(),
        "expected {expected:?}, got:\n{}",
        got.join("\n")
    );
    for (line, (count, noun)) in got.iter().zip(expected) {
        assert!(
            line.starts_with(&warning(uri, *count, noun))
                && line.ends_with("; README \"What is not carried\")"),
            "expected {count} {noun}, got {line}"
        );
    }
}

async fn run(args: &[&str]) -> std::process::Output {
    let mut cmd = cli();
    cmd.args(args);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn kinds(found: &[Uncarried]) -> Vec<(u64, &'static str)> {
    found.iter().map(|u| (u.count, u.kind)).collect()
}

#[tokio::test]
async fn exports_and_copies_name_each_kind_the_server_holds_and_does_not_carry() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        let b = std::thread::spawn(|| MlflowServer::start("inv-none", None));
        (MlflowServer::start("inv", None), b.join().unwrap())
    })
    .await
    .unwrap();
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = |name: &str| dir.path().join(name).display().to_string();

    // A server that holds none of these kinds: no warning.
    assert_eq!(client(&b.uri).uncarried(None).await.unwrap(), []);
    let o = run(&["export-all", "--src-uri", &b.uri, "-o", &out("none.mlar")]).await;
    assert_warnings(&o.stderr, &b.uri, &[]);

    let src = client(&a.uri);
    let with = src
        .create_experiment(&unique("with"), None, &[])
        .await
        .unwrap();
    let without = src
        .create_experiment(&unique("without"), None, &[])
        .await
        .unwrap();
    let other = src
        .create_experiment(&unique("other"), None, &[])
        .await
        .unwrap();
    // `with`: two scorers (one of them in two versions), three issues, a review queue;
    // `other`: one scorer, one issue; `without`: nothing.
    let safety = scorer(&a.uri, &with, "safety").await;
    scorer(&a.uri, &with, "safety").await;
    scorer(&a.uri, &with, "polite").await;
    scorer(&a.uri, &other, "safety").await;
    for _ in 0..3 {
        issue(&a.uri, &with).await;
    }
    issue(&a.uri, &other).await;
    post(
        &a.uri,
        "api/3.0/mlflow/review-queues/create",
        json!({"experiment_id": with, "name": "triage", "queue_type": "CUSTOM"}),
    )
    .await;
    // Server-wide: a webhook (disabled, to a public address literal: the server refuses private
    // ones), the gateway's objects, two MCP servers.
    post(
        &a.uri,
        "api/2.0/mlflow/webhooks",
        json!({"name": "hook", "url": "https://1.1.1.1/hook", "status": "DISABLED",
               "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}]}),
    )
    .await;
    let secret = post(
        &a.uri,
        "api/3.0/mlflow/gateway/secrets/create",
        json!({"secret_name": "key", "secret_value": {"api_key": "sk-test"}, "provider": "openai"}),
    )
    .await;
    let secret_id = secret["secret"]["secret_id"].as_str().unwrap();
    let model = post(
        &a.uri,
        "api/3.0/mlflow/gateway/model-definitions/create",
        json!({"name": "md", "secret_id": secret_id, "provider": "openai", "model_name": "gpt-4o-mini"}),
    )
    .await;
    post(
        &a.uri,
        "api/3.0/mlflow/gateway/endpoints/create",
        json!({"name": "ep", "model_configs": [{
            "model_definition_id": model["model_definition"]["model_definition_id"],
            "linkage_type": "PRIMARY", "weight": 1}]}),
    )
    .await;
    for amount in [10, 20] {
        post(
            &a.uri,
            "api/3.0/mlflow/gateway/budgets/create",
            json!({"budget_unit": "USD", "budget_amount": amount, "duration": {"unit": "DAYS", "value": 1},
                   "target_scope": "GLOBAL", "budget_action": "ALERT"}),
        )
        .await;
    }
    post(
        &a.uri,
        "api/3.0/mlflow/gateway/guardrails/create",
        json!({"name": "guard", "scorer_id": safety, "scorer_version": 1,
               "stage": "BEFORE", "action": "VALIDATION"}),
    )
    .await;
    for name in ["com.example/one", "com.example/two"] {
        post(
            &a.uri,
            "api/3.0/mlflow/mcp-servers",
            json!({ "name": name }),
        )
        .await;
    }

    let whole = [
        (3, "scorers"),
        (4, "issues"),
        (1, "review queue"),
        (1, "webhook"),
        (1, "AI gateway secret"),
        (1, "AI gateway endpoint"),
        (1, "AI gateway model definition"),
        (2, "AI gateway budget policies"),
        (1, "AI gateway guardrail"),
        (2, "MCP servers"),
    ];
    let o = run(&["export-all", "--src-uri", &a.uri, "-o", &out("all.mlar")]).await;
    assert_warnings(&o.stderr, &a.uri, &whole);
    let o = run(&[
        "export-all",
        "--src-uri",
        &a.uri,
        "--quiet",
        "-o",
        &out("q.mlar"),
    ])
    .await;
    assert_warnings(&o.stderr, &a.uri, &[]);

    // One experiment: only its own objects, and no server-wide kind.
    let o = run(&[
        "export-experiment",
        "--src-uri",
        &a.uri,
        "--experiment",
        &with,
        "-o",
        &out("with.mlar"),
    ])
    .await;
    let of_with = [(2, "scorers"), (3, "issues"), (1, "review queue")];
    assert_warnings(&o.stderr, &a.uri, &of_with);
    let o = run(&[
        "export-experiment",
        "--src-uri",
        &a.uri,
        "--experiment",
        &without,
        "-o",
        &out("without.mlar"),
    ])
    .await;
    assert_warnings(&o.stderr, &a.uri, &[]);
    let list = format!("{with},{without},{other}");
    let o = run(&[
        "export-experiment-list",
        "--src-uri",
        &a.uri,
        "--experiments",
        &list,
        "-o",
        &out("list.mlar"),
    ])
    .await;
    assert_warnings(
        &o.stderr,
        &a.uri,
        &[(3, "scorers"), (4, "issues"), (1, "review queue")],
    );

    // What the inventory costs: one server-info, one experiments search, one listing per
    // server-wide kind and per experiment-wide search, two per experiment.
    let proxy = FaultProxy::start(&a.uri).await;
    let via = client(&proxy.uri);
    // Default, with, without, other, and the one the gateway endpoint made for its traces.
    let experiments: Vec<_> = src
        .search_experiments(mlflow_archive::mlflow::types::ViewType::ActiveOnly, None)
        .try_collect()
        .await
        .unwrap();
    let experiments = experiments.len();
    assert_eq!(experiments, 5);
    let started = Instant::now();
    let found = via.uncarried(None).await.unwrap();
    let took = started.elapsed();
    assert_eq!(
        proxy.request_lines().len(),
        11 + 2 * experiments,
        "{:#?}",
        proxy.request_lines()
    );
    assert_eq!(
        kinds(&found),
        [
            (3, "scorers"),
            (4, "issues"),
            (1, "review queues"),
            (1, "webhooks"),
            (1, "AI gateway secrets"),
            (1, "AI gateway endpoints"),
            (1, "AI gateway model definitions"),
            (2, "AI gateway budget policies"),
            (1, "AI gateway guardrails"),
            (2, "MCP servers"),
        ]
    );
    eprintln!(
        "inventory of a server with {experiments} experiments: {} requests in {took:?}",
        proxy.request_lines().len()
    );
    proxy.clear();
    let found = via
        .uncarried(Some(std::slice::from_ref(&with)))
        .await
        .unwrap();
    assert_eq!(
        kinds(&found),
        [(2, "scorers"), (3, "issues"), (1, "review queues")]
    );
    assert_eq!(
        proxy.request_lines().len(),
        5,
        "{:#?}",
        proxy.request_lines()
    );
    // No request names a workspace (this server has none, and would refuse it).
    assert!(
        !proxy
            .requests()
            .iter()
            .any(|h| h.contains("x-mlflow-workspace")),
    );

    // An endpoint the server does not have counts as none (an older MLflow); any other refusal
    // is an error, which the commands report as a warning after a complete export.
    proxy.route(
        "/api/3.0/mlflow/mcp-servers",
        Fault::Reply(404, "text/html", "<html>not found</html>"),
    );
    proxy.route(
        "/api/3.0/mlflow/issues/search",
        Fault::Reply(
            501,
            "application/json",
            r#"{"error_code": "NOT_IMPLEMENTED", "message": ""}"#,
        ),
    );
    let found = via.uncarried(None).await.unwrap();
    let names: Vec<_> = found.iter().map(|u| u.kind).collect();
    assert!(!names.contains(&"MCP servers") && !names.contains(&"issues"));
    assert_eq!(names.len(), 8, "{names:?}");
    proxy.route("/api/3.0/mlflow/scorers/list", Fault::Status(403, None));
    let err = via.uncarried(None).await.unwrap_err();
    assert!(err.to_string().contains("GET scorers/list"), "{err}");
    let path = out("denied.mlar");
    let o = run(&["export-all", "--src-uri", &proxy.uri, "-o", &path]).await;
    assert!(std::path::Path::new(&path).exists());
    let w = warnings(&o.stderr);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("warning: could not count what mlflow-archive does not carry: ")
            && w[0].contains("GET scorers/list")
            && w[0].contains("403"),
        "{w:?}"
    );

    // A copy names the source's objects too.
    let dst_name = unique("copied");
    let o = run(&[
        "copy-experiment",
        "--src-uri",
        &a.uri,
        "--dst-uri",
        &b.uri,
        "--src-experiment",
        &with,
        "--dst-experiment-name",
        &dst_name,
    ])
    .await;
    assert_warnings(&o.stderr, &a.uri, &of_with);
    let o = run(&["copy-all", "--src-uri", &a.uri, "--dst-uri", &b.uri]).await;
    assert_warnings(&o.stderr, &a.uri, &whole);
}

#[tokio::test]
async fn every_workspace_is_counted_and_a_file_store_holds_none() {
    let root = tempfile::tempdir().unwrap();
    let root_path = root.path().join("artifacts").display().to_string();
    let (w, f) = tokio::task::spawn_blocking(move || {
        let f = std::thread::spawn(|| MlflowServer::start_with_file_store("inv-file"));
        let w = MlflowServer::start_with_artifact_root(
            "inv-ws",
            &root_path,
            &[("MLFLOW_ENABLE_WORKSPACES", "true")],
        );
        (w, f.join().unwrap())
    })
    .await
    .unwrap();
    let (Some(w), Some(f)) = (w, f) else {
        return;
    };

    // MLflow's file store keeps none of these kinds: one request tells.
    let proxy = FaultProxy::start(&f.uri).await;
    assert_eq!(client(&proxy.uri).uncarried(None).await.unwrap(), []);
    assert_eq!(proxy.request_lines(), ["GET /api/3.0/mlflow/server-info"]);

    // With workspaces: what any workspace holds is counted (each listed again in it).
    let proxy = FaultProxy::start(&w.uri).await;
    let via = client(&proxy.uri);
    assert_eq!(via.uncarried(None).await.unwrap(), []);
    post(
        &w.uri,
        "api/3.0/mlflow/workspaces",
        json!({"name": "team-a", "description": "Team A"}),
    )
    .await;
    let made = reqwest::Client::new()
        .post(format!("{}/api/3.0/mlflow/mcp-servers", w.uri))
        .header("X-MLFLOW-WORKSPACE", "team-a")
        .json(&json!({"name": "com.example/in-team-a"}))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{:?}", made.text().await);
    let found = via.uncarried(None).await.unwrap();
    assert_eq!(kinds(&found), [(1, "MCP servers")]);
    assert!(proxy.requests().iter().any(|h| {
        h.to_ascii_lowercase()
            .contains("x-mlflow-workspace: team-a")
    }),);
    // Experiment-wide, the server-wide kinds are not counted.
    assert_eq!(via.uncarried(Some(&["0".to_string()])).await.unwrap(), []);
}
