//! Concurrent producers, one ordered archive: the export's units (runs, logged models) are
//! fetched by up to `jobs` tasks at once, and their commands reach the archive writer in the order
//! the units were scheduled, so the archive is the same byte for byte whatever `jobs` is.
//!
//! Memory stays bounded: each unit's commands pass through a channel of [`UNIT_CHANNEL`] commands,
//! at most `jobs` producers run, and at most `jobs` finished units wait for their turn. A unit that
//! is not at the front of the order blocks once its channel is full; it fetches large artifacts only
//! when it is at the front ([`UnitTx::wait_front`]), so no download stalls half-read for long.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::archive_sink::{ArchiveSink, Cmd};
use crate::error::{Error, Result};

/// Commands a unit may have buffered ahead of the writer (a metric chunk is at most one history
/// page, about 600 KB; a body chunk usually 16 KiB or less).
pub const UNIT_CHANNEL: usize = 8;

/// The end of a unit's channel its producer writes into.
pub struct UnitTx {
    tx: mpsc::Sender<Result<Cmd>>,
    front: watch::Receiver<bool>,
}

impl UnitTx {
    /// Sends one command of the unit; waits while the unit's channel is full.
    pub async fn send(&self, cmd: Cmd) -> Result<()> {
        self.tx
            .send(Ok(cmd))
            .await
            .map_err(|_| Error::Config("the archive writer stopped".into()))
    }

    /// Waits until this unit is the one being written (every unit before it is in the archive).
    pub async fn wait_front(&mut self) {
        // An error means the writer is gone; the next send says so.
        let _ = self.front.wait_for(|f| *f).await;
    }
}

enum Slot {
    Ready(Box<Cmd>),
    Unit {
        rx: mpsc::Receiver<Result<Cmd>>,
        front: watch::Sender<bool>,
        task: AbortOnDrop<()>,
    },
}

/// A spawned task, stopped if its handle is dropped before it was awaited (the transfer failed).
pub(crate) struct AbortOnDrop<T>(pub(crate) Option<JoinHandle<T>>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task's result.
    pub(crate) async fn join(&mut self, what: &str) -> Result<T> {
        match self.0.take() {
            Some(h) => h
                .await
                .map_err(|e| Error::Config(format!("{what}: the task failed: {e}"))),
            None => Err(Error::Config(format!(
                "{what}: the task was already awaited"
            ))),
        }
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// Schedules units and single commands in archive order.
pub struct Scheduler {
    slots: mpsc::Sender<Slot>,
    permits: Arc<Semaphore>,
}

impl Scheduler {
    /// Appends a command that is ready now (an experiment, a registered model and its versions).
    pub async fn send(&mut self, cmd: Cmd) -> Result<()> {
        self.slots
            .send(Slot::Ready(Box::new(cmd)))
            .await
            .map_err(|_| Error::Config("the archive writer stopped".into()))
    }

    /// Appends a unit produced by `produce` on its own task; waits while `jobs` producers run.
    pub async fn spawn<F, Fut>(&mut self, produce: F) -> Result<()>
    where
        F: FnOnce(UnitTx) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Config("the export scheduler closed".into()))?;
        let (tx, rx) = mpsc::channel(UNIT_CHANNEL);
        let (front_tx, front_rx) = watch::channel(false);
        let fut = produce(UnitTx {
            tx: tx.clone(),
            front: front_rx,
        });
        let task = tokio::spawn(async move {
            if let Err(e) = fut.await {
                let _ = tx.send(Err(e)).await;
            }
            drop(permit);
        });
        self.slots
            .send(Slot::Unit {
                rx,
                front: front_tx,
                task: AbortOnDrop(Some(task)),
            })
            .await
            .map_err(|_| Error::Config("the archive writer stopped".into()))
    }
}

/// Runs `plan`, which schedules units on a [`Scheduler`] with up to `jobs` producers at once,
/// while their commands are written to `sink` in schedule order.
pub async fn run_ordered(
    sink: &mut ArchiveSink,
    jobs: usize,
    plan: impl AsyncFnOnce(&mut Scheduler) -> Result<()>,
) -> Result<()> {
    let jobs = jobs.max(1);
    let (slots_tx, mut slots_rx) = mpsc::channel::<Slot>(jobs);
    let mut sched = Scheduler {
        slots: slots_tx,
        permits: Arc::new(Semaphore::new(jobs)),
    };
    let planning = async move {
        plan(&mut sched).await
        // `sched` is dropped here: the writer side sees the end of the slots.
    };
    let writing = async move {
        while let Some(slot) = slots_rx.recv().await {
            match slot {
                Slot::Ready(cmd) => sink.send(*cmd).await?,
                Slot::Unit {
                    mut rx,
                    front,
                    mut task,
                } => {
                    let _ = front.send(true);
                    while let Some(cmd) = rx.recv().await {
                        sink.send(cmd?).await?;
                    }
                    task.join("exporting a unit").await?;
                }
            }
        }
        Ok(())
    };
    tokio::try_join!(planning, writing).map(drop)
}
