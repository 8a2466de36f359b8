//! Artifacts in `dbfs:/databricks/mlflow-tracking/...`, the way MLflow's own client reaches them:
//! listed through `artifacts/list` (runs) or `logged-models/{id}/artifacts/directories`, read and
//! written through short-lived signed URLs the workspace hands out per file
//! (`artifacts/credentials-for-read|write`, `logged-models/{id}/artifacts/credentials-for-download|upload`),
//! then the cloud store directly, with the headers the credential names.
//!
//! A signed URL expires silently: credentials are asked for just before each request, and a
//! store that refuses one (401/403) gets a request with fresh credentials. A download cut midway
//! resumes from the byte reached with a range request (on a fresh URL); a large upload to AWS goes
//! in parts (`create-multipart-upload`), each part retried on a fresh part URL, so no upload needs
//! a body twice except a small one held in memory. The workspace's token never goes to the store.

use bytes::{Bytes, BytesMut};
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, ETAG, HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use crate::error::{Error, Result, TransportKind};
use crate::mlflow::Client;
use crate::mlflow::api::artifacts::{
    ArtifactDownload, ArtifactFile, ResumableBody, exact_size, walk_tree,
};
use crate::mlflow::http::{Retries, classify, tracing_retry};
use crate::mlflow::retry::Idempotency::Safe;
use crate::mlflow::store::DbfsOwner;

/// Files up to this size are uploaded from memory in one request (and retried whole).
const SMALL: u64 = 8 << 20;
/// The part size of a multipart upload (AWS takes 5 MiB to 5 GiB, at most 10 000 parts).
const PART: u64 = 10 << 20;
/// The largest listing page or credentials page read.
const PAGES: usize = 1_000_000;

/// The credential types of `databricks_artifacts.proto`.
const KINDS: [&str; 4] = [
    "AWS_PRESIGNED_URL",
    "GCP_SIGNED_URL",
    "AZURE_SAS_URI",
    "AZURE_ADLS_GEN2_SAS_URI",
];

/// What a signed URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Read,
    Write,
}

/// One signed URL and the headers to send with it.
#[derive(Debug, Clone, Deserialize, Default)]
struct CredentialInfo {
    #[serde(default)]
    path: String,
    #[serde(default)]
    signed_uri: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    headers: Vec<NameValue>,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
struct NameValue {
    #[serde(default)]
    name: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
struct RunCredentials {
    #[serde(default)]
    credential_infos: Vec<CredentialInfo>,
}

#[derive(Deserialize, Default)]
struct ModelCredential {
    #[serde(default)]
    credential_info: CredentialInfo,
}

#[derive(Deserialize, Default)]
struct ModelCredentials {
    #[serde(default)]
    credentials: Vec<ModelCredential>,
}

#[derive(Deserialize, Default)]
struct Listing {
    #[serde(default)]
    files: Vec<crate::mlflow::types::FileInfo>,
    #[serde(default)]
    next_page_token: String,
}

#[derive(Deserialize, Default)]
struct Multipart {
    #[serde(default)]
    upload_id: String,
    #[serde(default)]
    upload_credential_infos: Vec<CredentialInfo>,
    #[serde(default)]
    abort_credential_info: Option<CredentialInfo>,
}

#[derive(Deserialize, Default)]
struct PartUrl {
    #[serde(default)]
    upload_credential_info: CredentialInfo,
}

/// What a request to a signed URL came to.
enum Signed {
    /// A success answer.
    Answer(reqwest::Response),
    /// The store refused the URL (401/403): expired, or revoked.
    Refused(Error),
    /// A transient failure: the connection, or a 5xx/429 answer.
    Failed(Error),
}

/// One try of an operation on signed URLs.
enum Step<T> {
    Done(T),
    Signed(Signed),
}

impl Signed {
    /// The answer as a step's result, or the refusal or failure to act on.
    fn then<T>(self, f: impl FnOnce(reqwest::Response) -> Result<T>) -> Result<Step<T>> {
        match self {
            Signed::Answer(r) => f(r).map(Step::Done),
            other => Ok(Step::Signed(other)),
        }
    }
}

/// At most 64 KiB of an error answer, within `timeout` (a store's error body is small; a
/// hostile one is not read whole).
async fn error_body(r: reqwest::Response, timeout: std::time::Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let mut body = r.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = body.next().await {
            out.extend_from_slice(&chunk[..chunk.len().min((64 << 10) - out.len())]);
            if out.len() >= 64 << 10 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    out
}

/// The artifacts of one run or logged model under a path, in a Databricks workspace.
#[derive(Debug, Clone)]
pub(crate) struct DbfsRoot {
    client: Client,
    owner: DbfsOwner,
    /// The path under the owner's artifact root (no outer `/`).
    prefix: String,
    uri: String,
}

impl DbfsRoot {
    pub(crate) fn new(client: &Client, owner: &DbfsOwner, prefix: &str, uri: &str) -> Result<Self> {
        if !client.config().is_databricks() {
            return Err(Error::Config(format!(
                "artifact location {uri}: a dbfs: location is reached through a Databricks workspace, and {} is not one (use a databricks:// tracking URI)",
                client.server()
            )));
        }
        Ok(DbfsRoot {
            client: client.clone(),
            owner: owner.clone(),
            prefix: prefix.to_string(),
            uri: uri.trim_end_matches('/').to_string(),
        })
    }

    /// `rel` as a path under the owner's artifact root.
    fn full(&self, rel: &str) -> String {
        match (self.prefix.is_empty(), rel.is_empty()) {
            (true, _) => rel.to_string(),
            (false, true) => self.prefix.clone(),
            (false, false) => format!("{}/{rel}", self.prefix),
        }
    }

    fn owner_name(&self) -> String {
        match &self.owner {
            DbfsOwner::Run(r) => format!("run {r}"),
            DbfsOwner::LoggedModel(m) => format!("logged model {m}"),
        }
    }

    /// Every file under the root, depth first in name order, one listing per directory.
    pub(crate) fn walk(&self) -> impl Stream<Item = Result<ArtifactFile>> + Send + 'static {
        let root = self.clone();
        walk_tree(move |dir| {
            let root = root.clone();
            async move { root.list(&dir).await }
        })
    }

    /// One directory, every page: its files and subdirectories, relative to the root.
    async fn list(&self, dir: &str) -> Result<(Vec<ArtifactFile>, Vec<String>)> {
        let full = self.full(dir);
        let call = format!("GET artifacts list ({}, {:?})", self.owner_name(), full);
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        let mut token = String::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..PAGES {
            let page: Listing = match &self.owner {
                // (A map: the query is sent as the fields of a JSON object.)
                DbfsOwner::Run(run) => {
                    let mut q = json!({ "run_id": run, "path": full });
                    if !token.is_empty() {
                        q["page_token"] = token.clone().into();
                    }
                    self.client.get("artifacts/list", &q, &call).await?
                }
                DbfsOwner::LoggedModel(m) => {
                    let mut q = json!({ "artifact_directory_path": full });
                    if !token.is_empty() {
                        q["page_token"] = token.clone().into();
                    }
                    let endpoint = format!("logged-models/{m}/artifacts/directories");
                    self.client.get(&endpoint, &q, &call).await?
                }
            };
            for f in page.files {
                // Paths come relative to the owner's root; a listing of a file is that file.
                let Some(rel) = self.relative(&f.path) else {
                    if f.path == full && !f.is_dir {
                        continue;
                    }
                    return Err(self.client.protocol(
                        &call,
                        format!("the listing holds {:?}, outside {full:?}", f.path),
                    ));
                };
                let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                if parent != dir || rel.is_empty() || rel.split('/').any(|s| s == ".." || s == ".")
                {
                    return Err(self.client.protocol(
                        &call,
                        format!("the listing holds an unusable path {:?}", f.path),
                    ));
                }
                if f.is_dir {
                    subdirs.push(rel);
                } else {
                    let size = u64::try_from(f.file_size.unwrap_or(0)).unwrap_or(0);
                    files.push(ArtifactFile { path: rel, size });
                }
            }
            if page.next_page_token.is_empty() {
                subdirs.sort();
                return Ok((files, subdirs));
            }
            if !seen.insert(page.next_page_token.clone()) {
                return Err(self.client.protocol(
                    &call,
                    "the listing gives a page token it gave before: it would never end".into(),
                ));
            }
            token = page.next_page_token;
        }
        Err(self
            .client
            .protocol(&call, "the listing does not end".into()))
    }

    fn relative(&self, full: &str) -> Option<String> {
        let full = full.trim_matches('/');
        if self.prefix.is_empty() {
            return Some(full.to_string());
        }
        full.strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')
            .map(str::to_string)
    }

    /// A signed URL for one file, asked for now.
    async fn credential(&self, op: Op, full: &str) -> Result<CredentialInfo> {
        let verb = match op {
            Op::Read => "read",
            Op::Write => "write",
        };
        let call = format!(
            "POST artifact credentials for {verb} ({}, {full:?})",
            self.owner_name()
        );
        let infos = match &self.owner {
            DbfsOwner::Run(run) => {
                let endpoint = match op {
                    Op::Read => "artifacts/credentials-for-read",
                    Op::Write => "artifacts/credentials-for-write",
                };
                let a: RunCredentials = self
                    .client
                    .call(
                        Method::POST,
                        endpoint,
                        &json!({ "run_id": run, "path": [full] }),
                        &call,
                        Safe,
                    )
                    .await?;
                a.credential_infos
            }
            DbfsOwner::LoggedModel(m) => {
                let endpoint = match op {
                    Op::Read => format!("logged-models/{m}/artifacts/credentials-for-download"),
                    Op::Write => format!("logged-models/{m}/artifacts/credentials-for-upload"),
                };
                let a: ModelCredentials = self
                    .client
                    .call(
                        Method::POST,
                        &endpoint,
                        &json!({ "paths": [full] }),
                        &call,
                        Safe,
                    )
                    .await?;
                a.credentials
                    .into_iter()
                    .map(|c| c.credential_info)
                    .collect()
            }
        };
        let info = infos
            .into_iter()
            .find(|i| i.path.trim_matches('/') == full || i.path.is_empty())
            .ok_or_else(|| {
                self.client
                    .protocol(&call, format!("the answer has no credential for {full:?}"))
            })?;
        if !KINDS.contains(&info.kind.as_str()) {
            return Err(self.client.protocol(
                &call,
                format!(
                    "the credential is of type {:?}; known are {}",
                    info.kind,
                    KINDS.join(", ")
                ),
            ));
        }
        self.check_url(&info, &call)?;
        Ok(info)
    }

    /// A signed URL must be an https address (http only when the workspace itself is on http).
    fn check_url(&self, info: &CredentialInfo, call: &str) -> Result<Url> {
        let url = Url::parse(&info.signed_uri).map_err(|_| {
            self.client
                .protocol(call, "the credential's signed_uri is not a URL".into())
        })?;
        let workspace_scheme = self.client.config().base.scheme();
        match url.scheme() {
            "https" => {}
            "http" if workspace_scheme == "http" => {}
            other => {
                return Err(self.client.protocol(
                    call,
                    format!("the credential's signed_uri has scheme {other:?}; only https is used"),
                ));
            }
        }
        Ok(url)
    }

    fn headers(&self, info: &CredentialInfo, call: &str) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        for nv in &info.headers {
            let name = HeaderName::from_bytes(nv.name.as_bytes());
            let value = HeaderValue::from_str(&nv.value);
            match (name, value) {
                (Ok(n), Ok(mut v)) => {
                    v.set_sensitive(true);
                    h.insert(n, v);
                }
                _ => {
                    return Err(self.client.protocol(
                        call,
                        format!(
                            "the credential names a header that cannot be sent ({:?})",
                            nv.name
                        ),
                    ));
                }
            }
        }
        Ok(h)
    }

    /// Sends one request to a signed URL. `Err` only for what sending again cannot mend (a URL
    /// or header that cannot be used, a permanent refusal); a refused URL (401/403: expired or
    /// revoked) and a transient failure come back as [`Signed`] for the caller to act on. With
    /// `timed`, the whole exchange must end within the answer timeout; a streamed upload is
    /// bounded by the connection's read timeout instead (it may take longer than any timeout).
    async fn signed(
        &self,
        method: Method,
        info: &CredentialInfo,
        extra: HeaderMap,
        body: Option<reqwest::Body>,
        timed: bool,
        call: &str,
    ) -> Result<Signed> {
        let url = self.check_url(info, call)?;
        let mut req = self
            .client
            .inner
            .http
            .request(method.clone(), url.clone())
            .headers(self.headers(info, call)?)
            .headers(extra);
        if let Some(b) = body {
            req = req.body(b);
        }
        let started = std::time::Instant::now();
        let timeout = self.client.inner.answer_timeout;
        let sent = if timed {
            match tokio::time::timeout(timeout, req.send()).await {
                Ok(r) => r.map_err(|e| classify(&e)),
                Err(_) => Err((
                    TransportKind::Timeout,
                    format!("no answer within {} s", timeout.as_secs_f64()),
                )),
            }
        } else {
            req.send().await.map_err(|e| classify(&e))
        };
        let mut shown = url.clone();
        shown.set_query(None);
        crate::mlflow::http::trace_request(
            &method,
            &shown,
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started,
        );
        let server = self.store_host(&url);
        match sent {
            Ok(r) if r.status().is_success() => Ok(Signed::Answer(r)),
            Ok(r) => {
                let status = r.status();
                let body = error_body(r, timeout).await;
                let mut e = crate::mlflow::http::api_error_from(call, &server, status, &body);
                // A store may quote the request (its URL, its headers) in its error.
                e.message = crate::mlflow::store::scrub(&scrub(&e.message, &url, info));
                e.error_code = scrub(&e.error_code, &url, info);
                let e = Error::Api(Box::new(e));
                match status.as_u16() {
                    401 | 403 => Ok(Signed::Refused(e)),
                    s if crate::mlflow::retry::is_transient_status(s) => Ok(Signed::Failed(e)),
                    _ => Err(e),
                }
            }
            Err((kind, cause)) => Ok(Signed::Failed(Error::Transport {
                call: call.to_string(),
                server,
                kind,
                cause,
            })),
        }
    }

    fn store_host(&self, url: &Url) -> String {
        format!(
            "the artifact store {} (signed URL)",
            url.host_str().unwrap_or("?")
        )
    }

    /// Runs `attempt` (which asks for fresh credentials itself) until it succeeds: a refused URL
    /// counts against a small budget, a transient failure of the store against the client's
    /// retries. A failure of the workspace (asking for credentials) is returned as it is: the
    /// client retried it already.
    async fn with_fresh_urls<T, F, Fut>(&self, call: &str, mut attempt: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Step<T>>>,
    {
        let mut retries = Retries::new(&self.client.inner.retry);
        let mut refused = 0;
        loop {
            match attempt().await? {
                Step::Done(v) => return Ok(v),
                Step::Signed(Signed::Refused(e)) => {
                    if refused >= 3 {
                        return Err(e.about(format!(
                            "{call}: the artifact store refused 4 fresh signed URLs"
                        )));
                    }
                    refused += 1;
                    tracing::info!(
                        "{call}: the signed URL was refused ({e}); asking for a new one"
                    );
                }
                Step::Signed(Signed::Failed(e)) => {
                    let kind = match &e {
                        Error::Transport { kind, .. } => *kind,
                        _ => TransportKind::Broken,
                    };
                    match retries.after(kind, None) {
                        Some(d) => {
                            tracing_retry(call, &e.to_string(), d);
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(e),
                    }
                }
                Step::Signed(Signed::Answer(_)) => {
                    return Err(Error::Internal(format!("{call}: an answer was not taken")));
                }
            }
        }
    }

    /// Starts downloading one file, resumed on a fresh URL where it is cut.
    pub(crate) async fn download(
        &self,
        rel: &str,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        let full = self.full(rel);
        let call = format!("GET {}/{rel} (signed URL)", self.uri);
        let first = self.open_read(&full, 0, &call).await?;
        let announced = first
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(a), Some(e)) = (announced, expected_size)
            && a != e
        {
            return Err(self.client.protocol(
                &call,
                format!("the store announces {a} bytes, the listing said {e}"),
            ));
        }
        let state = Reading {
            root: self.clone(),
            full,
            call: call.clone(),
            body: ResumableBody::new(first),
            retries: Retries::new(&self.client.inner.retry),
        };
        let body = stream::unfold(state, |mut r| async move {
            let next = r.next().await;
            next.map(|item| (item, r))
        });
        let what = format!("download of {}/{rel}", self.uri);
        Ok(ArtifactDownload {
            size: announced,
            body: exact_size(body, expected_size.or(announced), what).boxed(),
        })
    }

    /// A GET of `full` from byte `from`, on a fresh signed URL.
    async fn open_read(&self, full: &str, from: u64, call: &str) -> Result<reqwest::Response> {
        self.with_fresh_urls(call, || async {
            let info = self.credential(Op::Read, full).await?;
            let mut extra = HeaderMap::new();
            if from > 0 {
                extra.insert(
                    reqwest::header::RANGE,
                    HeaderValue::from_str(&format!("bytes={from}-"))
                        .map_err(|e| Error::Internal(e.to_string()))?,
                );
            }
            self.signed(Method::GET, &info, extra, None, true, call)
                .await?
                .then(Ok)
        })
        .await
    }

    /// Uploads one file from a stream of exactly `size` bytes.
    pub(crate) async fn upload<S>(&self, rel: &str, size: u64, body: S) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        let what = format!("upload of {}/{rel}", self.uri);
        let mut body = exact_size(body, Some(size), what).boxed();
        if size <= SMALL {
            let mut buf = BytesMut::with_capacity(usize::try_from(size).unwrap_or(0));
            while let Some(chunk) = body.next().await {
                buf.extend_from_slice(&chunk?);
            }
            return self.upload_bytes(rel, buf.freeze()).await;
        }
        let full = self.full(rel);
        let call = format!("PUT {}/{rel} ({size} bytes, signed URL)", self.uri);
        let info = self.credential(Op::Write, &full).await?;
        match (&self.owner, info.kind.as_str()) {
            (DbfsOwner::Run(run), "AWS_PRESIGNED_URL") => {
                self.upload_parts(run, &full, size, body, &call).await
            }
            (_, "AZURE_ADLS_GEN2_SAS_URI") => Err(self.unsupported(&info, &call)),
            _ => {
                // One streamed request: the body cannot be sent twice, so a refusal fails it.
                let mut extra = self.put_headers(&info, &call)?;
                extra.insert(CONTENT_LENGTH, HeaderValue::from(size));
                match self
                    .signed(
                        Method::PUT,
                        &info,
                        extra,
                        Some(reqwest::Body::wrap_stream(body)),
                        false,
                        &call,
                    )
                    .await?
                {
                    Signed::Answer(_) => Ok(()),
                    Signed::Refused(e) | Signed::Failed(e) => Err(e),
                }
            }
        }
    }

    fn unsupported(&self, info: &CredentialInfo, call: &str) -> Error {
        Error::Config(format!(
            "{call}: the workspace hands out {} credentials for writing, which mlflow-archive cannot use yet (AWS, GCP and Azure blob SAS URLs can be)",
            info.kind
        ))
    }

    /// Headers a PUT needs beyond the credential's own: Azure's blob type.
    fn put_headers(&self, info: &CredentialInfo, call: &str) -> Result<HeaderMap> {
        let mut h = HeaderMap::new();
        match info.kind.as_str() {
            "AZURE_SAS_URI" => {
                h.insert("x-ms-blob-type", HeaderValue::from_static("BlockBlob"));
            }
            "AZURE_ADLS_GEN2_SAS_URI" => return Err(self.unsupported(info, call)),
            _ => {}
        }
        Ok(h)
    }

    /// Writes one file held in memory, on a fresh signed URL each try.
    pub(crate) async fn upload_bytes(&self, rel: &str, data: Bytes) -> Result<()> {
        let full = self.full(rel);
        let call = format!("PUT {}/{rel} ({} bytes, signed URL)", self.uri, data.len());
        self.with_fresh_urls(&call, || async {
            let info = self.credential(Op::Write, &full).await?;
            let mut extra = self.put_headers(&info, &call)?;
            extra.insert(CONTENT_LENGTH, HeaderValue::from(data.len()));
            self.signed(
                Method::PUT,
                &info,
                extra,
                Some(reqwest::Body::from(data.clone())),
                true,
                &call,
            )
            .await?
            .then(|_| Ok(()))
        })
        .await
    }

    /// An AWS multipart upload through the workspace: parts of [`PART`] bytes held in memory one
    /// at a time, each retried on a fresh part URL; aborted on failure.
    async fn upload_parts(
        &self,
        run: &str,
        full: &str,
        size: u64,
        mut body: BoxStream<'static, Result<Bytes>>,
        call: &str,
    ) -> Result<()> {
        let part = PART.max(size.div_ceil(10_000).next_multiple_of(1 << 20));
        let parts = size.div_ceil(part);
        let created: Multipart = self
            .client
            .call(
                Method::POST,
                "artifacts/create-multipart-upload",
                &json!({ "run_id": run, "path": full, "num_parts": parts }),
                &format!("POST create-multipart-upload (run {run}, {full:?})"),
                Safe,
            )
            .await?;
        if created.upload_id.is_empty() || created.upload_credential_infos.len() as u64 != parts {
            return Err(self.client.protocol(
                call,
                format!(
                    "create-multipart-upload gave {} part URLs for {parts} parts",
                    created.upload_credential_infos.len()
                ),
            ));
        }
        let sent: Result<Vec<serde_json::Value>> = async {
            let mut etags = Vec::new();
            let mut pending = BytesMut::new();
            for (i, first_info) in created.upload_credential_infos.iter().enumerate() {
                let number = i as u64 + 1;
                let want = if number == parts {
                    size - part * (parts - 1)
                } else {
                    part
                };
                while (pending.len() as u64) < want {
                    match body.next().await {
                        Some(chunk) => pending.extend_from_slice(&chunk?),
                        None => break,
                    }
                }
                let cut = usize::try_from(want)
                    .unwrap_or(usize::MAX)
                    .min(pending.len());
                let data = pending.split_to(cut).freeze();
                let etag = self
                    .upload_part(
                        run,
                        full,
                        &created.upload_id,
                        number,
                        first_info,
                        data,
                        call,
                    )
                    .await?;
                etags.push(json!({ "part_number": number, "etag": etag }));
            }
            // The size check of the body runs at its end.
            while let Some(chunk) = body.next().await {
                chunk?;
            }
            Ok(etags)
        }
        .await;
        match sent {
            Ok(etags) => {
                self.client
                    .call_unit(
                        Method::POST,
                        "artifacts/complete-multipart-upload",
                        &json!({
                            "run_id": run,
                            "path": full,
                            "upload_id": created.upload_id,
                            "part_etags": etags,
                        }),
                        &format!("POST complete-multipart-upload (run {run}, {full:?})"),
                        Safe,
                    )
                    .await
            }
            Err(e) => {
                if let Some(abort) = &created.abort_credential_info {
                    match self
                        .signed(Method::DELETE, abort, HeaderMap::new(), None, true, call)
                        .await
                    {
                        Ok(Signed::Answer(_)) => {}
                        Ok(Signed::Refused(a) | Signed::Failed(a)) | Err(a) => {
                            tracing::warn!("{call}: aborting the multipart upload failed too: {a}");
                        }
                    }
                }
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_part(
        &self,
        run: &str,
        full: &str,
        upload_id: &str,
        number: u64,
        first: &CredentialInfo,
        data: Bytes,
        call: &str,
    ) -> Result<String> {
        let call = format!("{call}, part {number}");
        let mut info = Some(first.clone());
        self.with_fresh_urls(&call, || {
            let given = info.take();
            let data = data.clone();
            let call = call.clone();
            async move {
                let info = match given {
                    Some(i) => i,
                    None => {
                        let q = json!({
                            "run_id": run,
                            "path": full,
                            "upload_id": upload_id,
                            "part_number": number.to_string(),
                        });
                        let a: PartUrl = self
                            .client
                            .get("artifacts/get-presigned-upload-part-url", &q, &call)
                            .await?;
                        a.upload_credential_info
                    }
                };
                let mut extra = HeaderMap::new();
                extra.insert(CONTENT_LENGTH, HeaderValue::from(data.len()));
                self.signed(
                    Method::PUT,
                    &info,
                    extra,
                    Some(reqwest::Body::from(data)),
                    true,
                    &call,
                )
                .await?
                .then(|resp| {
                    resp.headers()
                        .get(ETAG)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or_else(|| {
                            self.client
                                .protocol(&call, "the store's answer to a part has no ETag".into())
                        })
                })
            }
        })
        .await
    }
}

/// `text` without the secrets of a signed URL: its query (the signature and the rest), each of
/// its query values, and the values of the credential's headers, each replaced by `***`.
fn scrub(text: &str, url: &Url, info: &CredentialInfo) -> String {
    let mut secrets: Vec<String> = Vec::new();
    if let Some(q) = url.query() {
        secrets.push(q.to_string());
    }
    for (_, v) in url.query_pairs() {
        secrets.push(v.into_owned());
    }
    if let Some(raw) = info.signed_uri.split_once('?').map(|(_, q)| q) {
        secrets.extend(
            raw.split('&')
                .filter_map(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_string()),
        );
    }
    secrets.extend(info.headers.iter().map(|h| h.value.clone()));
    // Longest first, so a value inside another is not left half shown; short values (`1`,
    // `true`) are no secret and would blot out the message.
    secrets.retain(|s| s.len() >= 8);
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_string();
    for s in &secrets {
        out = out.replace(s.as_str(), "***");
    }
    out
}

/// A download's body that resumes on a fresh signed URL where it was cut.
struct Reading {
    root: DbfsRoot,
    full: String,
    call: String,
    body: ResumableBody,
    retries: Retries,
}

impl Reading {
    async fn next(&mut self) -> Option<Result<Bytes>> {
        let idle = self.root.client.inner.answer_timeout;
        loop {
            match self.body.pull(idle).await {
                Ok(Some(chunk)) => return Some(Ok(chunk)),
                Ok(None) => return None,
                Err(cut) => {
                    if let Err(e) = self.resume(cut).await {
                        self.body.stop();
                        return Some(Err(e));
                    }
                }
            }
        }
    }

    /// Asks for the rest of the file after a cut, on a fresh signed URL.
    async fn resume(&mut self, cut: crate::mlflow::http::Cut) -> Result<()> {
        let Some(delay) = self.retries.after(cut.kind, None) else {
            return Err(Error::Transport {
                call: self.call.clone(),
                server: self.root.client.server().to_string(),
                kind: cut.kind,
                cause: self.retries.give_up(cut.to_string()),
            });
        };
        tracing_retry(&self.call, &cut.to_string(), delay);
        tokio::time::sleep(delay).await;
        let resp = self
            .root
            .open_read(&self.full, self.body.seen, &self.call)
            .await?;
        self.body
            .resume(resp)
            .map_err(|detail| self.root.client.protocol(&self.call, detail))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlflow::config::{Auth, DatabricksWorkspace, Registry, Secret, TrackingConfig};

    fn root(base: &str, prefix: &str) -> DbfsRoot {
        let config = TrackingConfig {
            base: Url::parse(base).unwrap(),
            auth: Auth::Bearer(Secret::new("t")),
            insecure_tls: false,
            ca_cert: None,
            databricks: Some(DatabricksWorkspace {
                profile: None,
                registry: Registry::Workspace,
            }),
        };
        let client = Client::new(config).unwrap();
        DbfsRoot::new(&client, &DbfsOwner::Run("r1".into()), prefix, "dbfs:/x").unwrap()
    }

    fn info(uri: &str) -> CredentialInfo {
        CredentialInfo {
            signed_uri: uri.into(),
            kind: "AWS_PRESIGNED_URL".into(),
            ..CredentialInfo::default()
        }
    }

    #[test]
    fn signed_urls_are_https_unless_the_workspace_is_http() {
        let https = root("https://adb-1.azuredatabricks.net/", "");
        assert!(
            https
                .check_url(&info("https://bucket.s3.amazonaws.com/k?sig=x"), "c")
                .is_ok()
        );
        for bad in [
            "http://bucket.s3.amazonaws.com/k?sig=SECRET",
            "file:///etc/passwd",
            "ftp://h/k",
            "",
            "/relative/k",
        ] {
            let e = https.check_url(&info(bad), "c").unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
        }
        let http = root("http://127.0.0.1:1/", "");
        assert!(http.check_url(&info("http://127.0.0.1:2/k"), "c").is_ok());
        assert!(http.check_url(&info("file:///etc/passwd"), "c").is_err());
    }

    #[test]
    fn paths_are_relative_to_the_root_and_stay_under_it() {
        let r = root("http://127.0.0.1:1/", "model");
        assert_eq!(r.full(""), "model");
        assert_eq!(r.full("MLmodel"), "model/MLmodel");
        assert_eq!(r.relative("model/MLmodel").as_deref(), Some("MLmodel"));
        assert_eq!(r.relative("modelx/MLmodel"), None);
        assert_eq!(r.relative("other/MLmodel"), None);
        let top = root("http://127.0.0.1:1/", "");
        assert_eq!(top.full("a/b"), "a/b");
    }

    #[test]
    fn a_dbfs_root_needs_a_databricks_client() {
        let client = Client::new(TrackingConfig::for_uri("http://127.0.0.1:1").unwrap()).unwrap();
        let e = DbfsRoot::new(&client, &DbfsOwner::Run("r".into()), "", "dbfs:/x")
            .unwrap_err()
            .to_string();
        assert!(e.contains("use a databricks:// tracking URI"), "{e}");
    }
}
