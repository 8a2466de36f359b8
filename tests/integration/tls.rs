//! TLS settings from MLflow's conventions, against a real server behind a TLS front
//! (`tests/harness/tls_proxy.py`) whose certificate is signed by a throw-away CA.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use mlflow_archive::mlflow::{Client, Env, TrackingConfig};

use crate::live_pair;
use crate::util::server::venv;

struct TlsFront {
    uri: String,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
    child: Child,
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn front(upstream_uri: &str) -> TlsFront {
    let port = upstream_uri.rsplit(':').next().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(
        venv()
            .expect("live tests run with MLflow's venv")
            .join("bin/python"),
    )
    .arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/harness/tls_proxy.py"
    ))
    .arg(dir.path())
    .arg(port)
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    TlsFront {
        uri: format!("https://127.0.0.1:{}", line.trim()),
        ca: dir.path().join("ca.pem"),
        _dir: dir,
        child,
    }
}

fn client(uri: &str, env: Env) -> Client {
    Client::new(TrackingConfig::resolve(Some(uri), &env).unwrap()).unwrap()
}

#[tokio::test]
async fn certificates_are_checked_trusted_from_a_file_or_skipped_on_request() {
    let pair = live_pair!();
    let tls = front(&pair.src.uri);

    let err = client(&tls.uri, Env::default())
        .get_experiment("0")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("MLFLOW_TRACKING_SERVER_CERT_PATH"),
        "says what to do: {text}"
    );
    assert!(
        matches!(
            err,
            mlflow_archive::Error::Transport {
                kind: mlflow_archive::error::TransportKind::Tls,
                ..
            }
        ),
        "an untrusted certificate is a TLS failure, not retried: {text}"
    );

    let trusted = client(
        &tls.uri,
        Env {
            cert_path: Some(tls.ca.display().to_string()),
            ..Env::default()
        },
    );
    assert_eq!(trusted.get_experiment("0").await.unwrap().name, "Default");

    let insecure = client(
        &tls.uri,
        Env {
            insecure_tls: Some("true".into()),
            ..Env::default()
        },
    );
    assert_eq!(insecure.get_experiment("0").await.unwrap().name, "Default");

    let bad = TrackingConfig::resolve(
        Some(&tls.uri),
        &Env {
            cert_path: Some("/nonexistent/ca.pem".into()),
            ..Env::default()
        },
    )
    .unwrap();
    let e = Client::new(bad).unwrap_err().to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}
