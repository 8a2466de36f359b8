//! The Databricks stand-in (`tests/harness/databricks_standin.py`): a server built from
//! Databricks' published REST API documentation and MLflow's own Databricks client code, NOT
//! Databricks. No real workspace is reachable from the tests; this answers the documented
//! endpoints with its state in real services behind it:
//!
//! - moto (the S3 emulator of `util::stores`), bucket `dbx`: every file;
//! - one real `mlflow server` with MLflow workspaces and `--no-serve-artifacts`: Databricks
//!   workspace `i` is MLflow workspace `ws-<i>`, the Unity Catalog metastore they share is `uc`;
//! - the stand-in itself, one port per workspace plus one for the S3 front that UC's temporary
//!   credentials open.
//!
//! All three run under the harness's [`Guard`], so nothing outlives the tests. Workspaces are
//! numbered from 0; each has an id (`1111111111111111`, `2222222222222222`, …). Tests set the
//! stand-in up (users, tokens, service principals, notebooks, catalogs, TTLs, page sizes) and
//! read its request log through `/_standin/*`, which no Databricks client path can reach.
//! What it implements and what it infers: `tests/harness/dbx_standin/__init__.py`.
//!
//! Without MLflow or moto installed the tests that need it skip with a message, except under
//! `CI=true`, where they fail.

use std::ffi::OsStr;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::server::{Guard, MlflowServer, STORE_VARIABLES, repo_root, scratch_dir, venv};
use super::stores::S3Emulator;

/// A running stand-in and the services behind it.
pub struct DatabricksStandin {
    /// One base URL per Databricks workspace (`http://127.0.0.1:PORT`): what `DATABRICKS_HOST`
    /// takes.
    pub hosts: Vec<String>,
    /// The workspace ids, in the order of [`DatabricksStandin::hosts`].
    pub workspace_ids: Vec<String>,
    /// The S3 front (`http://127.0.0.1:PORT`): what `MLFLOW_S3_ENDPOINT_URL` /
    /// `AWS_ENDPOINT_URL` take for Unity Catalog's temporary credentials.
    pub s3_front: String,
    /// moto's own endpoint (behind the stand-in; for checks that read the bucket directly).
    pub s3: String,
    /// The bucket every file is in.
    pub bucket: String,
    /// The MLflow server behind the stand-in (for checks only: clients talk to the hosts).
    pub mlflow: String,
    http: reqwest::Client,
    _standin: Guard,
    _mlflow: MlflowServer,
    _moto: S3Emulator,
}

/// Settings of `POST /_standin/settings`; `None` leaves a setting as it is.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Settings {
    /// Lifetime of signed URLs, seconds (default 900).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed_url_ttl: Option<f64>,
    /// Delay before every signed-URL object request is served, ms (default 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object_delay_ms: Option<u64>,
    /// Entries per page of `artifacts/list` and the other listings (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_page_size: Option<u64>,
    /// Credential infos per page of the credentials endpoints (default 1000).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credentials_page_size: Option<u64>,
    /// Lifetime of UC temporary credentials, seconds (default 3600).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temp_credentials_ttl: Option<f64>,
    /// Every Nth signed-URL request is answered as expired (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_every: Option<u64>,
    /// Every Nth upload through the S3 front ends its session token first (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_token_every: Option<u64>,
    /// Every Nth download through a signed URL is cut halfway (0: none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cut_every_get: Option<u64>,
}

/// One entry of the stand-in's request log (control requests are not logged).
#[derive(Debug, Clone, Deserialize)]
pub struct LogEntry {
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// Who the token belonged to (user email or service principal id), if authenticated.
    pub principal: Option<String>,
    /// `pat`, `oauth` or `sts` (S3 front), if authenticated.
    pub auth: Option<String>,
    /// The base URL the request came to.
    pub host: String,
    /// The workspace index (`None` on the S3 front).
    pub workspace: Option<usize>,
    /// Whether the signed URLs' required header (`x-amz-server-side-encryption`) was sent.
    pub signed_header: bool,
}

/// How MLflow's Python client authenticates to a workspace ([`DatabricksStandin::mlflow_client`]).
pub enum ClientAuth<'a> {
    /// `DATABRICKS_TOKEN`.
    Pat(&'a str),
    /// `DATABRICKS_CLIENT_ID` + `DATABRICKS_CLIENT_SECRET` (OAuth M2M through the SDK).
    OAuth {
        /// The service principal's application id.
        client_id: &'a str,
        /// Its secret.
        client_secret: &'a str,
    },
}

/// Variables a developer may have set that would point MLflow or the Databricks SDK elsewhere.
const CLIENT_VARIABLES: &[&str] = &[
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_WORKSPACE",
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_USERNAME",
    "DATABRICKS_PASSWORD",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_CONFIG_FILE",
    "DATABRICKS_AUTH_TYPE",
    "DATABRICKS_ACCOUNT_ID",
    "DATABRICKS_WORKSPACE_ID",
    "DATABRICKS_DISCOVERY_URL",
];

impl DatabricksStandin {
    /// Starts moto, the MLflow server and the stand-in with two workspaces; `None` when live
    /// tests skip. Blocking (call it from `spawn_blocking` inside a runtime).
    pub fn start() -> Option<DatabricksStandin> {
        Self::start_with(2)
    }

    /// [`DatabricksStandin::start`] with `workspaces` Databricks workspaces.
    pub fn start_with(workspaces: usize) -> Option<DatabricksStandin> {
        // Start-up is mostly waiting: the S3 emulator and the MLflow server at once.
        let mlflow = std::thread::spawn(|| {
            MlflowServer::start_with_workspaces_and_root("dbx", "dbfs:/databricks/mlflow-tracking")
        });
        let moto = S3Emulator::start();
        let mlflow = mlflow
            .join()
            .expect("starting the MLflow server panicked")?;
        let moto = moto?;
        let venv = venv().expect("the venv the MLflow server came from");
        let bucket = "dbx".to_string();
        let dir = scratch_dir("dbx-standin").expect("a scratch directory");
        let log = dir.join("standin.log");
        let state = dir.join("state");
        let script = repo_root().join("tests/harness/databricks_standin.py");
        let count = workspaces.to_string();
        let args: Vec<&OsStr> = vec![
            script.as_os_str(),
            OsStr::new("--mlflow"),
            OsStr::new(&mlflow.uri),
            OsStr::new("--s3"),
            OsStr::new(&moto.endpoint),
            OsStr::new("--bucket"),
            OsStr::new(&bucket),
            OsStr::new("--workspaces"),
            OsStr::new(&count),
            OsStr::new("--state"),
            state.as_os_str(),
        ];
        let guard = Guard::spawn_with(&venv, &dir, &log, &venv.join("bin/python"), &args, |c| {
            for v in STORE_VARIABLES.iter().chain(CLIENT_VARIABLES) {
                c.env_remove(v);
            }
        })
        .unwrap_or_else(|e| panic!("cannot start the Databricks stand-in: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready: Value = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.starts_with("{\"workspaces\"")) {
                break serde_json::from_str(line).expect("the stand-in's ready line is JSON");
            }
            if Instant::now() > deadline {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                panic!(
                    "the Databricks stand-in did not start within 60 s; log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let field = |w: &Value, k: &str| w[k].as_str().expect("a string").to_string();
        let list = ready["workspaces"].as_array().expect("a workspace list");
        Some(DatabricksStandin {
            hosts: list.iter().map(|w| field(w, "host")).collect(),
            workspace_ids: list.iter().map(|w| field(w, "workspace_id")).collect(),
            s3_front: field(&ready, "s3_front"),
            s3: moto.endpoint.clone(),
            bucket,
            mlflow: mlflow.uri.clone(),
            http: http(),
            _standin: guard,
            _mlflow: mlflow,
            _moto: moto,
        })
    }

    /// One stand-in shared by the tests of this binary that change no setting (users, tokens
    /// and service principals are per test: give them unique names). `None` when live tests
    /// skip.
    pub fn shared() -> Option<&'static DatabricksStandin> {
        static SHARED: OnceLock<Option<DatabricksStandin>> = OnceLock::new();
        SHARED.get_or_init(DatabricksStandin::start).as_ref()
    }

    /// What clients need to read moto directly (`util::stores::files_under`).
    pub fn moto_env(&self) -> Vec<(&'static str, String)> {
        let mut env = self._moto.env();
        env.retain(|(k, _)| *k != "MLFLOW_S3_ENDPOINT_URL");
        env.push(("MLFLOW_S3_ENDPOINT_URL", self.s3.clone()));
        env
    }

    fn control(&self, path: &str) -> String {
        format!("{}/_standin/{path}", self.hosts[0])
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(self.control(path))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("stand-in control {path}: {e}"));
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(
            status.is_success(),
            "stand-in control {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap()
    }

    /// Adds the user `name` (an email) to workspace `ws`, with a home folder `/Users/<name>`.
    pub async fn add_user(&self, ws: usize, name: &str) {
        self.post("users", json!({"workspace": ws, "name": name}))
            .await;
    }

    /// Adds (or extends) the group `group` of workspace `ws`.
    pub async fn add_group(&self, ws: usize, group: &str, members: &[&str]) {
        self.post(
            "users",
            json!({"workspace": ws, "group": group, "members": members}),
        )
        .await;
    }

    /// Gives `user` (a user or service principal of workspace `ws`) the personal access token
    /// `token`, valid for `expires_in` seconds (forever for `None`).
    pub async fn add_token(&self, ws: usize, user: &str, token: &str, expires_in: Option<f64>) {
        let mut body = json!({"workspace": ws, "user": user, "token": token});
        if let Some(s) = expires_in {
            body["expires_in"] = json!(s);
        }
        self.post("tokens", body).await;
    }

    /// A new user `name` of workspace `ws` with a fresh token; returns the token.
    pub async fn user_with_token(&self, ws: usize, name: &str) -> String {
        self.add_user(ws, name).await;
        let token = super::unique("dapi");
        self.add_token(ws, name, &token, None).await;
        token
    }

    /// Revokes a token (PAT or OAuth access token).
    pub async fn revoke_token(&self, token: &str) {
        self.post("tokens/revoke", json!({"token": token})).await;
    }

    /// Adds a service principal to workspace `ws`: OAuth M2M with `client_id`/`client_secret`,
    /// access tokens valid for `ttl` seconds.
    pub async fn add_service_principal(
        &self,
        ws: usize,
        client_id: &str,
        client_secret: &str,
        ttl: f64,
    ) {
        self.post(
            "service-principals",
            json!({"workspace": ws, "client_id": client_id, "client_secret": client_secret, "ttl": ttl}),
        )
        .await;
    }

    /// Changes settings (for every workspace); returns them all.
    pub async fn settings(&self, s: &Settings) -> Value {
        self.post("settings", serde_json::to_value(s).unwrap())
            .await
    }

    /// A notebook at `path` (parents made) in workspace `ws`; `source` without or with the
    /// `Databricks notebook source` header. Returns its get-status object.
    pub async fn add_notebook(&self, ws: usize, path: &str, language: &str, source: &str) -> Value {
        self.post(
            "notebooks",
            json!({"workspace": ws, "path": path, "language": language, "source": source}),
        )
        .await
    }

    /// A Unity Catalog catalog and schema (`main.default` always exists).
    pub async fn add_catalog(&self, catalog: &str, schema: &str) {
        self.post("catalogs", json!({"catalog": catalog, "schema": schema}))
            .await;
    }

    /// Grants on a schema, which its models inherit (UC effective permissions).
    pub async fn grant_on_schema(
        &self,
        catalog: &str,
        schema: &str,
        principal: &str,
        privileges: &[&str],
    ) {
        self.post(
            "catalogs",
            json!({"catalog": catalog, "schema": schema, "grants": {principal: privileges}}),
        )
        .await;
    }

    /// Every request logged so far (in order).
    pub async fn log(&self) -> Vec<LogEntry> {
        self.http
            .get(self.control("log"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Empties the request log.
    pub async fn clear_log(&self) {
        self.post("log/clear", json!({})).await;
    }

    /// Runs `tests/harness/{script}` with the venv's Python and `args`, as MLflow's own client
    /// in Databricks mode against workspace `ws` (`MLFLOW_TRACKING_URI=databricks`,
    /// `DATABRICKS_HOST`, the credentials of `auth`, run artifacts through the credentials API,
    /// UC files through the S3 front); asserts success and returns stdout parsed as JSON (its
    /// last line).
    pub async fn mlflow_client(
        &self,
        ws: usize,
        auth: ClientAuth<'_>,
        script: &str,
        args: &[&str],
    ) -> Value {
        let venv = venv().expect("the test venv");
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(repo_root().join("tests/harness").join(script))
            .args(args);
        for v in STORE_VARIABLES.iter().chain(CLIENT_VARIABLES) {
            cmd.env_remove(v);
        }
        let none = std::env::temp_dir().join("mlflow-archive-no-databrickscfg");
        cmd.env("MLFLOW_TRACKING_URI", "databricks")
            .env("DATABRICKS_HOST", &self.hosts[ws])
            .env("DATABRICKS_CONFIG_FILE", none)
            .env("MLFLOW_DISABLE_DATABRICKS_SDK_FOR_RUN_ARTIFACTS", "true")
            .env(
                "MLFLOW_USE_DATABRICKS_SDK_MODEL_ARTIFACTS_REPO_FOR_UC",
                "false",
            )
            .env("MLFLOW_S3_ENDPOINT_URL", &self.s3_front)
            .env("AWS_ACCESS_KEY_ID", S3Emulator::ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3Emulator::SECRET_KEY)
            .env("AWS_DEFAULT_REGION", S3Emulator::REGION)
            .env("AWS_EC2_METADATA_DISABLED", "true");
        match auth {
            ClientAuth::Pat(token) => {
                cmd.env("DATABRICKS_TOKEN", token);
            }
            ClientAuth::OAuth {
                client_id,
                client_secret,
            } => {
                cmd.env("DATABRICKS_CLIENT_ID", client_id)
                    .env("DATABRICKS_CLIENT_SECRET", client_secret);
            }
        }
        let what = format!("{script} {args:?}");
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what}: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {stdout}"))
    }
}

/// A plain HTTP client (the crate's rustls has no default crypto provider: install ring's).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

/// The stand-in for a test, or return from the test when live tests skip.
#[macro_export]
macro_rules! databricks_standin {
    (shared) => {
        match tokio::task::spawn_blocking($crate::util::databricks::DatabricksStandin::shared)
            .await
            .unwrap()
        {
            Some(s) => s,
            None => return,
        }
    };
    () => {
        match tokio::task::spawn_blocking($crate::util::databricks::DatabricksStandin::start)
            .await
            .unwrap()
        {
            Some(s) => s,
            None => return,
        }
    };
}

/// `GET|POST <host>/api/2.0/<path>` with `token`; the JSON answer (asserting success). A GET
/// sends `body`'s fields (strings) as its query.
pub async fn rest(host: &str, token: &str, method: &str, path: &str, body: Value) -> Value {
    let url = format!("{host}/api/2.0/{path}");
    let req = match method {
        "GET" => http().get(&url).query(
            &body
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect::<Vec<_>>(),
        ),
        _ => http().post(&url).json(&body),
    };
    let resp = req.bearer_auth(token).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert!(status.is_success(), "{method} {path}: {status} {text}");
    serde_json::from_str(&text).unwrap()
}

impl DatabricksStandin {
    /// The files under a run's `dbfs:` root, as the bucket holds them.
    pub async fn stored(
        &self,
        artifact_uri: &str,
    ) -> std::collections::BTreeMap<String, super::stores::StoredFile> {
        let rest = artifact_uri
            .strip_prefix("dbfs:/databricks/")
            .expect("a dbfs: run root");
        let uri = format!("s3://{}/{rest}", self.bucket);
        let env = self.moto_env();
        tokio::task::spawn_blocking(move || super::stores::files_under(&uri, &env))
            .await
            .unwrap()
    }
}
