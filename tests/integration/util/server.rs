//! Real `mlflow server` processes for the live tests.
//!
//! Each server runs from the project's virtual environment (`scripts/ensure-venv.sh` installs the
//! pinned MLflow there; `MLFLOW_ARCHIVE_VENV` points elsewhere), with a sqlite store and served
//! artifacts in a fresh temporary directory, on a free 127.0.0.1 port. A small Python guard
//! (`tests/harness/mlflow_server.py`) owns the server's process group and stops it when the test
//! process lets go of the guard's standard input, which happens on drop, at exit, on a panic and on
//! `kill -9` alike, so no server outlives the tests.
//!
//! Without MLflow installed the live tests skip with a message, except under `CI=true`, where
//! they fail.
//!
//! A server can also run without the artifact proxy, with its artifact root in an object store or
//! a local directory ([`MlflowServer::start_with_artifact_root`]): clients then read and write the
//! store themselves, as on most production servers (`util::stores` starts the store emulators).

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running server.
pub struct MlflowServer {
    /// `http://127.0.0.1:PORT`.
    pub uri: String,
    /// The `--default-artifact-root` of a server without the artifact proxy (`s3://…`, a local
    /// directory, …); `None` when the server serves artifacts (`mlflow-artifacts:`).
    pub artifact_root: Option<String>,
    _guard: Guard,
}

/// A process started through `tests/harness/mlflow_server.py`: dropping this closes the guard's
/// standard input, and the guard stops the process group and removes its directory.
pub struct Guard(Child);

impl Guard {
    /// Spawns `cmd` under the guard, which removes `cleanup` when it stops; the command's output
    /// goes to `log`.
    pub fn spawn(
        venv: &Path,
        cleanup: &Path,
        log: &Path,
        cmd: &Path,
        args: &[&OsStr],
    ) -> Result<Guard, String> {
        Self::spawn_with(venv, cleanup, log, cmd, args, |_| {})
    }

    /// [`Guard::spawn`], with `env` adjusting the command's environment first.
    pub fn spawn_with(
        venv: &Path,
        cleanup: &Path,
        log: &Path,
        cmd: &Path,
        args: &[&OsStr],
        env: impl FnOnce(&mut Command),
    ) -> Result<Guard, String> {
        let log = std::fs::File::create(log).map_err(|e| e.to_string())?;
        let mut command = Command::new(venv.join("bin/python"));
        env(&mut command);
        command
            .arg(repo_root().join("tests/harness/mlflow_server.py"))
            .arg("--cleanup")
            .arg(cleanup)
            .arg("--")
            .arg(cmd)
            .args(args)
            .current_dir(cleanup)
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map(Guard)
            .map_err(|e| format!("spawning the guard for {}: {e}", cmd.display()))
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
    }
}

/// Where a server keeps artifacts.
#[derive(Clone, Copy)]
enum Artifacts<'a> {
    /// Served by the server itself (`--serve-artifacts`, runs get `mlflow-artifacts:` URIs).
    Served,
    /// Not served: `--default-artifact-root` is this URI, or the server's own temporary
    /// `artifacts` directory for `None`.
    Root(Option<&'a str>),
}

/// Where a server keeps its tracking data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// A sqlite database (every feature).
    Sqlite,
    /// MLflow's file store (`file:`; started with `MLFLOW_ALLOW_FILE_STORE=true`): no evaluation
    /// datasets, among others.
    File,
}

/// The variables through which MLflow (server and clients) reaches an artifact store. The
/// servers and scripts the tests start drop the inherited ones, so that a developer's own
/// credentials never reach a test and a test never reaches a real cloud.
pub const STORE_VARIABLES: &[&str] = &[
    "MLFLOW_S3_ENDPOINT_URL",
    "MLFLOW_S3_IGNORE_TLS",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_EC2_METADATA_DISABLED",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCESS_KEY",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "STORAGE_EMULATOR_HOST",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_CLOUD_PROJECT",
];

/// Basic-auth settings for a server started with `--app-name basic-auth`.
pub struct BasicAuth {
    /// The admin user.
    pub username: String,
    /// The admin's password.
    pub password: String,
}

/// A new directory for one process's data and log, kept until its guard removes it.
pub fn scratch_dir(name: &str) -> Result<PathBuf, String> {
    tempfile::Builder::new()
        .prefix(&format!("mlflow-archive-{name}-"))
        .tempdir()
        .map(|d| d.keep())
        .map_err(|e| e.to_string())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The virtual environment with MLflow, if it is installed.
pub fn venv() -> Option<PathBuf> {
    let v = std::env::var_os("MLFLOW_ARCHIVE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".venv"));
    v.join("bin/mlflow").exists().then_some(v)
}

/// True when live tests must run (CI).
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// A port nothing listens on now (the process started next binds it; a start that loses the
/// race is retried).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

/// No variables beyond the inherited ones.
const NO_ENV: &[(&str, &str)] = &[];

/// The venv, or `None` (with a message) when live tests may skip; panics under `CI=true`.
fn venv_or_skip() -> Option<PathBuf> {
    let venv = venv();
    if venv.is_none() {
        let msg = "live tests need MLflow: run scripts/test.sh (it installs the pinned version into .venv)";
        if required() {
            panic!("CI=true and {msg}");
        }
        eprintln!("SKIPPED live test: {msg}");
    }
    venv
}

impl MlflowServer {
    /// Starts a server; `None` when MLflow is not installed and live tests may skip.
    pub fn start(name: &str, auth: Option<&BasicAuth>) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        Some(Self::start_retrying(
            &venv,
            name,
            auth,
            Artifacts::Served,
            NO_ENV,
        ))
    }

    /// Fresh servers of their own (served artifacts, no auth), started side by side, in the
    /// order of `names`; `None` when live tests skip.
    pub async fn start_fresh(names: &[&'static str]) -> Option<Vec<MlflowServer>> {
        let names = names.to_vec();
        tokio::task::spawn_blocking(move || {
            let started: Vec<_> = names
                .into_iter()
                .map(|n| std::thread::spawn(move || MlflowServer::start(n, None)))
                .collect();
            started
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect::<Option<Vec<_>>>()
        })
        .await
        .unwrap()
    }

    /// A server with MLflow workspaces (`MLFLOW_ENABLE_WORKSPACES`, as `--enable-workspaces`),
    /// serving artifacts. `None` when live tests skip.
    pub fn start_with_workspaces(name: &str) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        Some(Self::start_retrying(
            &venv,
            name,
            None,
            Artifacts::Served,
            &[("MLFLOW_ENABLE_WORKSPACES", "true")],
        ))
    }

    /// A server with MLflow workspaces and without the artifact proxy, whose default artifact
    /// root is `root`: the Databricks stand-in's backing server (`util::databricks`), whose root
    /// is `dbfs:/databricks/mlflow-tracking` and which never reads or writes artifacts itself.
    /// `None` when live tests skip.
    pub fn start_with_workspaces_and_root(name: &str, root: &str) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        Some(Self::start_retrying(
            &venv,
            name,
            None,
            Artifacts::Root(Some(root)),
            &[("MLFLOW_ENABLE_WORKSPACES", "true")],
        ))
    }

    /// A server that does not serve artifacts: clients write them into its local artifact root
    /// themselves (the setup the Python tool's `import-model` needs; mlflow-archive needs the
    /// artifact proxy, so only the Python tool writes here).
    pub fn start_without_artifact_proxy(name: &str) -> Option<MlflowServer> {
        let venv = venv()?;
        Self::try_start(
            &venv,
            name,
            None,
            Artifacts::Root(None),
            Backend::Sqlite,
            NO_ENV,
        )
        .ok()
    }

    /// A server without the artifact proxy (`--no-serve-artifacts`) whose artifact root is
    /// `root` (`s3://bucket/path`, `wasbs://container@account.blob.core.windows.net/path`,
    /// `gs://bucket/path`, a local directory, …), started with `env` (the variables MLflow needs
    /// to reach the store: see `util::stores`) in place of the inherited [`STORE_VARIABLES`].
    /// Clients write and read the store themselves. `None` when live tests skip.
    pub fn start_with_artifact_root<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        name: &str,
        root: &str,
        env: &[(K, V)],
    ) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        Some(Self::start_retrying(
            &venv,
            name,
            None,
            Artifacts::Root(Some(root)),
            env,
        ))
    }

    /// A server without the artifact proxy whose artifact root is a fresh local directory (a
    /// plain absolute path, in [`MlflowServer::artifact_root`]; removed with the server).
    /// `None` when live tests skip.
    pub fn start_with_local_artifact_root(name: &str) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        Some(Self::start_retrying(
            &venv,
            name,
            None,
            Artifacts::Root(None),
            NO_ENV,
        ))
    }

    /// A server with served artifacts whose tracking data is in MLflow's file store, not in a
    /// database. `None` when live tests skip.
    pub fn start_with_file_store(name: &str) -> Option<MlflowServer> {
        let venv = venv_or_skip()?;
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(&venv, name, None, Artifacts::Served, Backend::File, NO_ENV) {
                Ok(s) => return Some(s),
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start mlflow server {name}: {last_err}");
    }

    fn start_retrying<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        venv: &Path,
        name: &str,
        auth: Option<&BasicAuth>,
        artifacts: Artifacts<'_>,
        env: &[(K, V)],
    ) -> MlflowServer {
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(venv, name, auth, artifacts, Backend::Sqlite, env) {
                Ok(s) => return s,
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start mlflow server {name}: {last_err}");
    }

    fn try_start<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        venv: &Path,
        name: &str,
        auth: Option<&BasicAuth>,
        artifacts: Artifacts<'_>,
        backend: Backend,
        env: &[(K, V)],
    ) -> Result<MlflowServer, String> {
        let dir = scratch_dir(name)?;
        let port = free_port();
        let log = std::fs::File::create(dir.join("server.log")).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(venv.join("bin/python"));
        cmd.arg(repo_root().join("tests/harness/mlflow_server.py"))
            .arg("--cleanup")
            .arg(&dir)
            .arg("--")
            .arg(venv.join("bin/mlflow"))
            .arg("server");
        if auth.is_some() {
            cmd.args(["--app-name", "basic-auth"]);
        }
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("--backend-store-uri");
        match backend {
            Backend::Sqlite => {
                cmd.arg(format!("sqlite:///{}", dir.join("mlflow.db").display()));
            }
            Backend::File => {
                // MLflow 3.17 refuses a file store unless asked to keep it.
                cmd.arg(format!("file://{}", dir.join("mlruns").display()))
                    .env("MLFLOW_ALLOW_FILE_STORE", "true");
            }
        }
        let artifact_root = match artifacts {
            Artifacts::Served => {
                cmd.arg("--serve-artifacts")
                    .arg("--artifacts-destination")
                    .arg(dir.join("artifacts"));
                None
            }
            Artifacts::Root(root) => {
                let root = root
                    .map(str::to_string)
                    .unwrap_or_else(|| dir.join("artifacts").display().to_string());
                cmd.arg("--no-serve-artifacts")
                    .arg("--default-artifact-root")
                    .arg(&root);
                Some(root)
            }
        };
        for v in STORE_VARIABLES {
            cmd.env_remove(v);
        }
        cmd.envs(env.iter().map(|(k, v)| (k, v)));
        cmd.args(["--workers", "1"])
            .args([
                "--allowed-hosts",
                "127.0.0.1:*,localhost:*,127.0.0.1,localhost",
            ])
            .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
            .env_remove("MLFLOW_TRACKING_URI")
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log);
        if let Some(a) = auth {
            let ini = dir.join("auth.ini");
            std::fs::write(
                &ini,
                format!(
                    "[mlflow]\ndefault_permission = READ\ndatabase_uri = sqlite:///{}\nadmin_username = {}\nadmin_password = {}\nauthorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
                    dir.join("auth.db").display(),
                    a.username,
                    a.password
                ),
            )
            .map_err(|e| e.to_string())?;
            cmd.env("MLFLOW_AUTH_CONFIG_PATH", &ini)
                .env("MLFLOW_FLASK_SERVER_SECRET_KEY", "mlflow-archive-tests");
        }
        let guard = cmd
            .spawn()
            .map_err(|e| format!("spawning the guard: {e}"))?;
        let server = MlflowServer {
            uri: format!("http://127.0.0.1:{port}"),
            artifact_root,
            _guard: Guard(guard),
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if health(port) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(30).collect();
                return Err(format!(
                    "not healthy after 120 s; log tail:\n{}",
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                ));
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

fn health(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let req =
        format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    buf.starts_with(b"HTTP/1.1 200") || buf.starts_with(b"HTTP/1.0 200")
}

/// A source and a destination server shared by the tests of this binary.
pub struct Pair {
    /// The source.
    pub src: MlflowServer,
    /// The destination.
    pub dst: MlflowServer,
}

/// The shared pair, started on first use; `None` when live tests skip.
pub fn pair() -> Option<&'static Pair> {
    static PAIR: OnceLock<Option<Pair>> = OnceLock::new();
    PAIR.get_or_init(|| {
        // Start both at once: start-up is mostly waiting.
        let dst = std::thread::spawn(|| MlflowServer::start("dst", None));
        let src = MlflowServer::start("src", None)?;
        let dst = dst.join().expect("starting dst panicked")?;
        Some(Pair { src, dst })
    })
    .as_ref()
}

/// The admin credentials of [`auth_server`].
pub fn admin() -> BasicAuth {
    BasicAuth {
        username: "admin".into(),
        password: "Adm1n-pw-not-in-output".into(),
    }
}

/// A server with MLflow's basic-auth app, shared; `None` when live tests skip.
pub fn auth_server() -> Option<&'static MlflowServer> {
    static AUTH: OnceLock<Option<MlflowServer>> = OnceLock::new();
    AUTH.get_or_init(|| MlflowServer::start("auth", Some(&admin())))
        .as_ref()
}
