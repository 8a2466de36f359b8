//! Helpers shared by the integration tests: real MLflow servers, a fault-injecting proxy, and
//! unique names.

pub mod databricks;
pub mod proxy;
pub mod server;
pub mod stores;

use std::sync::atomic::{AtomicU64, Ordering};

use mlflow_archive::mlflow::{Client, ClientBuilder, RetryConfig, TrackingConfig};

/// A name no other test (and no earlier run against the same server) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{prefix}-{}-{:x}-{}",
        std::process::id(),
        nanos & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A new experiment (named from `prefix`) with one run; returns the run.
pub async fn experiment_with_run(c: &Client, prefix: &str) -> mlflow_archive::mlflow::types::Run {
    let exp = c
        .create_experiment(&unique(prefix), None, &[])
        .await
        .unwrap();
    c.create_run(&mlflow_archive::mlflow::CreateRun {
        experiment_id: exp,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Every run (deleted ones too) of the experiment named `name`, which must exist.
pub async fn runs_of(c: &Client, name: &str) -> Vec<mlflow_archive::mlflow::types::Run> {
    use futures_util::TryStreamExt;
    let e = c
        .get_experiment_by_name(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no experiment {name:?} on {}", c.server()));
    c.search_runs(
        &[&e.experiment_id],
        None,
        mlflow_archive::mlflow::types::ViewType::All,
    )
    .try_collect()
    .await
    .unwrap()
}

/// The whole history of metric `key` of run `run`, every page.
pub async fn history(
    c: &Client,
    run: &str,
    key: &str,
) -> Vec<mlflow_archive::mlflow::types::Metric> {
    use futures_util::TryStreamExt;
    c.metric_history(run, key, None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .concat()
}

/// Runs the command line with `args` and asserts it succeeded; returns its output.
pub async fn run_ok(args: &[&str]) -> std::process::Output {
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

/// A client for `uri` without credentials.
pub fn client(uri: &str) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(uri).unwrap())
        .build()
        .unwrap()
}

/// A client with quick retries (for fault tests).
pub fn quick_client(uri: &str, max_retries: u32) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(uri).unwrap())
        .retry(RetryConfig {
            max_retries,
            initial_backoff: std::time::Duration::from_millis(20),
            max_backoff: std::time::Duration::from_millis(200),
            max_retry_after: std::time::Duration::from_secs(5),
        })
        .build()
        .unwrap()
}

/// The shared source/destination pair, or return from the test when live tests skip.
#[macro_export]
macro_rules! live_pair {
    () => {
        match $crate::util::server::pair() {
            Some(p) => p,
            None => return,
        }
    };
}

/// The `mlflow-archive` binary with no tracking or logging variables inherited from the
/// environment.
pub fn cli() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("mlflow-archive").unwrap();
    for v in [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_TRACKING_TOKEN",
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_ARCHIVE_DEBUG",
        "RUST_LOG",
    ] {
        c.env_remove(v);
    }
    // Nor the developer's own store credentials.
    for v in server::STORE_VARIABLES {
        c.env_remove(v);
    }
    c
}

/// Runs a command to completion off the async runtime (so a proxy on the same runtime keeps
/// serving it).
pub async fn output(mut cmd: assert_cmd::Command) -> std::process::Output {
    tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap()
}
