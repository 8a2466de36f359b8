//! An artifact's body read again, for an upload that must be sent again whole.
//!
//! Large artifacts stream from the source into the upload and are never held whole, so an upload
//! cut midway (or refused with a transient status after its body was sent) can only be repeated
//! from a new stream of the same bytes. Where that stream comes from depends on the source:
//! - a copy downloads the file again from the source server ([`Replay::server`]);
//! - an import from a file (an archive, a tree or a zip of the Python tool) reads the input again
//!   up to that artifact ([`Replay::rescan`]): costly, but only on a failure;
//! - an import from standard input cannot read its input again: there is no replay, and the run
//!   stays unfinished, to be completed by running the same import again.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, Stream, StreamExt};

use super::archive_source::{ArchiveSource, Event};
use super::destination::Destination;
use crate::error::{Error, Result};
use crate::format::Record;
use crate::mlflow::http::Retries;
use crate::mlflow::{ArtifactRoot, Client};

/// Whose artifact a body is, by source id.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Owner {
    /// A run's artifact (the source run id).
    Run(String),
    /// A logged model's artifact (the source model id).
    LoggedModel(String),
}

/// Opens an artifact's body again.
pub trait BodyReplay: Send + Sync {
    /// A new stream of the whole body of `owner`'s artifact `path`, of `size` bytes.
    fn reopen<'a>(
        &'a self,
        owner: &'a Owner,
        path: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Result<Bytes>>>>;
}

/// A shared [`BodyReplay`], as import options carry it.
#[derive(Clone)]
pub struct Replay(pub Arc<dyn BodyReplay>);

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Replay")
    }
}

impl Replay {
    /// Downloads the artifact again from the source server.
    pub fn server(source: Client) -> Self {
        Replay(Arc::new(FromServer(source)))
    }

    /// Reads the input again from its start, with `open`, up to the artifact.
    pub fn rescan(open: impl Fn() -> Result<Box<dyn Read + Send>> + Send + Sync + 'static) -> Self {
        Replay(Arc::new(Rescan(Box::new(open))))
    }
}

struct FromServer(Client);

impl BodyReplay for FromServer {
    fn reopen<'a>(
        &'a self,
        owner: &'a Owner,
        path: &'a str,
        size: u64,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Result<Bytes>>>> {
        Box::pin(async move {
            let root = match owner {
                Owner::Run(id) => {
                    ArtifactRoot::parse(&self.0.get_run(id).await?.info.artifact_uri)?
                }
                Owner::LoggedModel(id) => self.0.get_logged_model(id).await?.artifact_root()?,
            };
            Ok(self
                .0
                .download_artifact(&root, path, Some(size))
                .await?
                .body)
        })
    }
}

type Open = Box<dyn Fn() -> Result<Box<dyn Read + Send>> + Send + Sync>;

struct Rescan(Open);

impl BodyReplay for Rescan {
    fn reopen<'a>(
        &'a self,
        owner: &'a Owner,
        path: &'a str,
        _size: u64,
    ) -> BoxFuture<'a, Result<BoxStream<'static, Result<Bytes>>>> {
        Box::pin(async move {
            let mut source = ArchiveSource::start((self.0)()?);
            let mut current: Option<Owner> = None;
            loop {
                match source.next().await {
                    Some(Ok(Event::Record(Record::Run(r)))) => current = Some(Owner::Run(r.run_id)),
                    Some(Ok(Event::Record(Record::LoggedModel(m)))) => {
                        current = Some(Owner::LoggedModel(m.model_id));
                    }
                    Some(Ok(Event::Record(Record::Sealed(_)))) => current = None,
                    Some(Ok(Event::Artifact(a)))
                        if a.path == path && current.as_ref() == Some(owner) =>
                    {
                        return Ok(body_of(source).boxed());
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => {
                        return Err(Error::Input(format!(
                            "reading the input again: artifact {path:?} of {owner:?} is not in it"
                        )));
                    }
                }
            }
        })
    }
}

/// The current artifact's body events, as a stream that ends with the artifact.
fn body_of(source: ArchiveSource) -> impl Stream<Item = Result<Bytes>> + Send + 'static {
    stream::unfold(Some(source), |s| async move {
        let mut source = s?;
        match source.next().await {
            Some(Ok(Event::Body(b))) => Some((Ok(b), Some(source))),
            Some(Ok(Event::ArtifactEnd)) => None,
            Some(Ok(_)) => Some((
                Err(Error::Internal("archive events out of order".into())),
                None,
            )),
            Some(Err(e)) => Some((Err(e), None)),
            None => Some((Err(super::import::ended_inside_an_artifact()), None)),
        }
    })
}

/// Uploads a body of `size` bytes, sending it again from `replay` (after a backoff) while the
/// failure is transient and the retries last. Without a replay, a failure is final.
pub(crate) async fn upload<S>(
    client: &impl Destination,
    root: &ArtifactRoot,
    path: &str,
    size: u64,
    first: S,
    replay: Option<(&Replay, &Owner)>,
) -> Result<()>
where
    S: Stream<Item = Result<Bytes>> + Send + 'static,
{
    let mut err = match client.upload(root, path, size, first.boxed()).await {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let Some((replay, owner)) = replay else {
        return Err(if err.is_retryable() {
            Error::About {
                // The artifact is named here: the caller's `about` keeps an object already named.
                object: format!(
                    "artifact {path:?}: its body came from an input that cannot be read again (standard input), so it cannot be sent again: run the same import again to finish the run"
                ),
                source: Box::new(err),
            }
        } else {
            err
        });
    };
    let mut retries = Retries::new(&client.retry_config());
    loop {
        if !err.is_retryable() {
            return Err(err);
        }
        let Some(delay) = retries.backoff.next_delay(None) else {
            return Err(err);
        };
        crate::mlflow::http::tracing_retry(&format!("upload of {path:?}"), &err.to_string(), delay);
        tokio::time::sleep(delay).await;
        let body = replay.0.reopen(owner, path, size).await?;
        match client.upload(root, path, size, body).await {
            Ok(()) => return Ok(()),
            Err(e) => err = e,
        }
    }
}
