//! Artifact stores the client reads and writes itself, as MLflow's own client does when a server
//! runs with `--no-serve-artifacts --default-artifact-root s3://…` (or `gs://`, `wasbs://`,
//! `abfss://`, a shared path): listing, streaming downloads and streaming uploads through the
//! `object_store` crate, one store client per bucket or container, with the credentials of one
//! side ([`StoreSettings`]).
//!
//! Transient failures (HTTP 5xx, throttling, broken connections) are retried by the store client
//! with the tracking client's retry count; a download cut midway resumes with a range request for
//! the same object version (its ETag), an upload is sent in parts that are each retried whole.

mod build;
pub mod location;
pub mod settings;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::stream::{Stream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};

pub use location::{DbfsOwner, Location, StoreId};
pub use settings::{Side, StoreSettings};

use crate::error::{Error, Result, StoreFailure};
use crate::mlflow::api::artifacts::{ArtifactDownload, ArtifactFile, exact_size, walk_tree};
use crate::mlflow::retry::RetryConfig;

/// Files up to this size are uploaded in one request; larger ones in parts of this size (S3
/// needs at least 5 MiB per part but the last).
const PART: usize = 8 * 1024 * 1024;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 2;

/// The store clients of one side, built on first use per bucket or container.
#[derive(Debug)]
pub struct Stores {
    settings: StoreSettings,
    retry: RetryConfig,
    read_timeout: Duration,
    connect_timeout: Duration,
    built: Mutex<HashMap<StoreId, Arc<dyn ObjectStore>>>,
}

/// A store and the key prefix of one artifact root in it.
#[derive(Clone)]
pub(crate) struct Rooted {
    store: Arc<dyn ObjectStore>,
    id: StoreId,
    prefix: String,
    /// The root's URI, for messages.
    uri: String,
    /// Tries of a request whose answer was cut (the store client retries failed statuses and
    /// connections itself, but not an answer body that breaks).
    retry: RetryConfig,
}

impl Stores {
    /// Store clients with `settings`, retrying as `retry` says, giving up on a read that makes
    /// no progress for `read_timeout`.
    pub fn new(
        settings: StoreSettings,
        retry: RetryConfig,
        read_timeout: Duration,
        connect_timeout: Duration,
    ) -> Self {
        Stores {
            settings,
            retry,
            read_timeout,
            connect_timeout,
            built: Mutex::new(HashMap::new()),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    pub(crate) fn root(&self, id: &StoreId, prefix: &str, uri: &str) -> Result<Rooted> {
        let mut built = self
            .built
            .lock()
            .map_err(|_| Error::Internal("the store table was poisoned".into()))?;
        let store = match built.get(id) {
            Some(s) => s.clone(),
            None => {
                let s = build::store(id, &self.settings, &self.options())
                    .map_err(|e| e.about(format!("artifact location {uri}")))?;
                built.insert(id.clone(), s.clone());
                s
            }
        };
        Ok(Rooted {
            store,
            id: id.clone(),
            prefix: prefix.to_string(),
            uri: uri.trim_end_matches('/').to_string(),
            retry: self.retry.clone(),
        })
    }

    /// A store client for one root with credentials of its own (temporary ones a server handed
    /// out, replacing every credential variable of `kind`), built for this root alone and not
    /// kept: endpoints, regions and TLS settings are this side's.
    pub(crate) fn root_with_credentials(
        &self,
        id: &StoreId,
        prefix: &str,
        uri: &str,
        kind: &str,
        credentials: &[(&str, &crate::mlflow::config::Secret)],
    ) -> Result<Rooted> {
        let settings = self.settings.with_credentials(kind, credentials);
        let store = build::store(id, &settings, &self.options())
            .map_err(|e| e.about(format!("artifact location {uri}")))?;
        Ok(Rooted {
            store,
            id: id.clone(),
            prefix: prefix.to_string(),
            uri: uri.trim_end_matches('/').to_string(),
            retry: self.retry.clone(),
        })
    }

    fn options(&self) -> build::Options {
        build::Options {
            retry: object_store::RetryConfig {
                max_retries: self.retry.max_retries as usize,
                retry_timeout: Duration::from_secs(180),
                backoff: object_store::BackoffConfig {
                    init_backoff: self.retry.initial_backoff,
                    max_backoff: self.retry.max_backoff,
                    base: 2.0,
                },
            },
            read_timeout: self.read_timeout,
            connect_timeout: self.connect_timeout,
        }
    }
}

impl Rooted {
    fn key(&self, rel: &str) -> Result<Path> {
        let full = match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.prefix),
        };
        Path::parse(&full).map_err(|e| {
            Error::Input(format!(
                "artifact {rel:?} under {}: not a valid object key ({e})",
                self.uri
            ))
        })
    }

    /// The path of `key` relative to the root.
    fn relative(&self, key: &Path) -> Option<String> {
        let k = key.as_ref();
        if self.prefix.is_empty() {
            return Some(k.to_string());
        }
        k.strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')
            .map(str::to_string)
    }

    /// Runs `op` again when its answer was cut or stalled (up to the retry count, with backoff).
    async fn again<T, F, Fut>(&self, what: &str, rel: &str, op: F) -> Result<T>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = object_store::Result<T>>,
    {
        let mut tries = 0u32;
        let mut wait = self.retry.initial_backoff;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if tries < self.retry.max_retries && answer_broke(&e) => {
                    tries += 1;
                    tracing::info!(
                        "{what} {}/{rel}: {}; trying again in {} ms",
                        self.uri,
                        scrub(&e.to_string()),
                        wait.as_millis()
                    );
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(self.retry.max_backoff);
                }
                Err(e) => return Err(self.fail(what, rel, &e)),
            }
        }
    }

    fn fail(&self, what: &str, rel: &str, e: &object_store::Error) -> Error {
        let sep = if rel.is_empty() { "" } else { "/" };
        store_error(format!("{what} {}{sep}{rel} ({})", self.uri, self.id), e)
    }

    /// Every file under the root, depth first in name order (the order of the proxy's walk), one
    /// listing per directory.
    pub(crate) fn walk(&self) -> impl Stream<Item = Result<ArtifactFile>> + Send + 'static {
        let root = self.clone();
        walk_tree(move |dir| {
            let root = root.clone();
            async move { root.list(&dir).await }
        })
    }

    /// One directory: its files and its subdirectories (sorted), paths relative to the root.
    async fn list(&self, dir: &str) -> Result<(Vec<ArtifactFile>, Vec<String>)> {
        let at = if self.prefix.is_empty() && dir.is_empty() {
            None
        } else {
            Some(self.key(dir)?)
        };
        let listed = self
            .again("listing", dir, || {
                self.store.list_with_delimiter(at.as_ref())
            })
            .await;
        let listing = match listed {
            Ok(l) => l,
            // A root that was never written lists as empty (as through the proxy).
            Err(e) if e.is_not_found() => return Ok((Vec::new(), Vec::new())),
            Err(e) => return Err(e),
        };
        let mut files = Vec::with_capacity(listing.objects.len());
        for o in listing.objects {
            let Some(rel) = self.relative(&o.location) else {
                continue;
            };
            // A "directory marker" (a key ending in `/`, as some tools write) is not a file.
            if rel.is_empty() || rel == dir {
                continue;
            }
            files.push(ArtifactFile {
                path: rel,
                size: o.size,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut subdirs: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| self.relative(p))
            .filter(|p| !p.is_empty())
            .collect();
        subdirs.sort();
        Ok((files, subdirs))
    }

    /// Starts downloading one file, checking its size against `expected_size` (or the store's).
    pub(crate) async fn download(
        &self,
        rel: &str,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        let key = self.key(rel)?;
        let got = self
            .again("downloading", rel, || {
                self.store.get_opts(&key, Default::default())
            })
            .await?;
        let size = got.meta.size;
        if let Some(e) = expected_size
            && e != size
        {
            return Err(Error::Store {
                call: format!("downloading {}/{rel} ({})", self.uri, self.id),
                failure: StoreFailure::Other,
                cause: format!("the store holds {size} bytes, the listing said {e}"),
            });
        }
        let this = self.clone();
        let rel_owned = rel.to_string();
        let body = got
            .into_stream()
            .map_err(move |e| this.fail("downloading", &rel_owned, &e));
        let what = format!("download of {}/{rel}", self.uri);
        Ok(ArtifactDownload {
            size: Some(size),
            body: exact_size(body, Some(size), what).boxed(),
        })
    }

    /// Uploads one file from a stream of exactly `size` bytes: one request up to [`PART`], parts
    /// beyond (each part retried whole; a failed upload is aborted, leaving nothing behind).
    pub(crate) async fn upload<S>(&self, rel: &str, size: u64, body: S) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        let key = self.key(rel)?;
        let what = format!("upload of {}/{rel}", self.uri);
        let mut body = std::pin::pin!(exact_size(body, Some(size), what));
        if size <= PART as u64 {
            let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(PART));
            while let Some(chunk) = body.next().await {
                buf.extend_from_slice(&chunk?);
            }
            return self.put(&key, rel, buf.freeze()).await;
        }
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| self.fail("uploading", rel, &e))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
        let fed: Result<()> = async {
            while let Some(chunk) = body.next().await {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(|e| self.fail("uploading", rel, &e))?;
                writer.put(chunk?);
            }
            Ok(())
        }
        .await;
        match fed {
            Ok(()) => writer
                .finish()
                .await
                .map(drop)
                .map_err(|e| self.fail("uploading", rel, &e)),
            Err(e) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(
                        "aborting the upload of {}/{rel} failed too: {}",
                        self.uri,
                        scrub(&abort.to_string())
                    );
                }
                Err(e)
            }
        }
    }

    /// Writes one small file held in memory (retried whole on transient failures).
    pub(crate) async fn upload_bytes(&self, rel: &str, data: Bytes) -> Result<()> {
        let key = self.key(rel)?;
        self.put(&key, rel, data).await
    }

    async fn put(&self, key: &Path, rel: &str, data: Bytes) -> Result<()> {
        let payload = PutPayload::from_bytes(data);
        self.again("uploading", rel, || self.store.put(key, payload.clone()))
            .await
            .map(drop)
    }
}

/// Whether the request failed because its answer broke off or stalled (or its connection did):
/// worth sending again. Refusals and missing objects are not.
fn answer_broke(e: &object_store::Error) -> bool {
    let object_store::Error::Generic { .. } = e else {
        return false;
    };
    let text = e.to_string().to_ascii_lowercase();
    // A request the store client gave up on after its own retries is not tried again.
    if text.contains("max_retries") || text.contains("retry_timeout") {
        return false;
    }
    [
        "body",
        "connection",
        "timed out",
        "timeout",
        "reset",
        "broken pipe",
        "incomplete",
    ]
    .iter()
    .any(|w| text.contains(w))
}

/// An `object_store` error as ours, its message free of query strings (a SAS token travels in
/// one).
fn store_error(call: String, e: &object_store::Error) -> Error {
    use object_store::Error as E;
    let failure = match e {
        E::NotFound { .. } => StoreFailure::NotFound,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => StoreFailure::Denied,
        // The store client retried what was transient already (each request, each part).
        _ => StoreFailure::Other,
    };
    let mut cause = match e {
        E::NotFound { .. } => "no such object".to_string(),
        other => scrub(&other.to_string()),
    };
    if cause.contains("169.254.169.254") || cause.contains("169.254.170.2") {
        // With no credentials set, the client asked the instance metadata service.
        cause.push_str(
            " (no credentials were found in the environment, so the cloud's instance metadata service was asked: set the store's credentials, see README \"Artifact stores\")",
        );
    }
    Error::Store {
        call,
        failure,
        cause,
    }
}

/// `text` with every URL's query string (and user information) cut out, and one line; the
/// store's error elements that quote credentials blanked (S3 answers an expired or invalid
/// session token with the token itself in `<Token-0>`, a bad signature with the one received).
pub(crate) fn scrub(text: &str) -> String {
    // A store's XML error body may echo credentials (`<Token-0>` of an expired session token,
    // the `<CanonicalRequest>` of a refused signature): only its code and message are kept.
    if let Some(start) = text.find("<Error>").or_else(|| text.find("<?xml")) {
        let field = |name: &str| {
            let open = format!("<{name}>");
            let from = text[start..].find(&open)? + start + open.len();
            let to = text[from..].find(&format!("</{name}>"))? + from;
            Some(text[from..to].to_string())
        };
        let summary = match (field("Code"), field("Message")) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c,
            (None, Some(m)) => m,
            (None, None) => "(an XML error body)".to_string(),
        };
        let head = scrub(&text[..start]);
        return format!("{head} {}", scrub(&summary)).trim().to_string();
    }
    let mut out = String::with_capacity(text.len());
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains("://") {
            let cut = word.split(['?', '#']).next().unwrap_or(word);
            out.push_str(&crate::mlflow::config::redact(cut));
        } else {
            out.push_str(word);
        }
    }
    blank_secret_elements(&out)
}

/// XML elements of store errors whose content is a credential or quotes one (by name prefix).
const SECRET_ELEMENTS: [&str; 4] = [
    "Token-",
    "SignatureProvided",
    "StringToSign",
    "CanonicalRequest",
];

fn blank_secret_elements(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(lt) = rest.find('<') {
        let after = &rest[lt + 1..];
        let name_len = after.find(['>', ' ', '/']).unwrap_or(after.len());
        let name = &after[..name_len];
        let close = format!("</{name}>");
        let secret = !name.is_empty() && SECRET_ELEMENTS.iter().any(|p| name.starts_with(p));
        match (secret, after.find('>')) {
            (true, Some(gt)) => {
                out.push_str(&rest[..=lt + 1 + gt]);
                let body = &after[gt + 1..];
                match body.find(&close) {
                    Some(end) => {
                        out.push_str("***");
                        rest = &body[end..];
                    }
                    None => {
                        out.push_str("***");
                        rest = "";
                    }
                }
            }
            _ => {
                out.push_str(&rest[..=lt]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    /// Adversarial pass: S3's `ExpiredToken` answer quotes the session token (`<Token-0>`), a
    /// bad signature's answer the signature and what was signed; none of it is shown.
    #[test]
    fn scrub_blanks_credentials_store_errors_quote() {
        let s = scrub(
            "Server returned non-2xx status code: 400 Bad Request: <Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><Token-0>SESSION-SECRET</Token-0><Token-1>OTHER-SECRET</Token-1><RequestId>R</RequestId></Error>",
        );
        assert!(!s.contains("SECRET"), "{s}");
        assert!(
            s.contains("ExpiredToken: The provided token has expired."),
            "{s}"
        );
        let s = scrub(
            "403 Forbidden: <Error><Code>SignatureDoesNotMatch</Code><SignatureProvided>SIG-SECRET</SignatureProvided><StringToSign>AWS4\nSTS-SECRET</StringToSign><StringToSignBytes>41 57</StringToSignBytes><CanonicalRequest>GET /k X-Amz-Security-Token=CR-SECRET</CanonicalRequest></Error> <Token-0>CUT-SECRET",
        );
        assert!(!s.contains("SECRET"), "{s}");
        assert!(s.contains("SignatureDoesNotMatch"), "{s}");
    }

    #[test]
    fn scrub_drops_queries_and_user_information() {
        let s = scrub(
            "Error performing GET http://127.0.0.1:1/c/a.txt?sig=SECRET&se=x in 1s\nretry https://u:pw@h/b",
        );
        assert!(!s.contains("SECRET") && !s.contains("pw"), "{s}");
        assert!(s.contains("http://127.0.0.1:1/c/a.txt in 1s"), "{s}");
    }

    #[test]
    fn scrub_keeps_only_code_and_message_of_an_xml_error() {
        let s = scrub(
            "Client error with status 400: <?xml version=\"1.0\"?><Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><Token-0>SECRET-TOKEN</Token-0><CanonicalRequest>x-amz-security-token:SECRET2</CanonicalRequest></Error>",
        );
        assert!(!s.contains("SECRET"), "{s}");
        assert!(
            s.contains("ExpiredToken: The provided token has expired."),
            "{s}"
        );
    }

    #[test]
    fn a_metadata_service_failure_says_no_credentials_were_set() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: "Error performing PUT http://169.254.169.254/latest/api/token in 2ms - 403"
                .into(),
        };
        let e = store_error("uploading s3://b/x".into(), &e);
        assert!(!e.is_retryable(), "the store client retried it already");
        let text = e.to_string();
        assert!(text.contains("no credentials were found"), "{text}");
    }

    #[tokio::test]
    async fn local_roots_round_trip_in_walk_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("exp 1/run/artifacts");
        let uri = format!("file://{}", base.display());
        let Location::Store { store, prefix } = Location::parse(&uri).unwrap() else {
            panic!("not a store")
        };
        let stores = Stores::new(
            StoreSettings::default(),
            RetryConfig::default(),
            Duration::from_secs(5),
            Duration::from_secs(5),
        );
        let root = stores.root(&store, &prefix, &uri).unwrap();
        assert!(
            root.walk()
                .try_collect::<Vec<_>>()
                .await
                .unwrap()
                .is_empty()
        );
        let big = vec![7u8; PART + 3];
        let chunks: Vec<Result<Bytes>> = big
            .chunks(1 << 20)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        root.upload("z/big.bin", big.len() as u64, stream::iter(chunks))
            .await
            .unwrap();
        root.upload_bytes("b.txt", Bytes::from_static(b"bee"))
            .await
            .unwrap();
        root.upload_bytes("a dir/é.txt", Bytes::new())
            .await
            .unwrap();
        root.upload_bytes("c.txt", Bytes::from_static(b"c"))
            .await
            .unwrap();
        let walked: Vec<(String, u64)> = root
            .walk()
            .map_ok(|f| (f.path, f.size))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(
            walked,
            vec![
                ("b.txt".to_string(), 3),
                ("c.txt".to_string(), 1),
                ("a dir/é.txt".to_string(), 0),
                ("z/big.bin".to_string(), big.len() as u64),
            ]
        );
        let got = root
            .download("z/big.bin", Some(big.len() as u64))
            .await
            .unwrap();
        let bytes: Vec<Bytes> = got.body.try_collect().await.unwrap();
        assert_eq!(bytes.concat(), big);
        assert_eq!(std::fs::read(base.join("b.txt")).unwrap(), b"bee");
        // A short body fails the upload and leaves no file behind.
        let short = stream::iter(vec![Ok(Bytes::from_static(b"ab"))]);
        let e = root.upload("short.txt", 3, short).await.unwrap_err();
        assert!(e.to_string().contains("expected 3 bytes"), "{e}");
        assert!(!base.join("short.txt").exists());
        let e = root.download("missing.txt", None).await.err().unwrap();
        assert!(e.is_not_found(), "{e}");
        assert!(e.to_string().contains("missing.txt"), "{e}");
    }
}
