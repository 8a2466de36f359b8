//! Artifacts through the server's artifact proxy (`mlflow server --serve-artifacts`,
//! `mlflow-artifacts:` URIs): listing one directory per request, streaming downloads and uploads
//! with exact sizes.

use std::collections::VecDeque;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE};
use serde::Deserialize;
use url::Url;

use crate::error::TransportKind;
use crate::error::{Error, Result};
use crate::mlflow::Client;
use crate::mlflow::databricks::dbfs::DbfsRoot;
use crate::mlflow::http::limit::Outcome;
use crate::mlflow::http::{Body, Cut, Retries, classify, tracing_retry};
use crate::mlflow::retry::Idempotency::Safe;
use crate::mlflow::store::{Location, Rooted};
use crate::mlflow::types::FileInfo;

/// The root of a run's or a logged model's artifacts: a path under the server's artifact proxy
/// (`mlflow-artifacts:`) or a place in a store the client reaches itself (`s3://`, `gs://`,
/// `wasbs://`, `abfss://`, `file:`, an absolute path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRoot {
    uri: String,
    location: Location,
}

impl ArtifactRoot {
    /// Parses an artifact location as MLflow writes it (see [`Location::parse`]).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a location this client cannot reach (`hdfs:`, `sftp:`, `dbfs:`,
    /// ...), named with its scheme, or one that is malformed.
    pub fn parse(uri: &str) -> Result<Self> {
        Ok(ArtifactRoot {
            uri: uri.to_string(),
            location: Location::parse(uri)?,
        })
    }

    /// The URI it was parsed from.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Where it is.
    pub fn location(&self) -> &Location {
        &self.location
    }

    fn proxy_path(&self) -> Option<&str> {
        match &self.location {
            Location::Proxy { path } => Some(path),
            Location::Store { .. } | Location::Databricks { .. } => None,
        }
    }
}

/// A file found by [`Client::walk_artifacts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactFile {
    /// Its path relative to the root, `/`-separated.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
}

/// Every file of a tree listed one directory at a time by `list` (a directory's files and its
/// subdirectories, each in name order, paths relative to the root; `""` is the root): depth
/// first, a directory's files before its subdirectories. The proxy's walk and a store's share it,
/// so an archive lists files in the same order whatever holds them.
pub(crate) fn walk_tree<L, F>(list: L) -> impl Stream<Item = Result<ArtifactFile>> + Send + 'static
where
    L: Fn(String) -> F + Send + 'static,
    F: std::future::Future<Output = Result<(Vec<ArtifactFile>, Vec<String>)>> + Send,
{
    let state = (list, vec![String::new()], VecDeque::<ArtifactFile>::new());
    stream::try_unfold(state, |(list, mut dirs, mut ready)| async move {
        loop {
            if let Some(f) = ready.pop_front() {
                return Ok(Some((f, (list, dirs, ready))));
            }
            let Some(dir) = dirs.pop() else {
                return Ok(None);
            };
            let (files, subdirs) = list(dir).await?;
            ready.extend(files);
            dirs.extend(subdirs.into_iter().rev());
        }
    })
}

/// A download in progress: the body as a stream of chunks whose total is checked against the
/// expected size (an error ends the stream when it differs).
pub struct ArtifactDownload {
    /// The size announced by the server, if any.
    pub size: Option<u64>,
    /// The body.
    pub body: BoxStream<'static, Result<Bytes>>,
}

#[derive(Deserialize, Default)]
struct ListAnswer {
    #[serde(default)]
    files: Vec<FileInfo>,
}

fn check_rel(rel: &str) -> Result<()> {
    if rel
        .split('/')
        .any(|s| s == ".." || s == "." || s.is_empty())
        || rel.contains('\\')
    {
        return Err(Error::Input(format!(
            "artifact path {rel:?} is not a plain relative path"
        )));
    }
    Ok(())
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Where the files of a root are read and written.
enum Access {
    Proxy,
    Store(Rooted),
    Dbfs(DbfsRoot),
}

impl Client {
    fn access(&self, root: &ArtifactRoot) -> Result<Access> {
        match &root.location {
            Location::Proxy { .. } => Ok(Access::Proxy),
            Location::Databricks { owner, path } => {
                DbfsRoot::new(self, owner, path, &root.uri).map(Access::Dbfs)
            }
            Location::Store { store, prefix } => self
                .inner
                .stores
                .root(store, prefix, &root.uri)
                .map(Access::Store),
        }
    }

    fn proxy_url(&self, root: &ArtifactRoot, rel: &str) -> Url {
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts");
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty();
            segs.extend(
                root.proxy_path()
                    .unwrap_or("")
                    .split('/')
                    .filter(|s| !s.is_empty()),
            );
            segs.extend(rel.split('/').filter(|s| !s.is_empty()));
        }
        url
    }

    /// Lists one directory (`rel`, relative to the root; `""` for the root). Paths in the answer
    /// are relative to the root. A directory that does not exist lists as empty.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn list_artifacts(&self, root: &ArtifactRoot, rel: &str) -> Result<Vec<FileInfo>> {
        if !rel.is_empty() {
            check_rel(rel)?;
        }
        let Some(proxy_path) = root.proxy_path() else {
            return Err(Error::Usage(format!(
                "list_artifacts lists through the server's proxy only; {} is walked with walk_artifacts",
                root.uri
            )));
        };
        let call = format!(
            "GET mlflow-artifacts list ({}/{rel})",
            root.uri.trim_end_matches('/')
        );
        let mut url = self.url("api/2.0/mlflow-artifacts/artifacts");
        url.query_pairs_mut()
            .append_pair("path", &join(proxy_path, rel));
        let a: ListAnswer = self.get_url(url, &call).await?;
        let mut files = Vec::with_capacity(a.files.len());
        for mut f in a.files {
            let name = f.path.rsplit('/').next().unwrap_or("").to_string();
            if name.is_empty() || name == "." || name == ".." {
                return Err(self.protocol(
                    &call,
                    format!("listing holds an unusable name {:?}", f.path),
                ));
            }
            f.path = join(rel, &name);
            files.push(f);
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(files)
    }

    /// Every file under the root, depth first in name order, one listing request per directory,
    /// through the server's proxy or from the store itself.
    pub fn walk_artifacts(&self, root: &ArtifactRoot) -> BoxStream<'static, Result<ArtifactFile>> {
        match self.access(root) {
            Ok(Access::Proxy) => self.walk_proxy(root).boxed(),
            Ok(Access::Store(s)) => s.walk().boxed(),
            Ok(Access::Dbfs(d)) => d.walk().boxed(),
            Err(e) => stream::once(async { Err(e) }).boxed(),
        }
    }

    fn walk_proxy(
        &self,
        root: &ArtifactRoot,
    ) -> impl Stream<Item = Result<ArtifactFile>> + Send + 'static {
        let (client, root) = (self.clone(), root.clone());
        walk_tree(move |dir| {
            let (client, root) = (client.clone(), root.clone());
            async move {
                let mut files = Vec::new();
                let mut subdirs = Vec::new();
                for e in client.list_artifacts(&root, &dir).await? {
                    if e.is_dir {
                        subdirs.push(e.path);
                    } else {
                        let size = u64::try_from(e.file_size.unwrap_or(0)).unwrap_or(0);
                        files.push(ArtifactFile { path: e.path, size });
                    }
                }
                Ok((files, subdirs))
            }
        })
    }

    /// Starts downloading one file. When `expected_size` is given (or the server announces a
    /// length), the stream ends with an error if the body is shorter or longer.
    ///
    /// A body cut or stalled midway is resumed from the byte reached (an HTTP range request; a
    /// server that ignores the range sends the file again, and the bytes already passed on are
    /// skipped), so no byte comes twice or goes missing; the retries of the request count.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A body shorter or longer than
    /// announced is an error when it is read.
    pub async fn download_artifact(
        &self,
        root: &ArtifactRoot,
        rel: &str,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        check_rel(rel)?;
        match self.access(root)? {
            Access::Store(s) => return s.download(rel, expected_size).await,
            Access::Dbfs(d) => return d.download(rel, expected_size).await,
            Access::Proxy => {}
        }
        let call = format!(
            "GET mlflow-artifacts ({}/{rel})",
            root.uri.trim_end_matches('/')
        );
        let what = format!("download of {}/{rel}", root.uri.trim_end_matches('/'));
        self.download_url(self.proxy_url(root, rel), call, what, expected_size)
            .await
    }

    /// Starts downloading the body of a GET to `url`, resumed where it is cut (see
    /// [`Client::download_artifact`]); `call` names the request in errors, `what` the body.
    pub(crate) async fn download_url(
        &self,
        url: Url,
        call: String,
        what: String,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        let mut retries = Retries::new(&self.inner.retry);
        let resp = self
            .send_with(
                &mut retries,
                Method::GET,
                url.clone(),
                &Body::None,
                None,
                &call,
                Safe,
            )
            .await?;
        let announced = resp
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(a), Some(e)) = (announced, expected_size)
            && a != e
        {
            return Err(self.protocol(
                &call,
                format!("the server announces {a} bytes, the listing said {e}"),
            ));
        }
        let want = expected_size.or(announced);
        let resuming = Resuming {
            client: self.clone(),
            url,
            call,
            body: ResumableBody::new(resp),
            retries,
        };
        let body = exact_size(
            stream::unfold(resuming, |mut r| async move {
                let next = r.next().await;
                next.map(|item| (item, r))
            }),
            want,
            what,
        );
        Ok(ArtifactDownload {
            size: announced,
            body: body.boxed(),
        })
    }

    /// Uploads one file from a stream of exactly `size` bytes. The stream cannot be replayed, so
    /// a failure is returned to the caller (who may upload again from a new stream).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A body that yields other than
    /// exactly `size` bytes fails the upload.
    pub async fn upload_artifact<S>(
        &self,
        root: &ArtifactRoot,
        rel: &str,
        size: u64,
        body: S,
    ) -> Result<()>
    where
        S: Stream<Item = Result<Bytes>> + Send + 'static,
    {
        check_rel(rel)?;
        match self.access(root)? {
            Access::Store(s) => return s.upload(rel, size, body).await,
            Access::Dbfs(d) => return d.upload(rel, size, body).await,
            Access::Proxy => {}
        }
        let call = format!(
            "PUT mlflow-artifacts ({}/{rel}, {size} bytes)",
            root.uri.trim_end_matches('/')
        );
        let checked = exact_size(body, Some(size), format!("upload of {}/{rel}", root.uri));
        let url = self.proxy_url(root, rel);
        let (req, _) = self.authorized(Method::PUT, url.clone()).await?;
        let req = req
            .header(CONTENT_LENGTH, size)
            .body(reqwest::Body::wrap_stream(checked));
        // The slot is held while the body is sent, until the answer arrives; never a sample
        // (the time is the body's).
        let slot = self.inner.limit.acquire(None).await;
        let started = std::time::Instant::now();
        self.inner
            .requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let sent = req.send().await;
        slot.done(match &sent {
            Ok(r) => Outcome::Answer(r.status().as_u16()),
            Err(e) if e.is_body() => Outcome::Abandoned,
            Err(e) => Outcome::Failed(classify(e).0),
        });
        crate::mlflow::http::trace_request(
            &Method::PUT,
            &url,
            sent.as_ref().ok().map(|r| r.status().as_u16()),
            started,
        );
        let resp = sent.map_err(|e| self.transport(&call, &e))?;
        self.check_status(resp, &call).await.map(drop)
    }

    /// Uploads one small file held in memory; retried on transient failures.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn upload_artifact_bytes(
        &self,
        root: &ArtifactRoot,
        rel: &str,
        data: Bytes,
    ) -> Result<()> {
        check_rel(rel)?;
        match self.access(root)? {
            Access::Store(s) => return s.upload_bytes(rel, data).await,
            Access::Dbfs(d) => return d.upload_bytes(rel, data).await,
            Access::Proxy => {}
        }
        let call = format!(
            "PUT mlflow-artifacts ({}/{rel}, {} bytes)",
            root.uri.trim_end_matches('/'),
            data.len()
        );
        self.send(
            Method::PUT,
            self.proxy_url(root, rel),
            Body::Bytes(&data),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }
}

/// The body of a download that may be cut and asked for again from the byte reached: what was
/// passed on, and what of the current answer to drop (a server or store that ignored the range
/// sends the file again from byte 0).
pub(crate) struct ResumableBody {
    body: BoxStream<'static, reqwest::Result<Bytes>>,
    /// Bytes passed on so far.
    pub(crate) seen: u64,
    /// Bytes of the current answer to drop.
    skip: u64,
    done: bool,
}

impl ResumableBody {
    pub(crate) fn new(resp: reqwest::Response) -> Self {
        ResumableBody {
            body: resp.bytes_stream().boxed(),
            seen: 0,
            skip: 0,
            done: false,
        }
    }

    /// The next chunk (`Ok(None)` at the end), or the cut that stopped the body (nothing within
    /// `idle`, or a broken connection).
    pub(crate) async fn pull(
        &mut self,
        idle: std::time::Duration,
    ) -> std::result::Result<Option<Bytes>, Cut> {
        loop {
            if self.done {
                return Ok(None);
            }
            return match tokio::time::timeout(idle, self.body.next()).await {
                Ok(None) => {
                    self.done = true;
                    Ok(None)
                }
                Ok(Some(Ok(mut chunk))) => {
                    if self.skip > 0 {
                        let n = usize::try_from(self.skip)
                            .unwrap_or(usize::MAX)
                            .min(chunk.len());
                        chunk = chunk.slice(n..);
                        self.skip -= n as u64;
                        if chunk.is_empty() {
                            continue;
                        }
                    }
                    self.seen += chunk.len() as u64;
                    Ok(Some(chunk))
                }
                Ok(Some(Err(e))) => {
                    let (kind, cause) = classify(&e);
                    Err(Cut {
                        after: self.seen,
                        kind,
                        cause,
                    })
                }
                Err(_) => Err(Cut {
                    after: self.seen,
                    kind: TransportKind::Timeout,
                    cause: format!("it stalled: no byte within {} s", idle.as_secs_f64()),
                }),
            };
        }
    }

    /// Goes on with `resp`, the answer to a request for the rest from byte [`Self::seen`]: a
    /// `206` must start there; any other success is the whole file again.
    ///
    /// # Errors
    ///
    /// The range the answer holds, when it starts elsewhere (for the caller's error).
    pub(crate) fn resume(&mut self, resp: reqwest::Response) -> std::result::Result<(), String> {
        if resp.status().as_u16() == 206 {
            let range = resp
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !range.starts_with(&format!("bytes {}-", self.seen)) {
                return Err(format!(
                    "asked for the rest from byte {}, the answer holds the range {range:?}",
                    self.seen
                ));
            }
            self.skip = 0;
        } else {
            self.skip = self.seen;
        }
        self.body = resp.bytes_stream().boxed();
        Ok(())
    }

    /// Ends the body (after a failure that is passed on).
    pub(crate) fn stop(&mut self) {
        self.done = true;
    }
}

/// A download's body that resumes where it was cut.
struct Resuming {
    client: Client,
    url: Url,
    call: String,
    body: ResumableBody,
    retries: Retries,
}

impl Resuming {
    async fn next(&mut self) -> Option<Result<Bytes>> {
        let idle = self.client.inner.answer_timeout;
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

    /// Asks for the rest of the file after a cut.
    async fn resume(&mut self, cut: Cut) -> Result<()> {
        let Some(delay) = self.retries.after(cut.kind, None) else {
            let cause = self.retries.give_up(cut.to_string());
            return Err(self.client.transport_error(&self.call, cut.kind, cause));
        };
        tracing_retry(&self.call, &cut.to_string(), delay);
        tokio::time::sleep(delay).await;
        let from = Some(self.body.seen).filter(|n| *n > 0);
        let resp = self
            .client
            .send_with(
                &mut self.retries,
                Method::GET,
                self.url.clone(),
                &Body::None,
                from,
                &self.call,
                Safe,
            )
            .await?;
        self.body
            .resume(resp)
            .map_err(|detail| self.client.protocol(&self.call, detail))
    }
}

/// Passes a byte stream through, failing it if its total differs from `want`.
pub(crate) fn exact_size<S>(
    inner: S,
    want: Option<u64>,
    what: String,
) -> impl Stream<Item = Result<Bytes>> + Send + 'static
where
    S: Stream<Item = Result<Bytes>> + Send + 'static,
{
    struct St<S> {
        inner: std::pin::Pin<Box<S>>,
        seen: u64,
        want: Option<u64>,
        what: String,
        done: bool,
    }
    let st = St {
        inner: Box::pin(inner),
        seen: 0,
        want,
        what,
        done: false,
    };
    stream::unfold(st, |mut st| async move {
        if st.done {
            return None;
        }
        match st.inner.next().await {
            Some(Ok(chunk)) => {
                st.seen += chunk.len() as u64;
                if let Some(w) = st.want
                    && st.seen > w
                {
                    st.done = true;
                    let e = size_error(&st.what, w, st.seen, "more");
                    return Some((Err(e), st));
                }
                Some((Ok(chunk), st))
            }
            Some(Err(e)) => {
                st.done = true;
                Some((Err(e), st))
            }
            None => {
                st.done = true;
                match st.want {
                    Some(w) if st.seen != w => {
                        let e = size_error(&st.what, w, st.seen, "fewer");
                        Some((Err(e), st))
                    }
                    _ => None,
                }
            }
        }
    })
}

fn size_error(what: &str, want: u64, seen: u64, more_or_fewer: &str) -> Error {
    Error::Io {
        what: format!("{what}: expected {want} bytes"),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("got {more_or_fewer} ({seen} so far)"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_roots() {
        let r = ArtifactRoot::parse("mlflow-artifacts:/1/abc/artifacts").unwrap();
        assert_eq!(r.proxy_path(), Some("1/abc/artifacts"));
        let r =
            ArtifactRoot::parse("mlflow-artifacts://host:5000/1/models/m-1/artifacts/").unwrap();
        assert_eq!(r.proxy_path(), Some("1/models/m-1/artifacts"));
        let r = ArtifactRoot::parse("s3://bucket/x").unwrap();
        assert_eq!(r.proxy_path(), None);
        let e = ArtifactRoot::parse("hdfs://nn/x").unwrap_err().to_string();
        assert!(e.contains("the scheme hdfs:"), "{e}");
        assert!(ArtifactRoot::parse("mlflow-artifacts:/1/../2").is_err());
        assert!(check_rel("a/../b").is_err());
        assert!(check_rel("a//b").is_err());
        assert!(check_rel("dir/a b é.txt").is_ok());
    }

    #[tokio::test]
    async fn exact_size_catches_short_and_long_bodies() {
        let chunks =
            |v: Vec<&'static [u8]>| stream::iter(v.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let ok: Vec<_> = exact_size(chunks(vec![b"ab", b"c"]), Some(3), "t".into())
            .collect()
            .await;
        assert!(ok.iter().all(Result::is_ok));
        let short: Vec<_> = exact_size(chunks(vec![b"ab"]), Some(3), "t".into())
            .collect()
            .await;
        assert!(
            short
                .last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("fewer")
        );
        let long: Vec<_> = exact_size(chunks(vec![b"ab", b"cd"]), Some(3), "t".into())
            .collect()
            .await;
        assert!(
            long.last()
                .unwrap()
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("more")
        );
    }
}
