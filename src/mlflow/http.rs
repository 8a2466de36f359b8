//! The client core: one place that sends a request, applies credentials, retries transient
//! failures and turns answers into values or [`Error`]s that name the request and the object.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RANGE, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::config::{Auth, TrackingConfig};
use super::json;
use super::retry::{Backoff, Idempotency, RetryConfig, is_transient_status, parse_retry_after};
use crate::error::{ApiError, Error, Result, TransportKind};

/// The largest JSON answer read into memory (one page of a listing or of a metric history).
pub const MAX_JSON_ANSWER: usize = 512 << 20;

/// Builds a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    config: TrackingConfig,
    retry: RetryConfig,
    timeout: Duration,
    answer_timeout: Duration,
    connect_timeout: Duration,
    reuse_connections: bool,
    page_size: Option<u32>,
}

/// The default of [`ClientBuilder::answer_timeout`].
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// Retries of a request that got no answer at all within the answer timeout: each costs a whole
/// timeout, and a server that holds connections without answering rarely recovers in minutes.
const NO_ANSWER_RETRIES: u32 = 2;

impl ClientBuilder {
    /// Starts from a server configuration. Defaults: [`RetryConfig::default`], 60 s for an
    /// answer to begin and between two chunks of it ([`ClientBuilder::answer_timeout`]), 300 s
    /// for any one read of an upload's connection, 10 s to connect, pooled connections.
    pub fn new(config: TrackingConfig) -> Self {
        ClientBuilder {
            config,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(300),
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            reuse_connections: true,
            page_size: None,
        }
    }

    /// Sets the page size of every paged listing (default: each endpoint's own, 100 to 10 000).
    /// Small pages are for tests of paging.
    pub fn page_size(mut self, size: u32) -> Self {
        self.page_size = Some(size.max(1));
        self
    }

    /// Sets the retry policy.
    pub fn retry(mut self, retry: RetryConfig) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the limit for one read on a connection to make progress (default 300 s). It is the
    /// backstop for streamed uploads, whose answer comes only after the whole body was sent.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how long an answer may take to begin (its status line and headers), and how long
    /// any answer body (a JSON page, a download) may pause between two chunks, before the try
    /// is given up and retried (default 60 s; the CLI reads `MLFLOW_HTTP_REQUEST_TIMEOUT`). It
    /// is per chunk, not per request: a large download may take as long as it needs while bytes
    /// keep coming. A request that got no answer at all is retried at most twice.
    pub fn answer_timeout(mut self, timeout: Duration) -> Self {
        self.answer_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Sets the time allowed to open a connection (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Whether connections are kept alive and reused (default true).
    pub fn reuse_connections(mut self, reuse: bool) -> Self {
        self.reuse_connections = reuse;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when the HTTP client cannot be built (an unreadable
    /// or invalid certificate file).
    pub fn build(self) -> Result<Client> {
        ensure_crypto_provider();
        let mut b = reqwest::Client::builder()
            .user_agent(concat!("mlflow-archive/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.connect_timeout)
            .read_timeout(self.timeout)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::limited(5));
        if !self.reuse_connections {
            b = b.pool_max_idle_per_host(0);
        }
        if self.config.insecure_tls {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        if let Some(path) = &self.config.ca_cert {
            let pem = std::fs::read(path).map_err(|e| {
                Error::Config(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH {}: {e}",
                    path.display()
                ))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                Error::Config(format!(
                    "MLFLOW_TRACKING_SERVER_CERT_PATH {}: not a PEM certificate file: {e}",
                    path.display()
                ))
            })?;
            for c in certs {
                b = b.add_root_certificate(c);
            }
        }
        let http = b.build().map_err(|e| {
            Error::Config(format!(
                "cannot set up the HTTP client: {}",
                e.without_url()
            ))
        })?;
        let auth = match &self.config.auth {
            Auth::None => None,
            Auth::Bearer(t) => Some(secret_header(&format!("Bearer {}", t.expose()))?),
            Auth::Basic { username, password } => {
                use base64::Engine as _;
                let raw = format!("{username}:{}", password.expose());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                Some(secret_header(&format!("Basic {enc}"))?)
            }
        };
        Ok(Client {
            inner: Arc::new(Inner {
                server: self.config.display_uri(),
                config: self.config,
                http,
                auth,
                retry: self.retry,
                answer_timeout: self.answer_timeout,
                reached: AtomicBool::new(false),
                page_size: self.page_size,
            }),
        })
    }
}

fn secret_header(v: &str) -> Result<HeaderValue> {
    let mut h = HeaderValue::from_str(v).map_err(|_| {
        Error::Config(
            "the credentials contain characters that cannot be sent in an HTTP header".into(),
        )
    })?;
    h.set_sensitive(true);
    Ok(h)
}

fn ensure_crypto_provider() {
    // reqwest is built without a default TLS provider (to avoid compiling aws-lc); ring is ours.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

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
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) config: TrackingConfig,
    pub(crate) server: String,
    http: reqwest::Client,
    auth: Option<HeaderValue>,
    pub(crate) retry: RetryConfig,
    pub(crate) answer_timeout: Duration,
    /// Set once any request got an answer: until then a refused connection more likely means a
    /// wrong address than a restarting server, and is retried only twice.
    reached: AtomicBool,
    page_size: Option<u32>,
}

/// Retries of a refused connection before the server was ever reached.
const RETRIES_BEFORE_FIRST_CONTACT: u32 = 2;

/// A request body.
pub(crate) enum Body<'a> {
    None,
    Json(Vec<u8>),
    Bytes(&'a Bytes),
}

/// Whether the caller needs the answer's body, or only its success status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Needed,
    Ignored,
}

/// An answer body that did not arrive whole.
pub(crate) enum BodyFail {
    /// The connection broke or stalled in the middle of it.
    Cut(Cut),
    /// Anything else (an answer too large).
    Other(Error),
}

/// Where and how an answer was cut.
#[derive(Debug, Clone)]
pub(crate) struct Cut {
    /// Bytes received before the cut.
    pub(crate) after: u64,
    pub(crate) kind: TransportKind,
    pub(crate) cause: String,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer was cut after {} bytes: {}",
            self.after, self.cause
        )
    }
}

/// The retries of one operation (a request, a body read that starts over, a resumed download):
/// one backoff for all its failures, and at most [`NO_ANSWER_RETRIES`] tries that got no answer.
#[derive(Debug)]
pub(crate) struct Retries {
    pub(crate) backoff: Backoff,
    timeouts: u32,
}

impl Retries {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        Retries {
            backoff: Backoff::new(config),
            timeouts: 0,
        }
    }

    /// The wait before trying again after a failure of `kind`, or `None` when the retries are
    /// used up.
    pub(crate) fn after(
        &mut self,
        kind: TransportKind,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if kind == TransportKind::Timeout {
            if self.timeouts >= NO_ANSWER_RETRIES {
                return None;
            }
            self.timeouts += 1;
        }
        self.backoff.next_delay(retry_after)
    }

    /// The final cause, saying how many tries it took.
    pub(crate) fn give_up(&self, cause: String) -> String {
        match self.backoff.attempts() {
            0 => cause,
            n => format!("{cause} ({} tries)", n + 1),
        }
    }
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

    /// Sends a JSON POST/PATCH/DELETE to `endpoint` and decodes the JSON answer.
    pub(crate) async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
        call: &str,
        idem: Idempotency,
    ) -> Result<T> {
        let bytes = encode(body, call)?;
        let answer = self
            .fetch(
                method,
                self.api_url(endpoint),
                Body::Json(bytes),
                call,
                idem,
                Answer::Needed,
            )
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
        let bytes = encode(body, call)?;
        self.fetch(
            method,
            self.api_url(endpoint),
            Body::Json(bytes),
            call,
            idem,
            Answer::Ignored,
        )
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

    /// Sends a request and reads its whole (JSON-sized) answer, retrying transient failures as
    /// `idem` allows: failures before the answer, error statuses, and answers cut or stalled in
    /// the middle of their body (a safe request is sent again; an unsafe one whose success
    /// status arrived is done, and its lost answer makes the outcome [`Error::Ambiguous`] when
    /// the caller needs it).
    async fn fetch(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
        call: &str,
        idem: Idempotency,
        answer: Answer,
    ) -> Result<Vec<u8>> {
        let mut retries = Retries::new(&self.inner.retry);
        loop {
            let resp = self
                .send_with(
                    &mut retries,
                    method.clone(),
                    url.clone(),
                    &body,
                    None,
                    call,
                    idem,
                )
                .await?;
            let cut = match self.read_body(resp, MAX_JSON_ANSWER, call).await {
                Ok(bytes) => return Ok(bytes),
                Err(BodyFail::Other(e)) => return Err(e),
                Err(BodyFail::Cut(cut)) => cut,
            };
            if answer == Answer::Ignored {
                // The status said the server did it; the rest of the answer is not needed.
                return Ok(Vec::new());
            }
            let cause = cut.to_string();
            if idem == Idempotency::Unsafe {
                return Err(Error::Ambiguous {
                    call: call.to_string(),
                    server: self.inner.server.clone(),
                    cause,
                });
            }
            if let Some(d) = retries.after(cut.kind, None) {
                tracing_retry(call, &cause, d);
                tokio::time::sleep(d).await;
                continue;
            }
            return Err(self.transport_error(call, cut.kind, retries.give_up(cause)));
        }
    }

    /// Sends a request, retrying transient failures as `idem` allows, and returns a successful
    /// answer (status 2xx) with its body unread.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
        call: &str,
        idem: Idempotency,
    ) -> Result<Response> {
        let mut retries = Retries::new(&self.inner.retry);
        self.send_with(&mut retries, method, url, &body, None, call, idem)
            .await
    }

    /// [`Client::send`], counting against the retries of a larger operation (a body read that
    /// started over, a download resumed from byte `range_from`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_with(
        &self,
        retries: &mut Retries,
        method: Method,
        url: Url,
        body: &Body<'_>,
        range_from: Option<u64>,
        call: &str,
        idem: Idempotency,
    ) -> Result<Response> {
        loop {
            let req = self.authorized(method.clone(), url.clone());
            let req = match body {
                Body::None => req,
                Body::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b.clone()),
                Body::Bytes(b) => req.body((*b).clone()),
            };
            let req = match range_from {
                Some(from) => req.header(RANGE, format!("bytes={from}-")),
                None => req,
            };
            let started = std::time::Instant::now();
            let sent = match tokio::time::timeout(self.inner.answer_timeout, req.send()).await {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err((TransportKind::Timeout, self.no_answer())),
            };
            trace_request(
                &method,
                &url,
                sent.as_ref().ok().map(|r| r.status().as_u16()),
                started,
            );
            if sent.is_ok() {
                self.inner.reached.store(true, Ordering::Relaxed);
            }
            match sent {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    // 429 and 503 say the server did not take the request: safe to send again.
                    let may_retry = is_transient_status(status)
                        && (idem == Idempotency::Safe || status == 429 || status == 503);
                    let err = match self.api_error(resp, call).await {
                        Ok(err) => err,
                        // The error answer itself was cut: which error it was is unknown (a
                        // "not found" reads as a bare 404), so a safe request is sent again.
                        Err(cut) if idem == Idempotency::Safe => {
                            if let Some(d) = retries.after(cut.kind, None) {
                                tracing_retry(call, &cut.to_string(), d);
                                tokio::time::sleep(d).await;
                                continue;
                            }
                            let cause = retries.give_up(cut.to_string());
                            return Err(self.transport_error(call, cut.kind, cause));
                        }
                        Err(cut) => Error::Api(Box::new(api_error_from(
                            call,
                            &self.inner.server,
                            reqwest::StatusCode::from_u16(status)
                                .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
                            format!("({cut})").as_bytes(),
                        ))),
                    };
                    if may_retry && let Some(d) = retries.backoff.next_delay(retry_after) {
                        tracing_retry(call, &err.to_string(), d);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(err);
                }
                Err((kind, cause)) => {
                    let never_reached = kind == TransportKind::Connect
                        && !self.inner.reached.load(Ordering::Relaxed)
                        && retries.backoff.attempts() >= RETRIES_BEFORE_FIRST_CONTACT;
                    let may_retry = kind != TransportKind::Tls
                        && !never_reached
                        && (idem == Idempotency::Safe || kind == TransportKind::Connect);
                    if may_retry && let Some(d) = retries.after(kind, None) {
                        tracing_retry(call, &cause, d);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    let cause = retries.give_up(cause);
                    if idem == Idempotency::Unsafe && kind != TransportKind::Connect {
                        return Err(Error::Ambiguous {
                            call: call.to_string(),
                            server: self.inner.server.clone(),
                            cause,
                        });
                    }
                    return Err(self.transport_error(call, kind, cause));
                }
            }
        }
    }

    /// The cause of a try that got no answer within the answer timeout.
    pub(crate) fn no_answer(&self) -> String {
        format!(
            "no answer within {} s",
            self.inner.answer_timeout.as_secs_f64()
        )
    }

    pub(crate) fn transport_error(&self, call: &str, kind: TransportKind, cause: String) -> Error {
        Error::Transport {
            call: call.to_string(),
            server: self.inner.server.clone(),
            kind,
            cause,
        }
    }

    /// A request with the credentials applied.
    pub(crate) fn authorized(&self, method: Method, url: Url) -> reqwest::RequestBuilder {
        let req = self.inner.http.request(method, url);
        match &self.inner.auth {
            Some(a) => req.header(AUTHORIZATION, a.clone()),
            None => req,
        }
    }

    /// Passes a successful answer through and turns any other into an [`Error::Api`].
    pub(crate) async fn check_status(&self, resp: Response, call: &str) -> Result<Response> {
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(match self.api_error(resp, call).await {
                Ok(err) => err,
                Err(cut) => self.transport_error(call, cut.kind, cut.to_string()),
            })
        }
    }

    /// Runs a create that is not safe to repeat blindly. When its outcome is unknown (the answer
    /// was lost, or the server failed in a way that may come after it acted), `lookup` is asked
    /// whether the object exists now, and only if it does not is the create sent again. Without
    /// a `lookup` (nothing identifies the object), an unknown outcome is returned as
    /// [`Error::Ambiguous`] and nothing is repeated.
    pub(crate) async fn create_reconciled<T, C, CF, L, LF>(
        &self,
        call: &str,
        create: C,
        lookup: Option<L>,
    ) -> Result<T>
    where
        C: Fn() -> CF,
        CF: Future<Output = Result<T>>,
        L: Fn() -> LF,
        LF: Future<Output = Result<Option<T>>>,
    {
        let mut backoff = Backoff::new(&self.inner.retry);
        loop {
            match create().await {
                Ok(v) => return Ok(v),
                Err(e) if outcome_unknown(&e) => {
                    let Some(lookup) = &lookup else {
                        return Err(match e {
                            Error::Ambiguous { .. } => e,
                            other => Error::Ambiguous {
                                call: call.to_string(),
                                server: self.inner.server.clone(),
                                cause: other.to_string(),
                            },
                        });
                    };
                    if let Some(v) = lookup().await? {
                        return Ok(v);
                    }
                    match backoff.next_delay(None) {
                        Some(d) => {
                            tracing_retry(call, &e.to_string(), d);
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Decodes a JSON answer.
    pub(crate) fn parse<T: DeserializeOwned>(&self, bytes: &[u8], call: &str) -> Result<T> {
        if looks_like_html(bytes) {
            return Err(self.protocol(
                call,
                "the server answered an HTML page, not the MLflow REST API: is the URI the tracking server's base address?".into(),
            ));
        }
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            bytes
        };
        json::parse(body)
            .map_err(|e| self.protocol(call, format!("malformed JSON ({e}): {}", excerpt(bytes))))
    }

    /// Reads a whole answer body of at most `limit` bytes; each chunk must come within the
    /// answer timeout.
    async fn read_body(
        &self,
        resp: Response,
        limit: usize,
        call: &str,
    ) -> std::result::Result<Vec<u8>, BodyFail> {
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(self.inner.answer_timeout, stream.next()).await {
                Ok(None) => return Ok(out),
                Ok(Some(Ok(chunk))) => chunk,
                Ok(Some(Err(e))) => {
                    let (kind, cause) = classify(&e);
                    return Err(BodyFail::Cut(Cut {
                        after: out.len() as u64,
                        kind,
                        cause,
                    }));
                }
                Err(_) => {
                    return Err(BodyFail::Cut(Cut {
                        after: out.len() as u64,
                        kind: TransportKind::Timeout,
                        cause: format!(
                            "it stalled: no byte within {} s",
                            self.inner.answer_timeout.as_secs_f64()
                        ),
                    }));
                }
            };
            if out.len() + chunk.len() > limit {
                return Err(BodyFail::Other(
                    self.protocol(call, format!("answer larger than {limit} bytes")),
                ));
            }
            out.extend_from_slice(&chunk);
        }
    }

    pub(crate) fn protocol(&self, call: &str, detail: String) -> Error {
        Error::Protocol {
            call: call.to_string(),
            server: self.inner.server.clone(),
            detail,
        }
    }

    pub(crate) fn transport(&self, call: &str, e: &reqwest::Error) -> Error {
        let (kind, cause) = classify(e);
        self.transport_error(call, kind, cause)
    }

    /// The typed error of an error answer; `Err` when its body was cut or stalled.
    async fn api_error(&self, resp: Response, call: &str) -> std::result::Result<Error, Cut> {
        let status = resp.status();
        let bytes = match self.read_body(resp, 64 << 10, call).await {
            Ok(bytes) => bytes,
            Err(BodyFail::Cut(cut)) => return Err(cut),
            // Longer than any error body: what was read is not kept; the status says enough.
            Err(BodyFail::Other(_)) => Vec::new(),
        };
        Ok(Error::Api(Box::new(api_error_from(
            call,
            &self.inner.server,
            status,
            &bytes,
        ))))
    }
}

/// Builds the typed error for an error answer.
fn api_error_from(call: &str, server: &str, status: StatusCode, body: &[u8]) -> ApiError {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        error_code: String,
        #[serde(default)]
        message: String,
    }
    let (error_code, message) = match serde_json::from_slice::<Body>(body) {
        Ok(b) if !b.error_code.is_empty() || !b.message.is_empty() => (b.error_code, b.message),
        _ if looks_like_html(body) => (
            String::new(),
            if status == StatusCode::NOT_FOUND {
                "the server answered an HTML page: this address does not serve the MLflow REST API (is the URI the tracking server's base address?)".into()
            } else {
                "the server answered an HTML page, not the MLflow REST API".into()
            },
        ),
        _ => (String::new(), excerpt(body)),
    };
    ApiError {
        call: call.to_string(),
        server: server.to_string(),
        status: status.as_u16(),
        error_code,
        message,
    }
}

/// True when a failed request may have taken effect on the server.
pub(crate) fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Ambiguous { .. } => true,
        Error::Transport { kind, .. } => {
            *kind != TransportKind::Connect && *kind != TransportKind::Tls
        }
        Error::Api(a) => matches!(a.status, 408 | 500 | 502 | 503 | 504),
        _ => false,
    }
}

fn looks_like_html(body: &[u8]) -> bool {
    let start: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    start.starts_with(b"<!doctype") || start.starts_with(b"<html") || start.starts_with(b"<head")
}

/// A short, single-line excerpt of a body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 300 {
        format!("{one_line}…")
    } else if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

/// Sorts a connection failure into a kind and a cause with no URL in it.
pub(crate) fn classify(e: &reqwest::Error) -> (TransportKind, String) {
    use std::error::Error as _;
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    // reqwest's own message names the URL; ours names the server instead.
    let first = parts.remove(0);
    let first = match first.find(" for url (") {
        Some(i) => first[..i].to_string(),
        None => first,
    };
    parts.insert(0, first);
    let cause = parts.join(": ");
    let lower = cause.to_ascii_lowercase();
    let kind =
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            TransportKind::Tls
        } else if e.is_connect() {
            TransportKind::Connect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Broken
        };
    (kind, cause)
}

fn set_query<Q: Serialize + ?Sized>(url: &mut Url, query: &Q, call: &str) -> Result<()> {
    let value = serde_json::to_value(query).map_err(|e| Error::Json {
        what: format!("{call}: encoding the query"),
        source: e,
    })?;
    let mut pairs = url.query_pairs_mut();
    if let serde_json::Value::Object(map) = value {
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
        method = %method,
        path = url.path(),
        status = %status.map_or_else(|| "failed".to_string(), |s| s.to_string()),
        ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
        "request"
    );
}

/// One `INFO` event per retry (message `retrying`): the call, the delay before it, and why.
pub(crate) fn tracing_retry(call: &str, why: &str, delay: Duration) {
    tracing::info!(call, delay = ?delay, cause = why, "retrying");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_typed_errors() {
        let e = api_error_from(
            "GET experiments/get (experiment '9')",
            "http://h:1",
            StatusCode::NOT_FOUND,
            br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=9 exists"}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "GET experiments/get (experiment '9') on http://h:1: RESOURCE_DOES_NOT_EXIST (HTTP 404): No Experiment with id=9 exists"
        );
        let e = api_error_from(
            "GET x",
            "http://h",
            StatusCode::NOT_FOUND,
            b"<!DOCTYPE html><html>",
        );
        assert!(
            e.to_string().contains("does not serve the MLflow REST API"),
            "{e}"
        );
        let e = api_error_from(
            "GET x",
            "http://h",
            StatusCode::UNAUTHORIZED,
            b"You are not authenticated.",
        );
        assert!(e.to_string().contains("MLFLOW_TRACKING_USERNAME"), "{e}");
    }

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
    fn outcome_is_unknown_only_when_the_server_may_have_acted() {
        let t = |kind| Error::Transport {
            call: "c".into(),
            server: "s".into(),
            kind,
            cause: "x".into(),
        };
        assert!(!outcome_unknown(&t(TransportKind::Connect)));
        assert!(outcome_unknown(&t(TransportKind::Broken)));
        assert!(outcome_unknown(&t(TransportKind::Timeout)));
    }
}
