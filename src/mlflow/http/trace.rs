//! Diagnostics: one event per request and per retry, under the target they always had.

use std::time::Duration;

use reqwest::Method;
use url::Url;

/// The target of these events (the module they were written in before it had rooms), which
/// `RUST_LOG` and `MLFLOW_ARCHIVE_DEBUG` filters name.
const TARGET: &str = "mlflow_archive::mlflow::http";

/// One `DEBUG` event per request (target `mlflow_archive::mlflow::http`, message `request`):
/// method, path without the query, status (or `failed`), milliseconds to the answer's head. Never
/// the query or headers, which may carry names or credentials.
pub(crate) fn trace_request(
    method: &Method,
    url: &Url,
    status: Option<u16>,
    started: std::time::Instant,
) {
    tracing::debug!(
        target: TARGET,
        method = %method,
        path = url.path(),
        status = %status.map_or_else(|| "failed".to_string(), |s| s.to_string()),
        ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
        "request"
    );
}

/// One `INFO` event per retry (message `retrying`): the call, the delay before it, and why.
pub(crate) fn tracing_retry(call: &str, why: &str, delay: Duration) {
    tracing::info!(target: TARGET, call, delay = ?delay, cause = why, "retrying");
}
