//! The client core: one place that sends a request, applies credentials, retries transient
//! failures and turns answers into values or [`Error`]s that name the request and the object.
//!
//! Its rooms: `builder` (settings and credentials), `send` (sending and retries), `limit` (how
//! many requests are in flight at once), `body` (reading answer bodies, cuts, JSON), `errors`
//! (typed errors of answers and connections) and `trace` (diagnostics).

mod body;
mod builder;
mod errors;
mod gate;
pub(crate) mod limit;
mod send;
mod trace;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::HeaderValue;
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::TrackingConfig;
use super::retry::{Idempotency, RetryConfig};
use crate::error::{Error, Result};

pub(crate) use body::Cut;
pub use builder::ClientBuilder;
pub(crate) use errors::{api_error_from, classify};
#[cfg(test)]
pub(crate) use gate::current_priority;
pub use gate::with_priority;
pub use limit::{Concurrency, ConcurrencySummary};
pub(crate) use send::Retries;
pub(crate) use trace::{trace_request, tracing_retry};

/// The largest JSON answer read into memory (one page of a listing or of a metric history).
pub const MAX_JSON_ANSWER: usize = 512 << 20;

/// An async MLflow REST client. Cheap to clone; clones share connections.
///
/// # Errors
///
/// Every call fails the same ways, and its error names the request and the object:
/// - [`Error::Api`](crate::Error::Api): the server refused the request (an MLflow
///   `{error_code, message}` body or an HTTP status); [`Error::is_not_found`](crate::Error::is_not_found)
///   tells a missing object;
/// - [`Error::Transport`](crate::Error::Transport): the server could not be reached, or stopped
///   answering, after the retries the [`RetryConfig`](crate::mlflow::RetryConfig) allows;
/// - [`Error::Protocol`](crate::Error::Protocol): the answer is not the MLflow API (an HTML page,
///   malformed JSON, a body of the wrong size);
/// - [`Error::Ambiguous`](crate::Error::Ambiguous): a request that is not safe to send twice (a
///   create) may have taken effect, and a lookup could not settle it.
#[derive(Debug, Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
    /// The MLflow workspace every request names (header `X-MLFLOW-WORKSPACE`), on a server
    /// with workspaces; `None`: no header (the server's default workspace).
    pub(crate) workspace: Option<Arc<str>>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: TrackingConfig,
    pub(crate) server: String,
    pub(crate) http: reqwest::Client,
    auth: Credentials,
    pub(crate) retry: RetryConfig,
    pub(crate) answer_timeout: Duration,
    /// Set once any request got an answer: until then a refused connection more likely means a
    /// wrong address than a restarting server, and is retried only twice.
    reached: AtomicBool,
    /// Requests sent so far (every attempt, retries too), for reports of what a job cost.
    pub(crate) requests: std::sync::atomic::AtomicU64,
    page_size: Option<u32>,
    /// The artifact stores reached directly (not through the server's proxy).
    pub(crate) stores: crate::mlflow::store::Stores,
    /// The gate of requests in flight to the server, shared by every clone.
    pub(crate) limit: limit::Limiter,
}

/// The credentials a request carries.
#[derive(Debug)]
pub(crate) enum Credentials {
    None,
    /// The same header every time (a token, basic credentials).
    Fixed(HeaderValue),
    /// Short-lived tokens asked for as needed (Databricks OAuth).
    OAuth(Box<crate::mlflow::databricks::oauth::TokenSource>),
}

/// A request body.
pub(crate) enum Body<'a> {
    None,
    Json(Vec<u8>),
    Bytes(&'a Bytes),
    /// Bytes sent with their own headers (content type, encoding, routing).
    Typed(&'a Bytes, &'a reqwest::header::HeaderMap),
}

/// Whether the caller needs the answer's body, or only its success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Needed,
    Ignored,
}

fn encode<B: Serialize>(body: &B, call: &str) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| Error::Json {
        what: format!("{call}: encoding the request"),
        source: e,
    })
}

impl Client {
    /// A client for `config` with default settings.
    ///
    /// # Errors
    ///
    /// As [`ClientBuilder::build`].
    pub fn new(config: TrackingConfig) -> Result<Self> {
        ClientBuilder::new(config).build()
    }

    /// The server's address, without credentials.
    pub fn server(&self) -> &str {
        &self.inner.server
    }

    /// The HTTP requests this client (and its clones) sent so far, each retry counted; requests
    /// of artifact stores reached directly are not among them.
    pub fn requests_sent(&self) -> u64 {
        self.inner.requests.load(Ordering::Relaxed)
    }

    /// The same client, naming MLflow workspace `name` in every request (a server started with
    /// `--enable-workspaces`; a server without workspaces refuses every request that names one).
    /// Clones share connections.
    pub fn in_workspace(&self, name: &str) -> Client {
        Client {
            inner: Arc::clone(&self.inner),
            workspace: Some(Arc::from(name)),
        }
    }

    /// The MLflow workspace this client names, if any.
    pub fn workspace(&self) -> Option<&str> {
        self.workspace.as_deref()
    }

    /// The page size for a listing whose own default is `default`.
    pub(crate) fn page(&self, default: u32) -> u32 {
        self.inner.page_size.unwrap_or(default)
    }

    /// The server configuration.
    pub fn config(&self) -> &TrackingConfig {
        &self.inner.config
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        // `path` is one of our own relative API paths, always a valid relative reference.
        self.inner
            .config
            .base
            .join(path)
            .unwrap_or_else(|_| self.inner.config.base.clone())
    }

    /// `api/2.0/mlflow/<endpoint>`.
    pub(crate) fn api_url(&self, endpoint: &str) -> Url {
        self.url(&format!("api/2.0/mlflow/{endpoint}"))
    }

    /// `api/3.0/mlflow/<endpoint>` (MLflow 3's own endpoints: datasets, traces, ...).
    pub(crate) fn api3_url(&self, endpoint: &str) -> Url {
        self.url(&format!("api/3.0/mlflow/{endpoint}"))
    }

    /// Sends a JSON POST/PATCH/DELETE to `endpoint` and decodes the JSON answer.
    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
        call: &str,
        idem: Idempotency,
    ) -> Result<T> {
        self.call_url(method, self.api_url(endpoint), body, call, idem)
            .await
    }

    /// [`Client::call`] to a whole URL (an endpoint outside `api/2.0/mlflow/`).
    pub(crate) async fn call_url<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: &B,
        call: &str,
        idem: Idempotency,
    ) -> Result<T> {
        let bytes = encode(body, call)?;
        let answer = self
            .fetch(method, url, Body::Json(bytes), call, idem, Answer::Needed)
            .await?;
        self.parse(&answer, call)
    }

    /// Sends a JSON POST/PATCH/DELETE whose answer carries nothing the caller needs (`{}`): a
    /// success status is enough, so an answer cut after its status still counts as done, even
    /// for a request that is not safe to repeat.
    pub(crate) async fn call_unit<B: Serialize>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
        call: &str,
        idem: Idempotency,
    ) -> Result<()> {
        self.call_unit_url(method, self.api_url(endpoint), body, call, idem)
            .await
    }

    /// [`Client::call_unit`] to a whole URL (an endpoint outside `api/2.0/mlflow/`).
    pub(crate) async fn call_unit_url<B: Serialize>(
        &self,
        method: Method,
        url: Url,
        body: &B,
        call: &str,
        idem: Idempotency,
    ) -> Result<()> {
        let bytes = encode(body, call)?;
        self.fetch(method, url, Body::Json(bytes), call, idem, Answer::Ignored)
            .await
            .map(drop)
    }

    /// Sends a GET to `endpoint` with `query` and decodes the JSON answer.
    pub(crate) async fn get<Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &Q,
        call: &str,
    ) -> Result<T> {
        let mut url = self.api_url(endpoint);
        set_query(&mut url, query, call)?;
        self.get_url(url, call).await
    }

    /// Sends a GET to `url` and decodes the JSON answer.
    pub(crate) async fn get_url<T: DeserializeOwned>(&self, url: Url, call: &str) -> Result<T> {
        let answer = self
            .fetch(
                Method::GET,
                url,
                Body::None,
                call,
                Idempotency::Safe,
                Answer::Needed,
            )
            .await?;
        self.parse(&answer, call)
    }
}

/// Adds `query`'s fields to `url` (arrays as repeated parameters, nulls left out). `query` is a
/// struct or map, or a list of `(name, value)` pairs (sent in their order).
pub(crate) fn set_query<Q: Serialize + ?Sized>(url: &mut Url, query: &Q, call: &str) -> Result<()> {
    let value = serde_json::to_value(query).map_err(|e| Error::Json {
        what: format!("{call}: encoding the query"),
        source: e,
    })?;
    let mut pairs = url.query_pairs_mut();
    if let serde_json::Value::Array(list) = value {
        for pair in list {
            match pair {
                serde_json::Value::Array(kv) if kv.len() == 2 => {
                    let (k, v) = (&kv[0], &kv[1]);
                    let text = |x: &serde_json::Value| match x {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if !v.is_null() {
                        pairs.append_pair(&text(k), &text(v));
                    }
                }
                other => {
                    return Err(Error::Usage(format!(
                        "{call}: a query list holds {other}, not a (name, value) pair"
                    )));
                }
            }
        }
    } else if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            match v {
                serde_json::Value::Null => {}
                serde_json::Value::String(s) => {
                    pairs.append_pair(&k, &s);
                }
                serde_json::Value::Array(items) => {
                    for i in items {
                        match i {
                            serde_json::Value::String(s) => pairs.append_pair(&k, &s),
                            other => pairs.append_pair(&k, &other.to_string()),
                        };
                    }
                }
                other => {
                    pairs.append_pair(&k, &other.to_string());
                }
            }
        }
    }
    drop(pairs);
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_repeat_arrays_and_skip_nulls() {
        #[derive(Serialize)]
        struct Q<'a> {
            run_ids: Vec<&'a str>,
            key: &'a str,
            max_results: Option<u32>,
            page_token: Option<&'a str>,
        }
        let mut u = Url::parse("http://h/api/").unwrap();
        set_query(
            &mut u,
            &Q {
                run_ids: vec!["a", "b"],
                key: "x y/z",
                max_results: Some(5),
                page_token: None,
            },
            "t",
        )
        .unwrap();
        assert_eq!(
            u.query(),
            Some("key=x+y%2Fz&max_results=5&run_ids=a&run_ids=b")
        );
    }

    #[test]
    fn queries_as_pairs_keep_their_order() {
        // A list of pairs was read as no query at all: `artifacts/list` of a dbfs: root went
        // without its `run_id`.
        let mut u = Url::parse("http://h/api/").unwrap();
        set_query(&mut u, &vec![("run_id", "r1"), ("path", "a b")], "t").unwrap();
        assert_eq!(u.query(), Some("run_id=r1&path=a+b"));
    }
}
