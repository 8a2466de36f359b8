//! runs against the Databricks stand-in, not a real workspace.
//!
//! The stand-in's conformance: MLflow's OWN Python client in Databricks mode (PAT, and OAuth M2M
//! through the Databricks SDK) logs an experiment, a run with nested artifacts and an empty file,
//! a logged model, a workspace-registry version and a Unity Catalog version through it, and reads
//! every byte back (`tests/harness/dbx_client.py`); what MLflow reads is compared with what is in
//! the bucket. Then, with plain HTTP, what MLflow's client does not exercise: expired and revoked
//! tokens, signed URLs (expiry, the required header, a delay that outlives a URL, chunked
//! uploads, multipart), paging of credentials and listings, the S3 front's session tokens, the
//! workspace API's import/export round trips, UC names and stages, permissions and grants.

use std::collections::BTreeMap;

use reqwest::Method;
use serde_json::{Value, json};

use crate::databricks_standin;
use crate::util::databricks::{ClientAuth, DatabricksStandin, Settings, http};
use crate::util::stores::files_under;
use crate::util::unique;

const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// An answer: status, headers, body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A workspace host with a token.
struct Ws {
    host: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Ws {
    fn new(host: &str, token: &str) -> Ws {
        Ws {
            host: host.to_string(),
            token: Some(token.to_string()),
            http: http(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.host)
        };
        let mut rb = self.http.request(method, url);
        if let Some(t) = &self.token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        answer(rb).await
    }

    /// A JSON call that must succeed.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let a = self.send(method.clone(), path, body).await;
        assert_eq!(a.status, 200, "{method} {path}: {}", a.text());
        a.json()
    }

    async fn get(&self, path: &str) -> Value {
        self.ok(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.ok(Method::POST, path, Some(body)).await
    }

    /// A call that must fail with `status` and `error_code`; returns the message.
    async fn fails(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        status: u16,
        code: &str,
    ) -> String {
        let a = self.send(method.clone(), path, body).await;
        assert_eq!(a.status, status, "{method} {path}: {}", a.text());
        let v = a.json();
        assert_eq!(v["error_code"], code, "{method} {path}: {v}");
        v["message"].as_str().unwrap_or_default().to_string()
    }
}

async fn answer(rb: reqwest::RequestBuilder) -> Answer {
    let r = rb.send().await.unwrap();
    Answer {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// A signed-URL request with the credential's headers (or without them).
async fn signed(method: Method, info: &Value, body: Option<Vec<u8>>, with_headers: bool) -> Answer {
    let mut rb = http().request(method, info["signed_uri"].as_str().unwrap());
    if with_headers {
        for h in info["headers"].as_array().unwrap() {
            rb = rb.header(h["name"].as_str().unwrap(), h["value"].as_str().unwrap());
        }
    }
    if let Some(b) = body {
        // reqwest sends no Content-Length for an empty body; S3 (and the stand-in) refuse a
        // PUT without one (411 MissingContentLength).
        if b.is_empty() {
            rb = rb.header("Content-Length", "0");
        }
        rb = rb.body(b);
    }
    answer(rb).await
}

fn s3_error_code(a: &Answer) -> String {
    let t = a.text();
    let start = t.find("<Code>").map(|i| i + 6).unwrap_or(0);
    let end = t.find("</Code>").unwrap_or(start);
    t[start..end].to_string()
}

fn object(v: &Value) -> &serde_json::Map<String, Value> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
}

/// The file → sha256 map a harness answer holds.
fn hashes(v: &Value) -> BTreeMap<String, String> {
    object(v)
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

/// The files under `uri` (`s3://…` or `dbfs:/databricks/…`) read from moto directly, without
/// `registered_model_meta` (which MLflow writes into each downloaded model directory, and the
/// harness leaves out).
async fn in_bucket(dbx: &DatabricksStandin, uri: &str) -> BTreeMap<String, String> {
    let s3 = match uri.strip_prefix("dbfs:/databricks/") {
        Some(rest) => format!("s3://{}/{rest}", dbx.bucket),
        None => uri.to_string(),
    };
    let s3 = format!("{}/", s3.trim_end_matches('/'));
    let env = dbx.moto_env();
    tokio::task::spawn_blocking(move || files_under(&s3, &env))
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _)| !k.ends_with("registered_model_meta"))
        .map(|(k, v)| (k, v.sha256))
        .collect()
}

/// What `dbx_client.py seed` made and `read` read back, checked against each other and the
/// bucket; `principal` is who logged it.
async fn check_mlflow_round_trip(
    dbx: &DatabricksStandin,
    ws: usize,
    token_ws: &Ws,
    seeded: &Value,
    read: &Value,
    principal: &str,
    tag: &str,
) {
    let exp = &read["experiment"];
    assert_eq!(exp["name"], format!("/Users/{principal}/{tag}/exp"));
    assert_eq!(exp["tags"]["mlflow.ownerEmail"], principal, "{exp}");
    assert_eq!(exp["tags"]["mlflow.experimentType"], "MLFLOW_EXPERIMENT");
    assert!(exp["tags"]["mlflow.ownerId"].as_str().is_some(), "{exp}");
    assert_eq!(
        exp["artifact_location"],
        format!(
            "dbfs:/databricks/mlflow-tracking/{}",
            seeded["experiment_id"].as_str().unwrap()
        )
    );

    let run = &read["run"];
    assert_eq!(run["user_id"], principal);
    assert_eq!(run["mlflow_user"], principal);
    assert_eq!(run["params"], json!({"alpha": "0.5", "tag": tag}));
    assert_eq!(run["loss"], json!([[0, 1.0], [1, 0.5], [2, 1.0 / 3.0]]));
    let files = hashes(&run["files"]);
    assert_eq!(
        files.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "files/a/b/c/deep.bin",
            "files/a/empty.txt",
            "files/top.txt",
            "large/big.bin",
            "notes/one.txt"
        ]
    );
    assert_eq!(files["files/a/empty.txt"], EMPTY_SHA256);
    // What MLflow read back is what the bucket holds, at Databricks' layout.
    let artifact_uri = run["artifact_uri"].as_str().unwrap();
    assert_eq!(in_bucket(dbx, artifact_uri).await, files);
    let dir = hashes(&run["files_dir"]);
    assert_eq!(dir["a/b/c/deep.bin"], files["files/a/b/c/deep.bin"]);
    assert_eq!(
        run["listing"],
        json!([["files/a/b", true, null], ["files/a/empty.txt", false, 0]])
    );

    assert_eq!(read["child"]["parent"], seeded["run_id"]);
    assert_eq!(read["child"]["params"], json!({"child": "yes"}));

    let lm = &read["logged_model"];
    assert_eq!(lm["model_id"], seeded["model_id"]);
    let lm_uri = lm["artifact_location"].as_str().unwrap();
    assert!(
        lm_uri.ends_with(&format!(
            "/logged_models/{}/artifacts",
            seeded["model_id"].as_str().unwrap()
        )),
        "{lm_uri}"
    );
    let lm_files = hashes(&lm["files"]);
    assert!(
        lm_files.contains_key("MLmodel") && lm_files.contains_key("python_model.pkl"),
        "{lm_files:?}"
    );
    assert_eq!(in_bucket(dbx, lm_uri).await, lm_files);

    let wsv = &read["ws_version"];
    assert_eq!(wsv["status"], "READY");
    assert_eq!(wsv["source"], lm_uri);
    assert_eq!(wsv["run_id"], seeded["run_id"]);
    assert_eq!(wsv["stage"], "Staging");
    assert_eq!(wsv["tags"], json!({"v": "1"}));
    assert_eq!(wsv["model_tags"], json!({"from": "mlflow"}));
    let wsv_files = hashes(&wsv["files"]);
    for f in ["MLmodel", "python_model.pkl", "conda.yaml"] {
        assert_eq!(wsv_files[f], lm_files[f], "{f}");
    }

    let ucv = &read["uc_version"];
    assert_eq!(ucv["status"], "READY");
    assert_eq!(ucv["source"], seeded["model_uri"]);
    assert_eq!(ucv["run_id"], seeded["run_id"]);
    assert_eq!(ucv["aliases"], json!(["champion"]));
    assert_eq!(ucv["tags"], json!({"v": "1", "checked": "yes"}));
    assert_eq!(ucv["model_tags"], json!({"team": "a"}));
    assert_eq!(ucv["listed"], json!([seeded["uc_model"]]));
    assert_eq!(ucv["by_alias"], "1");
    assert_eq!(ucv["search"], json!(["1"]));
    assert_eq!(ucv["predict"], json!([3.0]));
    let ucv_files = hashes(&ucv["files"]);
    for f in ["MLmodel", "python_model.pkl", "conda.yaml"] {
        assert_eq!(ucv_files[f], lm_files[f], "{f}");
    }
    let uc_name = seeded["uc_model"].as_str().unwrap();
    let mv = token_ws
        .get(&format!(
            "/api/2.0/mlflow/unity-catalog/model-versions/get?name={uc_name}&version=1"
        ))
        .await;
    let storage = mv["model_version"]["storage_location"].as_str().unwrap();
    assert!(
        storage.starts_with(&format!("s3://{}/uc/models/", dbx.bucket)),
        "{mv}"
    );
    assert_eq!(in_bucket(dbx, storage).await, ucv_files);
    assert_eq!(
        mv["model_version"]["run_tracking_server_id"], dbx.workspace_ids[ws],
        "MLflow reads the run's workspace id from x-databricks-org-id: {mv}"
    );

    // Signed URLs were used with their header; MLflow tried the Files API (501 here) and fell
    // back; nothing else failed.
    let log = dbx.log().await;
    let here: Vec<_> = log.iter().filter(|e| e.host == dbx.hosts[ws]).collect();
    let signed: Vec<_> = here
        .iter()
        .filter(|e| e.path.starts_with("/_signed/"))
        .collect();
    assert!(signed.len() >= 10, "{signed:?}");
    assert!(
        signed.iter().all(|e| e.signed_header && e.status < 300),
        "{signed:?}"
    );
    assert!(
        here.iter()
            .any(|e| e.path.starts_with("/api/2.0/fs/") && e.status == 501)
    );
    // The only other refusals: `register_model` creating a model that exists (it carries on
    // after RESOURCE_ALREADY_EXISTS), once per registry.
    let failed: Vec<_> = here
        .iter()
        .filter(|e| e.status >= 400 && !e.path.starts_with("/api/2.0/fs/"))
        .filter(|e| e.principal.as_deref() == Some(principal) || e.principal.is_none())
        .map(|e| (e.status, e.path.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            (400, "/api/2.0/mlflow/registered-models/create"),
            (
                400,
                "/api/2.0/mlflow/unity-catalog/registered-models/create"
            )
        ]
    );
}

#[tokio::test]
async fn mlflow_client_logs_registers_and_reads_back_with_a_pat() {
    let dbx = databricks_standin!(shared);
    let user = format!("{}@example.com", unique("ann"));
    let token = dbx.user_with_token(0, &user).await;
    let tag = unique("pat");
    let seeded = dbx
        .mlflow_client(
            0,
            ClientAuth::Pat(&token),
            "dbx_client.py",
            &["seed", &tag, &user],
        )
        .await;
    let read = dbx
        .mlflow_client(
            0,
            ClientAuth::Pat(&token),
            "dbx_client.py",
            &["read", &tag, &user],
        )
        .await;
    let ws = Ws::new(&dbx.hosts[0], &token);
    check_mlflow_round_trip(dbx, 0, &ws, &seeded, &read, &user, &tag).await;
    // The user's workspace requests carried the PAT (the S3 front's carry UC session tokens).
    let log = dbx.log().await;
    let other_auth: Vec<_> = log
        .iter()
        .filter(|e| e.principal.as_deref() == Some(user.as_str()) && e.workspace.is_some())
        .filter(|e| e.auth.as_deref() != Some("pat"))
        .collect();
    assert!(other_auth.is_empty(), "{other_auth:?}");
    assert!(
        log.iter()
            .any(|e| e.principal.as_deref() == Some(user.as_str())
                && e.auth.as_deref() == Some("sts"))
    );
}

#[tokio::test]
async fn mlflow_client_through_oauth_m2m_on_the_second_workspace() {
    let dbx = databricks_standin!(shared);
    let sp = unique("sp");
    // Access tokens live 4 s: the SDK asks for new ones as it goes.
    dbx.add_service_principal(1, &sp, "sp-secret-not-in-output", 4.0)
        .await;
    let auth = || ClientAuth::OAuth {
        client_id: &sp,
        client_secret: "sp-secret-not-in-output",
    };
    let tag = unique("m2m");
    let seeded = dbx
        .mlflow_client(1, auth(), "dbx_client.py", &["seed", &tag, &sp])
        .await;
    let read = dbx
        .mlflow_client(1, auth(), "dbx_client.py", &["read", &tag, &sp])
        .await;
    // A PAT of the same principal, for the checks' own calls.
    let token = unique("dapi");
    dbx.add_token(1, &sp, &token, None).await;
    let ws = Ws::new(&dbx.hosts[1], &token);
    check_mlflow_round_trip(dbx, 1, &ws, &seeded, &read, &sp, &tag).await;
    let log = dbx.log().await;
    let here: Vec<_> = log.iter().filter(|e| e.host == dbx.hosts[1]).collect();
    assert!(
        here.iter()
            .filter(|e| e.path == "/oidc/v1/token" && e.status == 200)
            .count()
            >= 2
    );
    assert!(here.iter().any(|e| e.auth.as_deref() == Some("oauth")));
    assert!(
        !here.iter().any(|e| e.status == 401 || e.status == 403),
        "{here:?}"
    );
    // The run belongs to workspace 1 only.
    let ann = dbx
        .user_with_token(0, &format!("{}@example.com", unique("ann")))
        .await;
    let other = Ws::new(&dbx.hosts[0], &ann);
    let run_id = seeded["run_id"].as_str().unwrap();
    other
        .fails(
            Method::GET,
            &format!("/api/2.0/mlflow/runs/get?run_id={run_id}"),
            None,
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        .await;
    // The Unity Catalog metastore is shared.
    let uc_name = seeded["uc_model"].as_str().unwrap();
    let rm = other
        .get(&format!(
            "/api/2.0/mlflow/unity-catalog/registered-models/get?name={uc_name}"
        ))
        .await;
    assert_eq!(rm["registered_model"]["name"], uc_name);
}

/// Everything below changes settings: one private stand-in, checks in sequence.
#[tokio::test]
async fn protocol_details_mlflow_does_not_exercise() {
    let dbx = databricks_standin!();
    let user = "ann@example.com";
    let token = dbx.user_with_token(0, user).await;
    dbx.add_user(0, "bob@example.com").await;
    let ws = Ws::new(&dbx.hosts[0], &token);
    // Behind it: one MLflow workspace per Databricks workspace, one for the UC metastore.
    let behind = http()
        .get(format!("{}/api/3.0/mlflow/workspaces", dbx.mlflow))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let names: Vec<_> = behind["workspaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    for name in ["ws-0", "ws-1", "uc"] {
        assert!(names.contains(&name), "{behind}");
    }
    auth_checks(&dbx, &ws).await;
    let (run_id, artifact_uri, exp_id) = artifact_checks(&dbx, &ws, user).await;
    logged_model_checks(&dbx, &ws, &exp_id).await;
    workspace_checks(&dbx, &ws, user).await;
    registry_checks(&dbx, &ws, user, &run_id, &artifact_uri, &exp_id).await;
    uc_checks(&dbx, &ws, user).await;
}

async fn auth_checks(dbx: &DatabricksStandin, ws: &Ws) {
    let a = ws
        .send(Method::GET, "/api/2.0/workspace/list?path=/", None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text());
    assert_eq!(
        a.header("x-databricks-org-id"),
        Some(dbx.workspace_ids[0].as_str())
    );

    let anonymous = Ws {
        token: None,
        ..Ws::new(&dbx.hosts[0], "")
    };
    anonymous
        .fails(
            Method::GET,
            "/api/2.0/workspace/list?path=/",
            None,
            401,
            "UNAUTHENTICATED",
        )
        .await;

    // Expired, revoked, unknown and another workspace's tokens: 403, numeric error_code.
    let short = unique("dapi-short");
    dbx.add_token(0, "ann@example.com", &short, Some(4.0)).await;
    let short_ws = Ws::new(&dbx.hosts[0], &short);
    short_ws.get("/api/2.0/workspace/list?path=/").await;
    tokio::time::sleep(std::time::Duration::from_millis(4300)).await;
    let revoked = unique("dapi-revoked");
    dbx.add_token(0, "ann@example.com", &revoked, None).await;
    dbx.revoke_token(&revoked).await;
    for (host, token) in [
        (&dbx.hosts[0], short.as_str()),
        (&dbx.hosts[0], revoked.as_str()),
        (&dbx.hosts[0], "dapi-never-made"),
        (&dbx.hosts[1], ws.token.as_deref().unwrap()),
    ] {
        let a = Ws::new(host, token)
            .send(Method::GET, "/api/2.0/workspace/list?path=/", None)
            .await;
        assert_eq!(a.status, 403, "{}", a.text());
        assert_eq!(
            a.json(),
            json!({"error_code": 403, "message": "Invalid access token."})
        );
        assert_eq!(
            a.header("x-databricks-reason-phrase"),
            Some("Invalid access token.")
        );
    }

    // OAuth M2M: discovery, token endpoint, TTL.
    let meta = anonymous.get("/.well-known/databricks-config").await;
    assert_eq!(meta["oidc_endpoint"], format!("{}/oidc", dbx.hosts[0]));
    assert_eq!(meta["workspace_id"], dbx.workspace_ids[0]);
    let oidc = anonymous
        .get("/oidc/.well-known/oauth-authorization-server")
        .await;
    let token_endpoint = oidc["token_endpoint"].as_str().unwrap().to_string();
    assert_eq!(token_endpoint, format!("{}/oidc/v1/token", dbx.hosts[0]));
    dbx.add_service_principal(0, "sp-a", "right", 4.0).await;
    let http = http();
    let ask = |secret: &'static str| {
        http.post(&token_endpoint)
            .basic_auth("sp-a", Some(secret))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=all-apis")
    };
    let bad = answer(ask("wrong")).await;
    assert_eq!(bad.status, 401);
    assert_eq!(bad.json()["error"], "invalid_client");
    let good = answer(ask("right")).await.json();
    assert_eq!(good["token_type"], "Bearer");
    assert_eq!(good["expires_in"], 4);
    assert_eq!(good["scope"], "all-apis");
    let oauth = Ws::new(&dbx.hosts[0], good["access_token"].as_str().unwrap());
    oauth.get("/api/2.0/workspace/list?path=/").await;
    tokio::time::sleep(std::time::Duration::from_millis(4300)).await;
    let expired = oauth
        .send(Method::GET, "/api/2.0/workspace/list?path=/", None)
        .await;
    assert_eq!(expired.status, 403, "{}", expired.text());
    assert_eq!(expired.json()["error_code"], 403);
}

/// Experiment names, run users, reserved tags, credentials and listings with paging, signed
/// URLs (header, expiry, delay, chunked, ranges), multipart. Returns (run id, its artifact URI,
/// experiment id).
async fn artifact_checks(dbx: &DatabricksStandin, ws: &Ws, user: &str) -> (String, String, String) {
    dbx.settings(&Settings {
        credentials_page_size: Some(2),
        list_page_size: Some(2),
        ..Settings::default()
    })
    .await;
    let create = "/api/2.0/mlflow/experiments/create";
    let msg = ws
        .fails(
            Method::POST,
            create,
            Some(json!({"name": "bare"})),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        .await;
    assert!(
        msg.contains("must be an absolute path within the Databricks workspace"),
        "{msg}"
    );
    let msg = ws
        .fails(
            Method::POST,
            create,
            Some(json!({"name": format!("/Users/{user}/missing/e")})),
            400,
            "RESOURCE_DOES_NOT_EXIST",
        )
        .await;
    assert_eq!(
        msg,
        format!("Parent directory /Users/{user}/missing does not exist.")
    );
    ws.fails(
        Method::POST,
        create,
        Some(json!({"name": format!("/Users/{user}/e"), "artifact_location": "s3://elsewhere/x"})),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    ws.post(
        "/api/2.0/workspace/mkdirs",
        json!({"path": format!("/Users/{user}/proj")}),
    )
    .await;
    let exp_id = ws
        .post(
            create,
            json!({"name": format!("/Workspace/Users/{user}/proj/e")}),
        )
        .await["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let exp = ws
        .get(&format!(
            "/api/2.0/mlflow/experiments/get?experiment_id={exp_id}"
        ))
        .await;
    assert_eq!(exp["experiment"]["name"], format!("/Users/{user}/proj/e"));
    assert!(exp["experiment"].get("workspace").is_none(), "{exp}");
    let status = ws
        .get(&format!(
            "/api/2.0/workspace/get-status?path=/Users/{user}/proj/e"
        ))
        .await;
    assert_eq!(status["object_type"], "MLFLOW_EXPERIMENT");
    assert_eq!(status["object_id"].to_string(), exp_id);

    let run = ws
        .post(
            "/api/2.0/mlflow/runs/create",
            json!({"experiment_id": exp_id, "user_id": "someone-else",
                   "tags": [{"key": "mlflow.user", "value": "someone-else"}]}),
        )
        .await;
    let info = &run["run"]["info"];
    assert_eq!(info["user_id"], user);
    let tags = run["run"]["data"]["tags"].as_array().unwrap();
    assert!(
        tags.contains(&json!({"key": "mlflow.user", "value": user})),
        "{tags:?}"
    );
    let run_id = info["run_id"].as_str().unwrap().to_string();
    let artifact_uri = info["artifact_uri"].as_str().unwrap().to_string();
    assert_eq!(
        artifact_uri,
        format!("dbfs:/databricks/mlflow-tracking/{exp_id}/{run_id}/artifacts")
    );
    for key in [
        "mlflow.user",
        "mlflow.rootRunId",
        "mlflow.log-model.history",
    ] {
        let msg = ws
            .fails(
                Method::POST,
                "/api/2.0/mlflow/runs/set-tag",
                Some(json!({"run_id": run_id, "key": key, "value": "x"})),
                400,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
        assert!(msg.contains(key), "{msg}");
        ws.fails(
            Method::POST,
            "/api/2.0/mlflow/runs/log-batch",
            Some(json!({"run_id": run_id, "tags": [{"key": "ok", "value": "1"}, {"key": key, "value": "x"}]})),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        .await;
    }

    // Write credentials, three pages of at most two.
    dbx.clear_log().await;
    let paths = ["a.txt", "d/b.bin", "d/e/c.txt", "empty.txt", "z.txt"];
    let mut infos = vec![];
    let mut page_token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"run_id": run_id, "path": paths});
        if let Some(t) = &page_token {
            body["page_token"] = json!(t);
        }
        let page = ws
            .post("/api/2.0/mlflow/artifacts/credentials-for-write", body)
            .await;
        pages += 1;
        infos.extend(page["credential_infos"].as_array().unwrap().iter().cloned());
        match page["next_page_token"].as_str() {
            Some(t) => page_token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        infos
            .iter()
            .map(|i| i["path"].as_str().unwrap())
            .collect::<Vec<_>>(),
        paths
    );
    for (info, path) in infos.iter().zip(paths) {
        assert_eq!(info["type"], "AWS_PRESIGNED_URL");
        assert_eq!(info["run_id"], run_id.as_str());
        assert_eq!(
            info["headers"],
            json!([{"name": "x-amz-server-side-encryption", "value": "AES256"}])
        );
        let body = if path == "empty.txt" {
            vec![]
        } else {
            format!("content of {path}").into_bytes()
        };
        let a = signed(Method::PUT, info, Some(body), true).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text());
    }
    // An empty PUT without Content-Length (what reqwest sends for an empty body): S3's 411.
    let a = answer(
        http()
            .put(infos[3]["signed_uri"].as_str().unwrap())
            .header("x-amz-server-side-encryption", "AES256")
            .body(Vec::new()),
    )
    .await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (411, "MissingContentLength")
    );
    // The log shows the header on every upload so far.
    let log = dbx.log().await;
    let puts: Vec<_> = log
        .iter()
        .filter(|e| e.method == "PUT" && e.path.starts_with("/_signed/put/"))
        .collect();
    assert_eq!(puts.len(), paths.len() + 1);
    assert!(puts.iter().all(|e| e.signed_header), "{puts:?}");
    // The required header missing; a tampered signature: S3's SignatureDoesNotMatch.
    let a = signed(Method::PUT, &infos[0], Some(b"x".to_vec()), false).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    let mut tampered = infos[0].clone();
    tampered["signed_uri"] = json!(
        infos[0]["signed_uri"]
            .as_str()
            .unwrap()
            .replace("a.txt", "b.txt")
    );
    let a = signed(Method::PUT, &tampered, Some(b"x".to_vec()), true).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "SignatureDoesNotMatch")
    );
    // A chunked upload (no length), as S3 answers it.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(b"ab".to_vec()), Ok(b"cd".to_vec())];
    let rb = http()
        .put(infos[0]["signed_uri"].as_str().unwrap())
        .header("x-amz-server-side-encryption", "AES256")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )));
    let a = answer(rb).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (501, "NotImplemented")
    );

    // Listing: root (4 entries in two pages), a directory, a file.
    let list = |path: &str, token: Option<&str>| {
        let mut q = format!("/api/2.0/mlflow/artifacts/list?run_id={run_id}&path={path}");
        if let Some(t) = token {
            q.push_str(&format!("&page_token={t}"));
        }
        q
    };
    let mut entries = vec![];
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = ws.get(&list("", token.as_deref())).await;
        pages += 1;
        assert_eq!(page["root_uri"], artifact_uri.as_str());
        entries.extend(page["files"].as_array().unwrap().iter().cloned());
        match page["next_page_token"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 2);
    assert_eq!(
        Value::Array(entries),
        json!([
            {"path": "a.txt", "is_dir": false, "file_size": 16},
            {"path": "d", "is_dir": true},
            {"path": "empty.txt", "is_dir": false, "file_size": 0},
            {"path": "z.txt", "is_dir": false, "file_size": 16},
        ])
    );
    assert_eq!(
        ws.get(&list("d", None)).await["files"],
        json!([{"path": "d/b.bin", "is_dir": false, "file_size": 18}, {"path": "d/e", "is_dir": true}])
    );
    assert_eq!(
        ws.get(&list("a.txt", None)).await["files"],
        json!([{"path": "a.txt", "is_dir": false, "file_size": 16}])
    );

    // Reading: whole, a range; an expired URL; a URL that expires while its request waits.
    let read = |p: &'static str| {
        let run_id = run_id.clone();
        async move {
            let page = ws
                .post(
                    "/api/2.0/mlflow/artifacts/credentials-for-read",
                    json!({"run_id": run_id, "path": [p]}),
                )
                .await;
            page["credential_infos"][0].clone()
        }
    };
    let info = read("a.txt").await;
    let a = signed(Method::GET, &info, None, true).await;
    assert_eq!((a.status, a.text().as_str()), (200, "content of a.txt"));
    let ranged = answer(
        http()
            .get(info["signed_uri"].as_str().unwrap())
            .header("x-amz-server-side-encryption", "AES256")
            .header("Range", "bytes=0-6"),
    )
    .await;
    assert_eq!((ranged.status, ranged.text().as_str()), (206, "content"));
    let empty = signed(Method::GET, &read("empty.txt").await, None, true).await;
    assert_eq!((empty.status, empty.body.len()), (200, 0));
    dbx.settings(&Settings {
        signed_url_ttl: Some(1.0),
        ..Settings::default()
    })
    .await;
    let info = read("a.txt").await;
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let a = signed(Method::GET, &info, None, true).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "AccessDenied")
    );
    assert!(a.text().contains("Request has expired"), "{}", a.text());
    dbx.settings(&Settings {
        object_delay_ms: Some(1500),
        ..Settings::default()
    })
    .await;
    let a = signed(Method::GET, &read("a.txt").await, None, true).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "AccessDenied")
    );
    dbx.settings(&Settings {
        signed_url_ttl: Some(900.0),
        object_delay_ms: Some(0),
        ..Settings::default()
    })
    .await;

    // Multipart: two parts (S3's 5 MiB minimum for all but the last), a part URL asked again,
    // completion; an aborted upload.
    let mpu = ws
        .post(
            "/api/2.0/mlflow/artifacts/create-multipart-upload",
            json!({"run_id": run_id, "path": "big/part.bin", "num_parts": 2}),
        )
        .await;
    let upload_id = mpu["upload_id"].as_str().unwrap();
    let parts = mpu["upload_credential_infos"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert!(
        parts[1]["signed_uri"]
            .as_str()
            .unwrap()
            .contains("partNumber=2")
    );
    let first = vec![b'a'; 5 * 1024 * 1024];
    let p1 = signed(Method::PUT, &parts[0], Some(first), true).await;
    assert_eq!(p1.status, 200, "{}", p1.text());
    let again = ws
        .get(&format!(
            "/api/2.0/mlflow/artifacts/get-presigned-upload-part-url?run_id={run_id}&path=big/part.bin&upload_id={upload_id}&part_number=2"
        ))
        .await;
    let p2 = signed(
        Method::PUT,
        &again["upload_credential_info"],
        Some(b"tail".to_vec()),
        true,
    )
    .await;
    assert_eq!(p2.status, 200, "{}", p2.text());
    let etag = |a: &Answer| a.header("etag").expect("an ETag").to_string();
    ws.post(
        "/api/2.0/mlflow/artifacts/complete-multipart-upload",
        json!({"run_id": run_id, "path": "big/part.bin", "upload_id": upload_id,
               "part_etags": [{"part_number": 2, "etag": etag(&p2)}, {"part_number": 1, "etag": etag(&p1)}]}),
    )
    .await;
    let big = ws.get(&list("big", None)).await;
    assert_eq!(big["files"][0]["file_size"], 5 * 1024 * 1024 + 4);
    let doomed = ws
        .post(
            "/api/2.0/mlflow/artifacts/create-multipart-upload",
            json!({"run_id": run_id, "path": "big/aborted.bin", "num_parts": 1}),
        )
        .await;
    let a = signed(Method::DELETE, &doomed["abort_credential_info"], None, true).await;
    assert_eq!(a.status, 204, "{}", a.text());

    // Another workspace sees neither the run nor its files; no artifact proxy here.
    let bob = dbx.user_with_token(1, "bob@example.com").await;
    let other = Ws::new(&dbx.hosts[1], &bob);
    other
        .fails(
            Method::POST,
            "/api/2.0/mlflow/artifacts/credentials-for-read",
            Some(json!({"run_id": run_id, "path": ["a.txt"]})),
            404,
            "RESOURCE_DOES_NOT_EXIST",
        )
        .await;
    for path in [
        "/api/2.0/mlflow-artifacts/artifacts",
        "/api/3.0/mlflow/server-info",
        "/api/3.0/mlflow/workspaces",
    ] {
        ws.fails(Method::GET, path, None, 404, "ENDPOINT_NOT_FOUND")
            .await;
    }
    (run_id, artifact_uri, exp_id)
}

/// Logged models: Databricks' `logged_models/` layout, credentials and listing.
async fn logged_model_checks(_dbx: &DatabricksStandin, ws: &Ws, exp_id: &str) {
    let lm = ws
        .post(
            "/api/2.0/mlflow/logged-models",
            json!({"experiment_id": exp_id, "name": "lm"}),
        )
        .await;
    let id = lm["model"]["info"]["model_id"].as_str().unwrap();
    let uri = lm["model"]["info"]["artifact_uri"].as_str().unwrap();
    assert_eq!(
        uri,
        format!("dbfs:/databricks/mlflow-tracking/{exp_id}/logged_models/{id}/artifacts")
    );
    let got = ws.get(&format!("/api/2.0/mlflow/logged-models/{id}")).await;
    assert_eq!(got["model"]["info"]["artifact_uri"], uri);
    let up = ws
        .post(
            &format!("/api/2.0/mlflow/logged-models/{id}/artifacts/credentials-for-upload"),
            json!({"paths": ["MLmodel"]}),
        )
        .await;
    let cred = &up["credentials"][0];
    assert_eq!(cred["model_id"], id);
    assert_eq!(cred["credential_info"]["type"], "AWS_PRESIGNED_URL");
    let a = signed(
        Method::PUT,
        &cred["credential_info"],
        Some(b"flavors: {}\n".to_vec()),
        true,
    )
    .await;
    assert_eq!(a.status, 200);
    let listed = ws
        .get(&format!(
            "/api/2.0/mlflow/logged-models/{id}/artifacts/directories"
        ))
        .await;
    assert_eq!(
        listed["files"],
        json!([{"path": "MLmodel", "is_dir": false, "file_size": 12}])
    );
    let down = ws
        .post(
            &format!("/api/2.0/mlflow/logged-models/{id}/artifacts/credentials-for-download"),
            json!({"paths": ["MLmodel"]}),
        )
        .await;
    let a = signed(
        Method::GET,
        &down["credentials"][0]["credential_info"],
        None,
        true,
    )
    .await;
    assert_eq!(a.text(), "flavors: {}\n");
}

/// Notebooks and folders: import/export round trips in every format, the documented errors.
async fn workspace_checks(dbx: &DatabricksStandin, ws: &Ws, user: &str) {
    use base64::Engine;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let unb64 = |s: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    let dir = format!("/Users/{user}/nb");
    ws.post("/api/2.0/workspace/mkdirs", json!({"path": dir}))
        .await;
    let source = "# Databricks notebook source\nprint(1)\n\n# COMMAND ----------\n\nprint(2)\n";
    let import = |path: String,
                  format: &str,
                  content: Vec<u8>,
                  language: Option<&str>,
                  overwrite: bool| {
        let mut body = json!({"path": path, "format": format, "content": b64(&content), "overwrite": overwrite});
        if let Some(l) = language {
            body["language"] = json!(l);
        }
        body
    };
    let nb = format!("{dir}/first");
    ws.post(
        "/api/2.0/workspace/import",
        import(nb.clone(), "SOURCE", source.into(), Some("PYTHON"), false),
    )
    .await;
    let status = ws
        .get(&format!("/api/2.0/workspace/get-status?path={nb}"))
        .await;
    assert_eq!(status["object_type"], "NOTEBOOK");
    assert_eq!(status["language"], "PYTHON");
    let export = |path: String, format: &'static str| async move {
        ws.get(&format!(
            "/api/2.0/workspace/export?path={path}&format={format}&revision.revision_timestamp=1700000000000"
        ))
        .await
    };
    let src = export(nb.clone(), "SOURCE").await;
    assert_eq!(src["file_type"], "py");
    assert_eq!(unb64(&src["content"]), source.as_bytes());
    for (format, file_type) in [("JUPYTER", "ipynb"), ("HTML", "html"), ("DBC", "dbc")] {
        let out = export(nb.clone(), format).await;
        assert_eq!(out["file_type"], file_type);
        let bytes = unb64(&out["content"]);
        if format == "JUPYTER" {
            let nbjson: Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(nbjson["cells"].as_array().unwrap().len(), 2);
        }
        let copy = format!("{dir}/from-{file_type}");
        ws.post(
            "/api/2.0/workspace/import",
            import(copy.clone(), format, bytes, None, false),
        )
        .await;
        let back = export(copy, "SOURCE").await;
        assert_eq!(unb64(&back["content"]), source.as_bytes(), "{format}");
    }
    let listed = ws.get(&format!("/api/2.0/workspace/list?path={dir}")).await;
    assert_eq!(listed["objects"].as_array().unwrap().len(), 4);
    let imp = "/api/2.0/workspace/import";
    ws.fails(
        Method::POST,
        imp,
        Some(import(
            nb.clone(),
            "SOURCE",
            b"x".to_vec(),
            Some("PYTHON"),
            false,
        )),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    .await;
    ws.post(
        imp,
        import(
            nb.clone(),
            "SOURCE",
            b"print(3)".to_vec(),
            Some("PYTHON"),
            true,
        ),
    )
    .await;
    let src = export(nb.clone(), "SOURCE").await;
    assert_eq!(
        unb64(&src["content"]),
        b"# Databricks notebook source\nprint(3)"
    );
    ws.fails(
        Method::POST,
        imp,
        Some(import(
            format!("{dir}/nolang"),
            "SOURCE",
            b"x".to_vec(),
            None,
            false,
        )),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    ws.fails(
        Method::POST,
        imp,
        Some(import(
            format!("{dir}/missing/nb"),
            "SOURCE",
            b"x".to_vec(),
            Some("PYTHON"),
            false,
        )),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    .await;
    let big = vec![b'#'; 10 * 1024 * 1024 + 1];
    ws.fails(
        Method::POST,
        imp,
        Some(import(
            format!("{dir}/big"),
            "SOURCE",
            big,
            Some("PYTHON"),
            false,
        )),
        400,
        "MAX_NOTEBOOK_SIZE_EXCEEDED",
    )
    .await;
    ws.fails(
        Method::POST,
        "/api/2.0/workspace/mkdirs",
        Some(json!({"path": format!("{nb}/sub")})),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    .await;
    ws.fails(
        Method::POST,
        "/api/2.0/mlflow/experiments/create",
        Some(json!({"name": nb})),
        400,
        "RESOURCE_ALREADY_EXISTS",
    )
    .await;
    ws.fails(
        Method::GET,
        &format!("/api/2.0/workspace/get-status?path={dir}/nothing"),
        None,
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )
    .await;
    // A notebook made through control, in a language with another comment marker.
    let made = dbx
        .add_notebook(0, "/Shared/team/q", "SQL", "SELECT 1")
        .await;
    assert_eq!(made["object_type"], "NOTEBOOK");
    let sql = export("/Shared/team/q".into(), "SOURCE").await;
    assert_eq!(sql["file_type"], "sql");
    assert_eq!(
        unb64(&sql["content"]),
        b"-- Databricks notebook source\nSELECT 1"
    );
}

/// The workspace registry's Databricks parts and the workspace ACLs.
async fn registry_checks(
    dbx: &DatabricksStandin,
    ws: &Ws,
    user: &str,
    run_id: &str,
    artifact_uri: &str,
    exp_id: &str,
) {
    ws.post(
        "/api/2.0/mlflow/registered-models/create",
        json!({"name": "wsm"}),
    )
    .await;
    let msg = ws
        .fails(
            Method::POST,
            "/api/2.0/mlflow/registered-models/alias",
            Some(json!({"name": "wsm", "alias": "a", "version": "1"})),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        .await;
    assert!(msg.contains("Workspace Model Registry"), "{msg}");
    let mv = ws
        .post(
            "/api/2.0/mlflow/model-versions/create",
            json!({"name": "wsm", "source": format!("{artifact_uri}/d"), "run_id": run_id}),
        )
        .await;
    assert_eq!(mv["model_version"]["status"], "READY");
    // The version's files (a copy of the source's), paged by two.
    let listed = ws
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=wsm&version=1&path=")
        .await;
    assert_eq!(
        listed["files"],
        json!([{"path": "b.bin", "is_dir": false, "file_size": 18}, {"path": "e", "is_dir": true}])
    );
    let deep = ws
        .get("/api/2.0/mlflow/model-versions/list-artifacts?name=wsm&version=1&path=e")
        .await;
    assert_eq!(
        deep["files"],
        json!([{"path": "e/c.txt", "is_dir": false, "file_size": 20}])
    );
    let url = ws
        .get("/api/2.0/mlflow/model-versions/get-signed-download-uri?name=wsm&version=1&path=e/c.txt")
        .await;
    let a = signed(Method::GET, &url, None, true).await;
    assert_eq!(a.text(), "content of d/e/c.txt");

    // ACLs of a registered model.
    let rm = ws
        .get("/api/2.0/mlflow/databricks/registered-models/get?name=wsm")
        .await;
    let id = rm["registered_model_databricks"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "{rm}"
    );
    let path = format!("/api/2.0/permissions/registered-models/{id}");
    let acl = ws.get(&path).await;
    assert_eq!(acl["object_id"], format!("/registered-models/{id}"));
    assert_eq!(acl["object_type"], "registered-model");
    let entries = acl["access_control_list"].as_array().unwrap();
    assert!(entries.contains(&json!({"group_name": "admins", "display_name": "admins", "all_permissions": [
        {"permission_level": "CAN_MANAGE", "inherited": true, "inherited_from_object": ["/registered-models/"]}]})), "{acl}");
    assert!(
        entries.contains(
            &json!({"user_name": user, "display_name": user, "all_permissions": [
        {"permission_level": "CAN_MANAGE", "inherited": false}]})
        ),
        "{acl}"
    );
    let msg = ws
        .fails(
            Method::PATCH,
            &path,
            Some(json!({"access_control_list": [
                {"user_name": "bob@example.com", "permission_level": "CAN_READ"},
                {"user_name": "nobody@example.com", "permission_level": "CAN_READ"}]})),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        .await;
    assert_eq!(
        msg,
        "Principal: UserName(nobody@example.com) does not exist"
    );
    assert_eq!(
        ws.get(&path).await,
        acl,
        "nothing of a refused request is applied"
    );
    let patched = ws
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"access_control_list": [{"user_name": "bob@example.com", "permission_level": "CAN_MANAGE_STAGING_VERSIONS"}]})),
        )
        .await;
    assert!(patched["access_control_list"].as_array().unwrap().contains(&json!({"user_name": "bob@example.com", "display_name": "bob@example.com", "all_permissions": [
        {"permission_level": "CAN_MANAGE_STAGING_VERSIONS", "inherited": false}]})), "{patched}");
    let levels = ws.get(&format!("{path}/permissionLevels")).await;
    assert_eq!(levels["permission_levels"].as_array().unwrap().len(), 5);

    // ACLs of an experiment: inherited from its folder and the home folder's owner.
    let path = format!("/api/2.0/permissions/experiments/{exp_id}");
    let acl = ws.get(&path).await;
    assert_eq!(acl["object_type"], "mlflowExperiment");
    let text = acl.to_string();
    assert!(
        text.contains("\"inherited_from_object\":[\"/directories/"),
        "{acl}"
    );
    let mine = acl["access_control_list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["user_name"] == user)
        .unwrap();
    assert_eq!(
        mine["all_permissions"].as_array().unwrap().len(),
        2,
        "{acl}"
    );
    for (kind, wrapper) in [
        ("group_name", "GroupName"),
        ("service_principal_name", "ServicePrincipalName"),
    ] {
        let msg = ws
            .fails(
                Method::PATCH,
                &path,
                Some(json!({"access_control_list": [{kind: "ghost", "permission_level": "CAN_READ"}]})),
                400,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
        assert_eq!(msg, format!("Principal: {wrapper}(ghost) does not exist"));
    }
    dbx.add_group(0, "readers", &["bob@example.com"]).await;
    ws.ok(
        Method::PATCH,
        &path,
        Some(json!({"access_control_list": [{"group_name": "readers", "permission_level": "CAN_READ"}]})),
    )
    .await;
    let other = Ws::new(
        &dbx.hosts[1],
        &dbx.user_with_token(1, "carol@example.com").await,
    );
    other
        .fails(Method::GET, &path, None, 404, "RESOURCE_DOES_NOT_EXIST")
        .await;
}

/// Unity Catalog: names, versions, temporary credentials on the S3 front, stages, grants.
async fn uc_checks(dbx: &DatabricksStandin, ws: &Ws, user: &str) {
    let uc = "/api/2.0/mlflow/unity-catalog";
    for bad in ["m", "a.b", "a.b.c.d"] {
        let msg = ws
            .fails(
                Method::POST,
                &format!("{uc}/registered-models/create"),
                Some(json!({"name": bad})),
                400,
                "INVALID_PARAMETER_VALUE",
            )
            .await;
        assert!(msg.contains("specify all three levels"), "{msg}");
    }
    let msg = ws
        .fails(
            Method::POST,
            &format!("{uc}/registered-models/create"),
            Some(json!({"name": "main.nope.m"})),
            404,
            "NOT_FOUND",
        )
        .await;
    assert_eq!(msg, "Schema 'main.nope' does not exist.");
    dbx.add_catalog("Sales", "Models").await;
    let rm = ws
        .post(
            &format!("{uc}/registered-models/create"),
            json!({"name": "Sales.Models.Churn"}),
        )
        .await;
    let name = "sales.models.churn";
    assert_eq!(rm["registered_model"]["name"], name);
    assert_eq!(rm["registered_model"]["user_id"], user);
    let mv = ws
        .post(
            &format!("{uc}/model-versions/create"),
            json!({"name": "SALES.models.churn", "source": "models:/m-0123", "run_id": "r1", "run_tracking_server_id": "1111111111111111"}),
        )
        .await["model_version"]
        .clone();
    assert_eq!(mv["status"], "PENDING_REGISTRATION");
    assert_eq!(mv["source"], "models:/m-0123");
    let storage = mv["storage_location"].as_str().unwrap().to_string();
    assert!(
        storage.starts_with(&format!("s3://{}/uc/models/", dbx.bucket)),
        "{mv}"
    );
    let uri = ws
        .get(&format!(
            "{uc}/model-versions/get-download-uri?name={name}&version=1"
        ))
        .await;
    assert_eq!(uri["artifact_uri"], storage.as_str());
    let creds = |op: &'static str| {
        let body = json!({"name": name, "version": "1", "operation": op});
        async move {
            ws.post(
                &format!("{uc}/model-versions/generate-temporary-credentials"),
                body,
            )
            .await
        }
    };
    let rw = creds("MODEL_VERSION_OPERATION_READ_WRITE").await;
    assert_eq!(rw["credentials"]["storage_mode"], "CUSTOMER_HOSTED");
    assert!(rw["credentials"]["expiration_time"].as_i64().unwrap() > 1_700_000_000_000);
    let session = |c: &Value| {
        c["credentials"]["aws_temp_credentials"]["session_token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let key = storage
        .split_once(&format!("s3://{}/", dbx.bucket))
        .unwrap()
        .1
        .to_string();
    let front = |method: Method, key: &str, token: &str, body: Option<&[u8]>| {
        let mut rb = http()
            .request(method, format!("{}/{}/{key}", dbx.s3_front, dbx.bucket))
            .header("x-amz-security-token", token);
        if let Some(b) = body {
            rb = rb.body(b.to_vec());
        }
        answer(rb)
    };
    let token = session(&rw);
    let a = front(
        Method::PUT,
        &format!("{key}/MLmodel"),
        &token,
        Some(b"flavors: {}\n"),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.text());
    let a = front(
        Method::PUT,
        "uc/models/elsewhere/MLmodel",
        &token,
        Some(b"x"),
    )
    .await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "AccessDenied")
    );
    let a = front(
        Method::GET,
        &format!("{key}/MLmodel"),
        "standin-session-unknown",
        None,
    )
    .await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (400, "ExpiredToken")
    );
    assert!(a.text().contains("The provided token has expired."));
    let ro = session(&creds("MODEL_VERSION_OPERATION_READ").await);
    let a = front(Method::PUT, &format!("{key}/other"), &ro, Some(b"x")).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (403, "AccessDenied")
    );
    let a = front(Method::GET, &format!("{key}/MLmodel"), &ro, None).await;
    assert_eq!((a.status, a.text().as_str()), (200, "flavors: {}\n"));
    dbx.settings(&Settings {
        temp_credentials_ttl: Some(1.0),
        ..Settings::default()
    })
    .await;
    let short = session(&creds("MODEL_VERSION_OPERATION_READ").await);
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let a = front(Method::GET, &format!("{key}/MLmodel"), &short, None).await;
    assert_eq!(
        (a.status, s3_error_code(&a).as_str()),
        (400, "ExpiredToken")
    );
    dbx.settings(&Settings {
        temp_credentials_ttl: Some(3600.0),
        ..Settings::default()
    })
    .await;
    let done = ws
        .post(
            &format!("{uc}/model-versions/finalize"),
            json!({"name": name, "version": "1"}),
        )
        .await;
    assert_eq!(done["model_version"]["status"], "READY");
    ws.fails(
        Method::POST,
        &format!("{uc}/model-versions/generate-temporary-credentials"),
        Some(json!({"name": name, "version": "1", "operation": "MODEL_VERSION_OPERATION_READ_WRITE"})),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    let msg = ws
        .fails(
            Method::POST,
            &format!("{uc}/model-versions/transition-stage"),
            Some(json!({"name": name, "version": "1", "stage": "Production"})),
            400,
            "INVALID_PARAMETER_VALUE",
        )
        .await;
    assert!(
        msg.contains("unsupported for models in the Unity Catalog"),
        "{msg}"
    );
    ws.post(
        &format!("{uc}/registered-models/alias"),
        json!({"name": name, "alias": "prod", "version": "1"}),
    )
    .await;
    let by_alias = ws
        .get(&format!(
            "{uc}/registered-models/alias?name={name}&alias=prod"
        ))
        .await;
    assert_eq!(
        by_alias["model_version"]["aliases"],
        json!([{"alias": "prod", "version": "1"}])
    );

    // Grants (securable type function).
    let grants = format!("/api/2.1/unity-catalog/permissions/function/{name}");
    let msg = ws
        .fails(
            Method::PATCH,
            &grants,
            Some(json!({"changes": [{"principal": "ghost@example.com", "add": ["EXECUTE"]}]})),
            400,
            "PRINCIPAL_DOES_NOT_EXIST",
        )
        .await;
    assert_eq!(msg, "Could not find principal with name ghost@example.com");
    ws.fails(
        Method::PATCH,
        &grants,
        Some(json!({"changes": [{"principal": "bob@example.com", "add": ["EXECUTE"], "remove": ["EXECUTE"]}]})),
        400,
        "INVALID_PARAMETER_VALUE",
    )
    .await;
    let patched = ws
        .ok(
            Method::PATCH,
            &grants,
            Some(json!({"changes": [{"principal": "bob@example.com", "add": ["EXECUTE", "APPLY_TAG"]}]})),
        )
        .await;
    assert_eq!(
        patched,
        json!({"privilege_assignments": [{"principal": "bob@example.com", "privileges": ["APPLY_TAG", "EXECUTE"]}]})
    );
    dbx.grant_on_schema("sales", "models", "readers", &["EXECUTE"])
        .await;
    assert_eq!(ws.get(&grants).await, patched, "direct grants only");
    let effective = ws
        .get(&format!(
            "/api/2.1/unity-catalog/effective-permissions/function/{name}"
        ))
        .await;
    assert!(effective["privilege_assignments"].as_array().unwrap().contains(&json!({
        "principal": "readers",
        "privileges": [{"privilege": "EXECUTE", "inherited_from_type": "SCHEMA", "inherited_from_name": "sales.models"}]
    })), "{effective}");
    ws.fails(
        Method::GET,
        "/api/2.1/unity-catalog/permissions/function/main.default.absent",
        None,
        404,
        "NOT_FOUND",
    )
    .await;
}
