//! A run's task: it makes the destination run, writes its metric batches and uploads (queued
//! by the reader within the transfer's byte budget, done in order), sets its status, logs its
//! inputs and outputs, and completes it once its parent is complete. Nothing of a run waits on
//! the reader's path: the reader goes on to the next runs while up to `jobs` tasks work, and a
//! child's task waits for its parent's (for its id, then for its completion).

use tokio::sync::watch;

use super::lease::LeaseHandle;
use super::*;
use crate::transfer::sync::DIGEST;

/// Where a run of this import stands, as its task publishes it (for its children's tasks, and
/// for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Stage {
    /// Its destination run is not made yet.
    Pending,
    /// Made (its destination id and artifact root), being written.
    Made { id: String, artifact_uri: String },
    /// Marked complete; `winner` stands for the source run (another import's run when that one
    /// completed the same source run first).
    Complete { id: String, winner: String },
    /// Its task ended without completing it: it waits for what the reader brings later (a
    /// logged model, its parent's completion), or it failed.
    Held { id: Option<String> },
}

impl Stage {
    /// The destination run, once made.
    pub(super) fn id(&self) -> Option<&str> {
        match self {
            Stage::Pending | Stage::Held { id: None } => None,
            Stage::Made { id, .. } | Stage::Complete { id, .. } | Stage::Held { id: Some(id) } => {
                Some(id)
            }
        }
    }
}

/// Waits until the stage published on `rx` satisfies `done`; a task that ended without reaching
/// it reads as [`Stage::Held`].
pub(super) async fn reached(
    rx: &mut watch::Receiver<Stage>,
    done: impl Fn(&Stage) -> bool,
) -> Stage {
    loop {
        let now = rx.borrow_and_update().clone();
        if done(&now) {
            return now;
        }
        if rx.changed().await.is_err() {
            let last = rx.borrow().clone();
            if done(&last) {
                return last;
            }
            return Stage::Held {
                id: last.id().map(str::to_string),
            };
        }
    }
}

/// How a run's task begins.
pub(super) enum Start {
    /// A new run: made with this request, its lease then held.
    Create(CreateRun),
    /// A run that exists (one brought up to date).
    Existing { id: String, artifact_uri: String },
}

/// What a run's task is given besides its writes.
pub(super) struct RunTask<D> {
    pub(super) client: D,
    /// The source run's id.
    pub(super) src: String,
    pub(super) start: Start,
    /// The parent's stage, when the parent is a run of this import not complete yet: the
    /// run completes only after it.
    pub(super) parent: Option<watch::Receiver<Stage>>,
    /// Whether the parent tag is the task's to set (the parent's id was not known when the run
    /// began): it rides with the first metric batch.
    pub(super) parent_tag: bool,
    pub(super) leases: LeaseHandle,
    pub(super) progress: Option<Arc<Progress>>,
    pub(super) replay: Option<Replay>,
}

/// The end of a run: what the reader read at its seal.
pub(super) struct Finish {
    pub(super) status: String,
    pub(super) end_time: Option<i64>,
    /// Set again when a run is brought up to date (a new run got its name when it was made).
    pub(super) run_name: Option<String>,
    pub(super) datasets: Vec<DatasetInput>,
    pub(super) models: Vec<ModelInput>,
    /// Outputs whose logged models are on the destination (the others wait for theirs).
    pub(super) outputs: Vec<ModelOutput>,
    pub(super) then: Then,
}

/// What follows a run's writes.
pub(super) enum Then {
    /// A new run: completed after its parent, unless it waits for a logged model.
    Complete {
        experiment: String,
        deleted: bool,
        /// Points or outputs of it wait for a logged model later in the archive: the reader
        /// completes it when that arrives.
        waits: bool,
        /// Into a Databricks workspace: the directory its notebook goes to.
        notebook_dir: Option<String>,
    },
    /// A run brought up to date: its new digest, then its lifecycle.
    Update { digest: String, deleted: bool },
}

/// How a run's task ended.
pub(super) enum End {
    /// Complete; `winner` stands for the source run.
    Complete { winner: String },
    /// Written, not completed: it waits (the reader completes it), or the reader stopped
    /// before its seal.
    Held,
    /// Brought up to date.
    Updated,
}

/// What a run's task did.
pub(super) struct Outcome {
    pub(super) dst: String,
    /// Its artifact root.
    pub(super) artifact_uri: String,
    pub(super) written: Written,
    pub(super) end: End,
    /// Its notebook placed in the destination workspace, or why not.
    pub(super) notebook: Option<std::result::Result<(), String>>,
}

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
    /// An `MLmodel` file of the run, whose lines naming the run's source id or root are pointed
    /// at the run made (the rest was pointed by the reader).
    UploadMlmodel {
        path: String,
        data: Vec<u8>,
    },
    /// The run's end, once everything else of it is written.
    Finish(Box<Finish>),
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
            Op::UploadMlmodel { path, data } => path.len() + data.len(),
            Op::Finish(_) => 0,
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

/// A run's task (see the module): makes the run, does its writes in order, then its end.
/// Whatever happens, its stage ends published: complete, or held.
pub(super) async fn run_task<D: Destination>(
    t: RunTask<D>,
    stage: watch::Sender<Stage>,
    ops: BudgetRx<Op>,
) -> Result<Outcome> {
    let result = run_task_inner(t, &stage, ops).await;
    if !matches!(*stage.borrow(), Stage::Complete { .. }) {
        let id = stage.borrow().id().map(str::to_string);
        stage.send_replace(Stage::Held { id });
    }
    result
}

async fn run_task_inner<D: Destination>(
    t: RunTask<D>,
    stage: &watch::Sender<Stage>,
    mut ops: BudgetRx<Op>,
) -> Result<Outcome> {
    let RunTask {
        client,
        src,
        start,
        mut parent,
        parent_tag,
        leases,
        progress,
        replay,
    } = t;
    let (dst, artifact_uri) = match start {
        Start::Create(req) => {
            let made = client.create_run(&req).await?;
            let lease = req.tags.iter().find(|t| t.key == LEASE);
            leases.hold(&made.info.run_id, lease.map_or("", |t| t.value.as_str()));
            (made.info.run_id, made.info.artifact_uri)
        }
        Start::Existing { id, artifact_uri } => (id, artifact_uri),
    };
    stage.send_replace(Stage::Made {
        id: dst.clone(),
        artifact_uri: artifact_uri.clone(),
    });
    let root = ArtifactRoot::parse(&artifact_uri)
        .map_err(|e| Error::Config(format!("the destination run's {e}")))?;
    // Whether the parent tag was sent.
    let mut parent_tagged = !parent_tag;
    let mut w = Written::default();
    let mut finish: Option<Box<Finish>> = None;
    // The permit is held until the op is done: its data is in memory until then.
    while let Some((op, _permit)) = ops.recv().await {
        match op {
            Op::Batch {
                metrics,
                params,
                mut tags,
            } => {
                if !parent_tagged {
                    tags.push(KeyValue::new(PARENT_RUN, parent_made(&mut parent).await?));
                    parent_tagged = true;
                }
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
            Op::UploadMlmodel { path, data } => {
                // Its lines naming this run's source id or root now name the run made.
                let runs = HashMap::from([(src.clone(), dst.clone())]);
                let rewrites = super::bodies::Rewrites {
                    runs: Some(&runs),
                    roots: vec![(src.as_str(), artifact_uri.as_str())],
                    ..Default::default()
                };
                let data = Bytes::from(super::bodies::patch_mlmodel_with(&data, &rewrites));
                put_small(&client, &root, &path, data, &progress, &mut w).await?;
            }
            Op::UploadBytes { path, data } => {
                put_small(&client, &root, &path, data, &progress, &mut w).await?;
            }
            Op::Finish(f) => finish = Some(f),
        }
    }
    let Some(f) = finish else {
        // The reader stopped before the run's seal.
        return Ok(Outcome {
            dst,
            artifact_uri,
            written: w,
            end: End::Held,
            notebook: None,
        });
    };
    if !parent_tagged {
        let id = parent_made(&mut parent).await?;
        client.set_run_tag(&dst, PARENT_RUN, &id).await?;
    }
    client
        .update_run(&UpdateRun {
            run_id: dst.clone(),
            status: Some(f.status),
            end_time: f.end_time,
            run_name: f.run_name,
        })
        .await?;
    if !f.datasets.is_empty() || !f.models.is_empty() {
        client.log_inputs(&dst, &f.datasets, &f.models).await?;
    }
    for o in f.outputs {
        client.log_outputs(&dst, &[o]).await?;
    }
    let mut notebook = None;
    let end = match f.then {
        Then::Update { digest, deleted } => {
            client.set_run_tag(&dst, DIGEST, &digest).await?;
            // Last: a kill before it leaves an active run that a sync compares as such.
            if deleted {
                client.delete_run(&dst).await?;
            }
            // (Its children complete after it, as after a new run.)
            stage.send_replace(Stage::Complete {
                id: dst.clone(),
                winner: dst.clone(),
            });
            End::Updated
        }
        Then::Complete {
            experiment,
            deleted,
            waits,
            notebook_dir,
        } => {
            if let Some(dir) = notebook_dir {
                let root = client.get_run(&dst).await?.info.artifact_uri;
                notebook = Some(
                    client
                        .place_notebook(&dst, &root, &dir)
                        .await
                        .map(drop)
                        .map_err(|e| e.to_string()),
                );
            }
            // A run completes only after its parent: were the parent redone by a later import,
            // a complete child would point at the abandoned one.
            let parent_done = match parent.as_mut() {
                None => Some(None),
                Some(rx) => match reached(rx, |s| {
                    matches!(s, Stage::Complete { .. } | Stage::Held { .. })
                })
                .await
                {
                    Stage::Complete { id, winner } => Some(Some((id, winner))),
                    _ => None,
                },
            };
            match parent_done {
                Some(parent) if !waits => {
                    if let Some((made, winner)) = parent
                        && made != winner
                    {
                        // A concurrent import's run stands for the parent.
                        client.set_run_tag(&dst, PARENT_RUN, &winner).await?;
                    }
                    let winner =
                        super::lineage::complete(&client, &experiment, &src, &dst, deleted).await?;
                    leases.release(&dst);
                    stage.send_replace(Stage::Complete {
                        id: dst.clone(),
                        winner: winner.clone(),
                    });
                    End::Complete { winner }
                }
                // It waits for a logged model, or for a parent that waits (or failed): the
                // reader completes it, or leaves it to the next import.
                _ => End::Held,
            }
        }
    };
    Ok(Outcome {
        dst,
        artifact_uri,
        written: w,
        end,
        notebook,
    })
}

/// Uploads one small file of a run, held in memory.
async fn put_small<D: Destination>(
    client: &D,
    root: &ArtifactRoot,
    path: &str,
    data: Bytes,
    progress: &Option<Arc<Progress>>,
    w: &mut Written,
) -> Result<()> {
    let n = data.len() as u64;
    tick(progress, Counter::Files, 1);
    tick(progress, Counter::Bytes, n);
    client
        .upload_bytes(root, path, data)
        .await
        .map_err(|e| e.about(format!("artifact {path:?}")))?;
    w.artifacts += 1;
    w.artifact_bytes += n;
    Ok(())
}

/// The id of the parent's destination run, once its task made it.
async fn parent_made(parent: &mut Option<watch::Receiver<Stage>>) -> Result<String> {
    let Some(rx) = parent.as_mut() else {
        return Err(Error::Internal("no parent to wait for".into()));
    };
    match reached(rx, |s| !matches!(s, Stage::Pending)).await.id() {
        Some(id) => Ok(id.to_string()),
        // The parent failed before its run was made: the reader gives this run up too.
        None => Err(Error::Internal("its parent run was not made".into())),
    }
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
