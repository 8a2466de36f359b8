//! A run's writer: its metric batches, uploads and final update, queued within the transfer's
//! byte budget and done in order by a task of its own.

use super::*;

/// A write of a run's content, done by the run's worker task.
pub(super) enum Op {
    /// One `log-batch` (more if the params or tags exceed its limits).
    Batch {
        metrics: Vec<Metric>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    },
    Upload {
        path: String,
        size: u64,
        body: mpsc::Receiver<Result<Bytes>>,
        owner: Owner,
    },
    UploadBytes {
        path: String,
        data: Bytes,
    },
    /// The run's status and end time, once everything else of it is written.
    Update(UpdateRun),
}

impl Op {
    /// What the op holds in memory while it waits for the worker (an estimate).
    pub(super) fn cost(&self) -> usize {
        256 + match self {
            Op::Batch {
                metrics,
                params,
                tags,
            } => {
                let kv = |v: &[KeyValue]| -> usize {
                    v.iter().map(|t| 32 + t.key.len() + t.value.len()).sum()
                };
                metrics.iter().map(|m| 64 + m.key.len()).sum::<usize>() + kv(params) + kv(tags)
            }
            Op::Upload { path, .. } => path.len(),
            Op::UploadBytes { path, data } => path.len() + data.len(),
            Op::Update(_) => 0,
        }
    }
}

/// Artifacts up to this size are read from the archive into memory and queued whole (and
/// retried on transient failures); larger ones stream from the archive to the server while the
/// reader waits for them.
pub(super) const BUFFERED_FILE_MAX: u64 = 1 << 20;

/// The queue of a run's writes: each op holds its cost in the run's share of the transfer's
/// buffer budget until it is done, so the reader goes on to the next runs while earlier ones are
/// written, and `jobs` runs write at once.
pub(super) struct RunOps(BudgetTx<Op>);

impl RunOps {
    pub(super) fn new(jobs: usize) -> (Self, BudgetRx<Op>) {
        let (tx, rx) = budget_channel(jobs);
        (Self(tx), rx)
    }

    /// A queue whose worker is gone (every send fails).
    pub(super) fn closed() -> Self {
        Self::new(1).0
    }

    /// Queues `op`, waiting while the run's budget is spent; `Err` if the worker stopped.
    pub(super) async fn send(&self, op: Op) -> std::result::Result<(), ()> {
        let cost = op.cost();
        self.0.send(op, cost).await
    }
}

/// What a run's worker wrote.
#[derive(Debug, Default)]
pub(super) struct Written {
    pub(super) metric_points: u64,
    pub(super) artifacts: u64,
    pub(super) artifact_bytes: u64,
}

/// Writes a run's metric batches and artifacts in order, on its own task, so up to `jobs` runs
/// are written at once while the archive is read front to back.
pub(super) async fn run_worker<D: Destination>(
    client: D,
    dst: String,
    root: ArtifactRoot,
    mut ops: BudgetRx<Op>,
    progress: Option<Arc<Progress>>,
    replay: Option<Replay>,
) -> Result<Written> {
    let mut w = Written::default();
    // The permit is held until the op is done: its data is in memory until then.
    while let Some((op, _permit)) = ops.recv().await {
        match op {
            Op::Batch {
                metrics,
                params,
                tags,
            } => {
                client.log_batch(&dst, &metrics, &params, &tags).await?;
                w.metric_points += metrics.len() as u64;
                tick(&progress, Counter::Points, metrics.len() as u64);
            }
            Op::Upload {
                path,
                size,
                body,
                owner,
            } => {
                tick(&progress, Counter::Files, 1);
                let replay = replay.as_ref().map(|r| (r, &owner));
                crate::transfer::replay::upload(
                    &client,
                    &root,
                    &path,
                    size,
                    tokio_stream(body),
                    replay,
                )
                .await
                .map_err(|e| e.about(format!("artifact {path:?}")))?;
                w.artifacts += 1;
                w.artifact_bytes += size;
            }
            Op::UploadBytes { path, data } => {
                let n = data.len() as u64;
                tick(&progress, Counter::Files, 1);
                tick(&progress, Counter::Bytes, n);
                client
                    .upload_bytes(&root, &path, data)
                    .await
                    .map_err(|e| e.about(format!("artifact {path:?}")))?;
                w.artifacts += 1;
                w.artifact_bytes += n;
            }
            Op::Update(u) => {
                client.update_run(&u).await?;
            }
        }
    }
    Ok(w)
}

/// A receiver as a stream.
pub(super) fn tokio_stream(
    mut rx: mpsc::Receiver<Result<Bytes>>,
) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

impl<D: Destination> Importer<'_, D> {
    /// The error that stopped the open run's worker.
    pub(super) async fn run_op_error(&mut self) -> Result<()> {
        let Open::Run { worker, ops, .. } = &mut self.open else {
            return Ok(());
        };
        // Closed first, so a worker that is still taking writes ends.
        drop(std::mem::replace(ops, RunOps::closed()));
        Err(match worker.join("writing the run").await {
            Ok(Err(e)) | Err(e) => e,
            Ok(Ok(_)) => Error::Internal("the run's writer stopped early".into()),
        })
    }

    /// Queues a write for the open run's worker; if the worker stopped, returns its error.
    pub(super) async fn run_op(&mut self, op: Op) -> Result<()> {
        let Open::Run { ops, .. } = &mut self.open else {
            return Ok(());
        };
        if ops.send(op).await.is_ok() {
            return Ok(());
        }
        self.run_op_error().await
    }
}
