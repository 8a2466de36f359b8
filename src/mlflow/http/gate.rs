//! The gate under a client's concurrency limit: a counting semaphore whose waiters are served
//! by priority, then in arrival order.
//!
//! Why priorities: an export fetches up to 32 units at once, but writes them in order. With a
//! first-come gate, every unit's requests queue behind every other's, so the unit at the front
//! of the order finishes about when all of them do, and the archive grows in bursts: through a
//! pipe, the import's server idled while the export read (the small set at 20 ms: the
//! destination saw no request for the first 6 s of a 17 s pipe). The export runs each unit under
//! [`with_priority`] with its place in the order, so the front unit's requests go first and the
//! units behind it use what is left: the archive streams out in order while the same number of
//! requests stay in flight.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

tokio::task_local! {
    static PRIORITY: u64;
}

/// Runs `f` with its requests' priority: a lower number goes first when requests wait for a
/// slot of their client. Requests outside any such scope have priority 0 (first): what plans
/// the work (listing runs, say) goes ahead of the work it plans.
pub async fn with_priority<F: Future>(priority: u64, f: F) -> F::Output {
    PRIORITY.scope(priority, f).await
}

/// The priority of requests sent from the current task.
pub(crate) fn current_priority() -> u64 {
    PRIORITY.try_with(|p| *p).unwrap_or(0)
}

#[derive(Debug)]
pub(crate) struct Gate {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    available: usize,
    waiters: BinaryHeap<Waiter>,
    arrivals: u64,
}

#[derive(Debug)]
struct Waiter {
    priority: u64,
    arrival: u64,
    wake: oneshot::Sender<()>,
}

impl Waiter {
    fn key(&self) -> (u64, u64) {
        (self.priority, self.arrival)
    }
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    /// The heap's greatest is the first to serve: the least priority number, then the earliest.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key().cmp(&self.key())
    }
}

/// A slot of the gate; dropping it gives it back (to the first waiter, if any).
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    gate: &'a Gate,
}

impl Permit<'_> {
    /// Drops the slot without giving it back: the gate is one smaller.
    pub(crate) fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.gate.add_permits(1);
    }
}

/// A waiter's end while it waits: if its future is dropped after a slot was handed to it, the
/// slot goes back.
struct Waiting<'a> {
    gate: &'a Gate,
    wake: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(mut wake) = self.wake.take() {
            wake.close();
            if wake.try_recv().is_ok() {
                self.gate.add_permits(1);
            }
        }
    }
}

impl Gate {
    pub(crate) fn new(permits: usize) -> Self {
        Gate {
            inner: Mutex::new(Inner {
                available: permits,
                ..Inner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every statement leaves the state consistent: a panic elsewhere cannot break it.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a slot, served by the current task's priority ([`with_priority`]).
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        let wake = {
            let mut g = self.lock();
            if g.available > 0 {
                // Slots are free only while nobody waits (a freed slot goes to a waiter first).
                g.available -= 1;
                return Permit { gate: self };
            }
            let (tx, rx) = oneshot::channel();
            g.arrivals += 1;
            let arrival = g.arrivals;
            g.waiters.push(Waiter {
                priority: current_priority(),
                arrival,
                wake: tx,
            });
            rx
        };
        let mut waiting = Waiting {
            gate: self,
            wake: Some(wake),
        };
        if let Some(wake) = waiting.wake.as_mut() {
            // The sender lives in the gate's heap until it is used: no error but a bug.
            let _ = wake.await;
        }
        waiting.wake = None;
        Permit { gate: self }
    }

    /// Adds `n` slots: each goes to the first waiter still waiting, or becomes free.
    pub(crate) fn add_permits(&self, n: usize) {
        let mut g = self.lock();
        for _ in 0..n {
            loop {
                match g.waiters.pop() {
                    // A waiter whose future was dropped refuses it: the next one.
                    Some(w) => {
                        if w.wake.send(()).is_ok() {
                            break;
                        }
                    }
                    None => {
                        g.available += 1;
                        break;
                    }
                }
            }
        }
    }

    /// Removes up to `n` free slots; returns how many (the others are in use).
    pub(crate) fn forget_permits(&self, n: usize) -> usize {
        let mut g = self.lock();
        let gone = n.min(g.available);
        g.available -= gone;
        gone
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures_util::FutureExt;

    use super::*;

    #[tokio::test]
    async fn waiters_are_served_by_priority_then_arrival() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.acquire().await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [("c5", 5), ("a1", 1), ("b5", 5), ("d0", 0)] {
            let (gate, order) = (Arc::clone(&gate), Arc::clone(&order));
            tasks.push(tokio::spawn(with_priority(priority, async move {
                let _p = gate.acquire().await;
                order.lock().unwrap().push(name);
            })));
            // Each arrives before the next.
            tokio::task::yield_now().await;
            tokio::task::yield_now().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["d0", "a1", "c5", "b5"]);
    }

    #[tokio::test]
    async fn a_waiter_dropped_after_its_wake_gives_the_slot_back() {
        let gate = Gate::new(1);
        let held = gate.acquire().await;
        let mut first = Box::pin(gate.acquire());
        assert!(first.as_mut().now_or_never().is_none());
        let mut second = Box::pin(gate.acquire());
        assert!(second.as_mut().now_or_never().is_none());
        drop(held); // handed to `first`, which is dropped before it sees it
        drop(first);
        assert!(second.now_or_never().is_some(), "the slot went on");
        assert!(gate.acquire().now_or_never().is_some(), "and came back");
    }

    #[tokio::test]
    async fn forgotten_and_added_slots_change_the_gates_size() {
        let gate = Gate::new(2);
        let a = gate.acquire().await;
        assert_eq!(gate.forget_permits(5), 1, "only the free one");
        assert!(gate.acquire().now_or_never().is_none());
        a.forget();
        gate.add_permits(2);
        let _x = gate.acquire().now_or_never().expect("one");
        let _y = gate.acquire().now_or_never().expect("two");
        assert!(gate.acquire().now_or_never().is_none());
        assert_eq!(current_priority(), 0, "outside any scope");
    }
}
