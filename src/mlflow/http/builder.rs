//! [`ClientBuilder`]: a client's settings, its HTTP client and its credentials.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use reqwest::header::HeaderValue;

use super::limit::{Concurrency, Limiter};
use super::{Client, Credentials, Inner};
use crate::error::{Error, Result};
use crate::mlflow::config::{Auth, TrackingConfig};
use crate::mlflow::retry::RetryConfig;
use crate::mlflow::store::{Side, StoreSettings, Stores};

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
    stores: Option<StoreSettings>,
    concurrency: Concurrency,
}

/// The default of [`ClientBuilder::answer_timeout`].
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

impl ClientBuilder {
    /// Starts from a server configuration. Defaults: [`RetryConfig::default`], 60 s for an
    /// answer to begin and between two chunks of it ([`ClientBuilder::answer_timeout`]), 300 s
    /// for any one read of an upload's connection, 10 s to connect, pooled connections, up to
    /// 32 requests in flight as the server's round trips allow ([`Concurrency::default`]).
    pub fn new(config: TrackingConfig) -> Self {
        ClientBuilder {
            config,
            retry: RetryConfig::default(),
            timeout: Duration::from_secs(300),
            answer_timeout: DEFAULT_ANSWER_TIMEOUT,
            connect_timeout: Duration::from_secs(10),
            reuse_connections: true,
            page_size: None,
            stores: None,
            concurrency: Concurrency::default(),
        }
    }

    /// Sets how many requests the client and its clones send at once (default
    /// `Concurrency::Adaptive { max: 32 }`; see [`Concurrency`]).
    pub fn concurrency(mut self, concurrency: Concurrency) -> Self {
        self.concurrency = concurrency;
        self
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

    /// Sets the credentials and endpoints of the artifact stores this client reads and writes
    /// itself (runs under `s3://`, `gs://`, `wasbs://`, ... roots). Default: the plain
    /// variables of the process environment when the client is built
    /// ([`StoreSettings::from_process`] with [`Side::Plain`](crate::mlflow::store::Side::Plain)).
    pub fn store_settings(mut self, settings: StoreSettings) -> Self {
        self.stores = Some(settings);
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
            Auth::None => Credentials::None,
            Auth::Bearer(t) => {
                Credentials::Fixed(secret_header(&format!("Bearer {}", t.expose()))?)
            }
            Auth::Basic { username, password } => {
                use base64::Engine as _;
                let raw = format!("{username}:{}", password.expose());
                let enc = base64::engine::general_purpose::STANDARD.encode(raw);
                Credentials::Fixed(secret_header(&format!("Basic {enc}"))?)
            }
            Auth::OAuthM2M {
                client_id,
                client_secret,
            } => Credentials::OAuth(Box::new(
                crate::mlflow::databricks::oauth::TokenSource::new(
                    self.config.base.clone(),
                    client_id.clone(),
                    client_secret.clone(),
                ),
            )),
        };
        let stores = Stores::new(
            self.stores
                .unwrap_or_else(|| StoreSettings::from_process(Side::Plain)),
            self.retry.clone(),
            self.answer_timeout,
            self.connect_timeout,
        );
        Ok(Client {
            workspace: None,
            inner: Arc::new(Inner {
                stores,
                server: self.config.display_uri(),
                config: self.config,
                http,
                auth,
                retry: self.retry,
                answer_timeout: self.answer_timeout,
                reached: AtomicBool::new(false),
                requests: std::sync::atomic::AtomicU64::new(0),
                page_size: self.page_size,
                limit: Limiter::new(self.concurrency),
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
