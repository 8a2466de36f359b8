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
    guard: Child,
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        drop(self.guard.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.guard.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.guard.kill();
    }
}

/// Basic-auth settings for a server started with `--app-name basic-auth`.
pub struct BasicAuth {
    /// The admin user.
    pub username: String,
    /// The admin's password.
    pub password: String,
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port on 127.0.0.1")
}

impl MlflowServer {
    /// Starts a server; `None` when MLflow is not installed and live tests may skip.
    pub fn start(name: &str, auth: Option<&BasicAuth>) -> Option<MlflowServer> {
        let Some(venv) = venv() else {
            let msg = "live tests need MLflow: run scripts/test.sh (it installs the pinned version into .venv)";
            if required() {
                panic!("CI=true and {msg}");
            }
            eprintln!("SKIPPED live test: {msg}");
            return None;
        };
        let mut last_err = String::new();
        for _ in 0..3 {
            match Self::try_start(&venv, name, auth, true) {
                Ok(s) => return Some(s),
                Err(e) => last_err = e,
            }
        }
        panic!("cannot start mlflow server {name}: {last_err}");
    }

    /// A server that does not serve artifacts: clients write them into its local artifact root
    /// themselves (the setup the Python tool's `import-model` needs; mlflow-archive needs the
    /// artifact proxy, so only the Python tool writes here).
    pub fn start_without_artifact_proxy(name: &str) -> Option<MlflowServer> {
        let venv = venv()?;
        Self::try_start(&venv, name, None, false).ok()
    }

    fn try_start(
        venv: &Path,
        name: &str,
        auth: Option<&BasicAuth>,
        serve_artifacts: bool,
    ) -> Result<MlflowServer, String> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("mlflow-archive-{name}-"))
            .tempdir()
            .map_err(|e| e.to_string())?
            .keep();
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
            .arg("--backend-store-uri")
            .arg(format!("sqlite:///{}", dir.join("mlflow.db").display()));
        if serve_artifacts {
            cmd.arg("--serve-artifacts")
                .arg("--artifacts-destination")
                .arg(dir.join("artifacts"));
        } else {
            cmd.arg("--no-serve-artifacts")
                .arg("--default-artifact-root")
                .arg(dir.join("artifacts"));
        }
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
            guard,
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
