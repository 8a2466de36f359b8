//! Concurrent producers, one ordered archive: the export's units (runs, logged models) are
//! fetched by up to `jobs` tasks at once, and their commands reach the archive writer in the order
//! the units were scheduled, so the archive is the same byte for byte whatever `jobs` is.
//!
//! Memory stays bounded: each unit may hold up to its share of [`BUFFER_BUDGET`] bytes of commands
//! ahead of the writer, at most `jobs` producers run, and at most `jobs` finished units wait for
//! their turn. A unit that is not at the front of the order blocks once its share is full; it
//! fetches large artifacts only when it is at the front ([`UnitTx::wait_front`]), so no download
//! stalls half-read for long.
//!
//! The budget is in bytes, not commands: a run's small files and metric chunks (dozens of
//! commands) are fetched whole while earlier units are written, which keeps `jobs` requests in
//! flight. (A budget of 8 commands a unit, the first design, let the units behind the front stall
//! after a few files: a small-file export kept only ~1.4 requests in flight at `--jobs 4`.)

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::task::JoinHandle;

use super::archive_sink::{ArchiveSink, Cmd};
use crate::error::{Error, Result};
use crate::mlflow::http::with_priority;

/// Bytes of queued data all units together may hold (each unit gets `BUFFER_BUDGET / jobs`, at
/// least [`UNIT_MIN_BUDGET`]). Export units and import runs use the same budget.
pub const BUFFER_BUDGET: usize = 32 << 20;
/// The least a unit may hold: one history page's chunk (25,000 points, 600 KB) or a buffered
/// file (an item costing more than a unit's share takes the whole share). With the default 32
/// units in flight, every unit has this.
const UNIT_MIN_BUDGET: usize = 1 << 20;

/// The sending end of a queue bounded by bytes rather than items: each item holds its cost in
/// the queue's budget until the receiver drops the permit that comes with it.
pub(crate) struct BudgetTx<T> {
    tx: mpsc::UnboundedSender<(T, OwnedSemaphorePermit)>,
    budget: Arc<Semaphore>,
    max: usize,
}

/// The receiving end of a [`BudgetTx`]: drop the permit when the item's memory is released.
pub(crate) type BudgetRx<T> = mpsc::UnboundedReceiver<(T, OwnedSemaphorePermit)>;

/// A queue of one unit's share of [`BUFFER_BUDGET`] when `jobs` units are in flight.
pub(crate) fn budget_channel<T>(jobs: usize) -> (BudgetTx<T>, BudgetRx<T>) {
    let max = (BUFFER_BUDGET / jobs.max(1)).max(UNIT_MIN_BUDGET);
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Arc::new(Semaphore::new(max));
    (BudgetTx { tx, budget, max }, rx)
}

impl<T> Clone for BudgetTx<T> {
    fn clone(&self) -> Self {
        Self {
            tx: self.tx.clone(),
            budget: Arc::clone(&self.budget),
            max: self.max,
        }
    }
}

impl<T> BudgetTx<T> {
    /// Queues `item` costing `cost` bytes, waiting while the budget is spent; `Err` if the
    /// receiver is gone. (A cost above the whole budget counts as the whole budget.)
    pub(crate) async fn send(&self, item: T, cost: usize) -> std::result::Result<(), ()> {
        let n = u32::try_from(cost.min(self.max)).unwrap_or(u32::MAX);
        let permit = Arc::clone(&self.budget)
            .acquire_many_owned(n)
            .await
            .map_err(drop)?;
        self.tx.send((item, permit)).map_err(drop)
    }
}

/// What a command costs in a unit's budget: about the memory it holds.
fn cost(cmd: &Cmd) -> usize {
    let held = match cmd {
        Cmd::Chunk(c) => c.points.len() * std::mem::size_of::<crate::format::model::Point>(),
        Cmd::Body(b) => b.len(),
        Cmd::BeginArtifact(path, _) => path.len(),
        // About the memory free-form records hold: their size as JSON (the dataset exporter,
        // which measured each chunk, gives it with `send_costing`).
        Cmd::DatasetRecords(c) => serde_json::to_vec(c).map_or(0, |v| v.len()),
        Cmd::BeginTrace(t) => serde_json::to_vec(&t.assessments).map_or(0, |v| v.len()),
        _ => 0,
    };
    held + 256
}

/// The end of a unit's channel its producer writes into.
pub struct UnitTx {
    /// The unit's commands, or the error that ended its producer.
    cmds: BudgetTx<Result<Cmd>>,
    front: watch::Receiver<bool>,
}

impl UnitTx {
    /// Sends one command of the unit; waits while the unit's budget is spent.
    pub async fn send(&self, cmd: Cmd) -> Result<()> {
        let cost = cost(&cmd);
        self.send_costing(cmd, cost).await
    }

    /// [`send`](Self::send) of a command whose memory the sender measured (`bytes`).
    pub async fn send_costing(&self, cmd: Cmd, bytes: usize) -> Result<()> {
        self.cmds
            .send(Ok(cmd), bytes)
            .await
            .map_err(|()| Error::Internal("the archive writer stopped".into()))
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
        rx: BudgetRx<Result<Cmd>>,
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
            // A task that panicked raises its panic again here (a bug, not an error to report).
            Some(h) => match h.await {
                Ok(v) => Ok(v),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => Err(Error::Internal(format!("{what}: the task failed: {e}"))),
            },
            None => Err(Error::Internal(format!(
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
    jobs: usize,
    /// Units scheduled so far: the next one's place in the order.
    units: u64,
}

impl Scheduler {
    /// Appends a command that is ready now (an experiment, a registered model and its versions).
    pub async fn send(&mut self, cmd: Cmd) -> Result<()> {
        self.slots
            .send(Slot::Ready(Box::new(cmd)))
            .await
            .map_err(|_| Error::Internal("the archive writer stopped".into()))
    }

    /// Appends a unit produced by `produce` on its own task; waits while `jobs` producers run.
    /// The unit's requests wait for a slot of their client by its place in the order
    /// ([`with_priority`]): the front unit's go first, so units finish about in the order they
    /// are written and the archive streams out steadily.
    pub async fn spawn<F, Fut>(&mut self, produce: F) -> Result<()>
    where
        F: FnOnce(UnitTx) -> Fut,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| Error::Internal("the export scheduler closed".into()))?;
        let (tx, rx) = budget_channel(self.jobs);
        let (front_tx, front_rx) = watch::channel(false);
        let fut = produce(UnitTx {
            cmds: tx.clone(),
            front: front_rx,
        });
        self.units += 1;
        let fut = with_priority(self.units, fut);
        let task = tokio::spawn(async move {
            if let Err(e) = fut.await {
                let _ = tx.send(Err(e), 0).await;
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
            .map_err(|_| Error::Internal("the archive writer stopped".into()))
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
        jobs,
        units: 0,
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
                    while let Some((cmd, permit)) = rx.recv().await {
                        drop(permit);
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::format::WriterBuilder;
    use crate::mlflow::http::current_priority;

    #[tokio::test]
    async fn each_unit_waits_for_slots_by_its_place_in_the_order() {
        let mut sink = ArchiveSink::start(std::io::sink(), WriterBuilder::new());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let planned = Arc::clone(&seen);
        run_ordered(&mut sink, 2, async move |s: &mut Scheduler| {
            planned.lock().unwrap().push(current_priority());
            for _ in 0..3 {
                let seen = Arc::clone(&planned);
                s.spawn(|_unit| async move {
                    seen.lock().unwrap().push(current_priority());
                    Ok(())
                })
                .await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        let mut got = seen.lock().unwrap().clone();
        got.sort_unstable();
        // The plan's own requests first (0), then the units in order.
        assert_eq!(got, [0, 1, 2, 3]);
    }

    #[tokio::test]
    #[should_panic(expected = "a bug in a task")]
    async fn a_task_that_panicked_raises_its_panic_again() {
        let mut task = AbortOnDrop(Some(tokio::spawn(async { panic!("a bug in a task") })));
        let _ = task.join("the task").await;
    }

    #[tokio::test]
    async fn a_task_awaited_twice_is_an_internal_error() {
        let mut task = AbortOnDrop(Some(tokio::spawn(async { 1 })));
        assert_eq!(task.join("t").await.unwrap(), 1);
        let err = task.join("t").await.unwrap_err();
        assert!(matches!(err, crate::Error::Internal(_)), "{err}");
    }
}
