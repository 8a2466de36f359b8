//! The bridge from async sources to the sync archive writer: the writer runs on a blocking
//! thread and takes commands from a bounded channel, so artifact bodies flow through with
//! backpressure and at most a few chunks in flight.

use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::progress::{Counter, Progress};
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::format::{WriteSummary, WriterBuilder};

/// Commands in flight at most (each at most one body chunk, typically 64 KiB or less).
const CHANNEL: usize = 16;

/// One step for the writer.
#[derive(Debug)]
pub enum Cmd {
    /// An experiment unit.
    Experiment(rec::Experiment),
    /// Open a run unit.
    BeginRun(rec::Run),
    /// A metric chunk of the open run.
    Chunk(rec::MetricChunk),
    /// Open a logged model unit.
    BeginLoggedModel(rec::LoggedModel),
    /// Open a registered model unit.
    BeginRegisteredModel(rec::RegisteredModel),
    /// A version of the open registered model.
    ModelVersion(rec::ModelVersion),
    /// Start an artifact of a size.
    BeginArtifact(String, u64),
    /// Bytes of the artifact.
    Body(Bytes),
    /// End the artifact.
    EndArtifact,
    /// Seal the open unit.
    EndUnit,
}

/// An archive being written on a blocking thread.
pub struct ArchiveSink {
    tx: Option<mpsc::Sender<Cmd>>,
    handle: Option<JoinHandle<Result<WriteSummary>>>,
    progress: Option<Arc<Progress>>,
}

impl ArchiveSink {
    /// Starts writing an archive to `out` (on a blocking thread).
    pub fn start<W: Write + Send + 'static>(out: W, builder: WriterBuilder) -> Self {
        let (tx, mut rx) = mpsc::channel::<Cmd>(CHANNEL);
        let handle = tokio::task::spawn_blocking(move || {
            let mut w = builder.build(out)?;
            while let Some(cmd) = rx.blocking_recv() {
                match cmd {
                    Cmd::Experiment(e) => w.experiment(&e)?,
                    Cmd::BeginRun(r) => w.begin_run(&r)?,
                    Cmd::Chunk(c) => w.metric_chunk(&c)?,
                    Cmd::BeginLoggedModel(m) => w.begin_logged_model(&m)?,
                    Cmd::BeginRegisteredModel(m) => w.begin_registered_model(&m)?,
                    Cmd::ModelVersion(v) => w.model_version(&v)?,
                    Cmd::BeginArtifact(p, n) => w.begin_artifact(&p, n)?,
                    Cmd::Body(b) => w.write_body(&b)?,
                    Cmd::EndArtifact => w.end_artifact()?,
                    Cmd::EndUnit => w.end_unit()?,
                }
            }
            let (mut out, summary) = w.finish()?;
            out.flush()
                .map_err(|e| Error::io("flushing the archive", e))?;
            Ok(summary)
        });
        ArchiveSink {
            tx: Some(tx),
            handle: Some(handle),
            progress: None,
        }
    }

    /// Counts what is written into `progress`.
    pub fn set_progress(&mut self, progress: Arc<Progress>) {
        self.progress = Some(progress);
    }

    /// Sends one command; if the writer failed, returns its error.
    pub async fn send(&mut self, cmd: Cmd) -> Result<()> {
        if let Some(p) = &self.progress {
            match &cmd {
                Cmd::Experiment(_) => p.add(Counter::Experiments, 1),
                Cmd::BeginRun(_) => p.add(Counter::Runs, 1),
                Cmd::Chunk(c) => p.add(Counter::Points, c.points.len() as u64),
                Cmd::BeginLoggedModel(_) => p.add(Counter::LoggedModels, 1),
                Cmd::ModelVersion(_) => p.add(Counter::Versions, 1),
                Cmd::BeginArtifact(..) => p.add(Counter::Files, 1),
                Cmd::Body(b) => p.add(Counter::Bytes, b.len() as u64),
                Cmd::BeginRegisteredModel(_) | Cmd::EndArtifact | Cmd::EndUnit => {}
            }
        }
        let sent = match &self.tx {
            Some(tx) => tx.send(cmd).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        self.tx = None;
        Err(self
            .join()
            .await
            .err()
            .unwrap_or_else(|| Error::Config("the archive writer stopped early".into())))
    }

    async fn join(&mut self) -> Result<WriteSummary> {
        match self.handle.take() {
            Some(h) => h
                .await
                .map_err(|e| Error::Config(format!("the archive writer thread failed: {e}")))?,
            None => Err(Error::Config("the archive writer already stopped".into())),
        }
    }

    /// Writes the trailer and finishes the archive. Dropping the sink instead leaves the output
    /// without a trailer: not an archive.
    pub async fn finish(mut self) -> Result<WriteSummary> {
        self.tx = None;
        self.join().await
    }
}
