//! Leases on the runs an import is writing, so that concurrent imports (two people, a scheduler's
//! retry) never take each other's runs for the leftovers of a killed import.
//!
//! Every run an import creates carries the tag [`LEASE`]: `<expiry ms> <host> <pid> <import>`.
//! While the import runs, a task of its own looks every [`RENEW_EVERY`] at the runs it has not
//! finished and renews, to [`LEASE_FOR`] ahead, those whose lease has less than [`RENEW_WITHIN`]
//! left (a run written in under 40 s is never renewed: one request fewer per run and per round).
//! A half-done run is taken for abandoned only when its lease is over: expired, or held by a
//! process of this host that no longer exists (a killed import, seen at once by the next import
//! on the same machine), or by an import of this process that has ended. A run without the tag
//! (made before leases existed) has no lease.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::destination::Destination;
use super::ordered::AbortOnDrop;

/// The tag holding a run's lease.
pub const LEASE: &str = "mlflow_archive.lease";
/// How far ahead a lease reaches when set or renewed.
pub const LEASE_FOR: Duration = Duration::from_secs(120);
/// How often the leases of unfinished runs are looked at.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);
/// A lease with less than this left is renewed: more than two rounds, so that the next round
/// comes with 50 s to spare even when this one is slowed by the server (every renewal is one
/// request). A run written in under 40 s is never renewed.
pub const RENEW_WITHIN: Duration = Duration::from_secs(80);

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// This machine's name, as the kernel has it.
fn host() -> &'static str {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().replace(' ', "_"))
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into())
    })
}

/// The imports of this process that are running (by [`Leases`] id).
fn live() -> std::sync::MutexGuard<'static, HashSet<u64>> {
    static LIVE: std::sync::OnceLock<Mutex<HashSet<u64>>> = std::sync::OnceLock::new();
    LIVE.get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
}

/// A lease value held by import `import` of this process, reaching [`LEASE_FOR`] ahead.
fn fresh_for(import: u64) -> String {
    let until = now_ms().saturating_add(LEASE_FOR.as_millis() as i64);
    format!("{until} {} {} {import}", host(), std::process::id())
}

/// When lease value `v` ends (ms since the epoch); 0 when it cannot be read.
fn until_of(v: &str) -> i64 {
    v.split(' ')
        .next()
        .and_then(|u| u.parse().ok())
        .unwrap_or(0)
}

/// The objects of `held` (each with the end of its lease) whose lease ends within
/// [`RENEW_WITHIN`] of `now`.
fn due(held: &HashMap<Held, i64>, now: i64) -> Vec<Held> {
    let within = RENEW_WITHIN.as_millis() as i64;
    held.iter()
        .filter(|&(_, &until)| until.saturating_sub(now) < within)
        .map(|(object, _)| object.clone())
        .collect()
}

/// Whether a run whose lease tag is `value` (if any) is still held by a live import.
pub fn held(value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    let mut parts = v.split(' ');
    let until = parts.next().and_then(|u| u.parse::<i64>().ok());
    let (owner_host, pid, import) = (parts.next(), parts.next(), parts.next());
    let Some(until) = until else { return false };
    if until <= now_ms() {
        return false;
    }
    if owner_host == Some(host()) {
        // Same machine: the holder is alive only if its process is (and, in this process, only
        // if that import still runs).
        let Some(pid) = pid else { return false };
        if pid == std::process::id().to_string() {
            return import
                .and_then(|i| i.parse::<u64>().ok())
                .is_some_and(|i| live().contains(&i));
        }
        return std::path::Path::new(&format!("/proc/{pid}")).exists();
    }
    true
}

/// What a lease is held on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Held {
    /// A run, by destination id.
    Run(String),
    /// A logged model, by destination id.
    LoggedModel(String),
}

/// What an import holds leases on, each with the end of its lease (ms since the epoch).
type HeldSet = Arc<Mutex<HashMap<Held, i64>>>;

/// The runs and logged models this import holds leases on, renewed by a task of their own until
/// dropped (runs are held through a [`LeaseHandle`], by their tasks).
pub struct Leases {
    id: u64,
    runs: HeldSet,
    _renewer: AbortOnDrop<()>,
}

impl Drop for Leases {
    fn drop(&mut self) {
        live().remove(&self.id);
    }
}

impl Leases {
    /// Starts renewing, through `client`, the leases of the runs its handles hold.
    pub fn start(client: &impl Destination) -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        live().insert(id);
        let runs: HeldSet = Arc::default();
        let (client, held) = (client.clone(), Arc::clone(&runs));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let objects = due(&lock(&held), now_ms());
                for object in objects {
                    let lease = fresh_for(id);
                    let until = until_of(&lease);
                    let renewed = match &object {
                        Held::Run(run) => client.set_run_tag(run, LEASE, &lease).await,
                        Held::LoggedModel(m) => {
                            let tags = [crate::mlflow::types::KeyValue::new(LEASE, lease)];
                            client.set_logged_model_tags(m, &tags).await
                        }
                    };
                    // A renewal that fails is tried again next round; the lease has time left.
                    if renewed.is_ok()
                        && let Some(end) = lock(&held).get_mut(&object)
                    {
                        *end = until;
                    }
                }
            }
        });
        Leases {
            id,
            runs,
            _renewer: AbortOnDrop(Some(task)),
        }
    }

    /// A lease value for a run this import creates.
    pub fn fresh(&self) -> String {
        fresh_for(self.id)
    }

    /// Keeps renewing the lease of logged model `id`, created with `lease` ([`Leases::fresh`]).
    pub fn hold_model(&self, id: &str, lease: &str) {
        lock(&self.runs).insert(Held::LoggedModel(id.to_string()), until_of(lease));
    }

    /// Stops renewing run `id`'s lease (the run is finished, or given up).
    pub fn release(&self, id: &str) {
        lock(&self.runs).remove(&Held::Run(id.to_string()));
    }

    /// Stops renewing logged model `id`'s lease.
    pub fn release_model(&self, id: &str) {
        lock(&self.runs).remove(&Held::LoggedModel(id.to_string()));
    }

    /// A handle that holds and releases runs' leases from another task (a run's writer).
    pub fn handle(&self) -> LeaseHandle {
        LeaseHandle(Arc::clone(&self.runs))
    }
}

/// Holds and releases leases of [`Leases`] from another task; renewed while the [`Leases`] lives.
#[derive(Clone)]
pub struct LeaseHandle(HeldSet);

impl LeaseHandle {
    /// Keeps renewing the lease of run `id`, created with `lease` ([`Leases::fresh`]).
    pub fn hold(&self, id: &str, lease: &str) {
        lock(&self.0).insert(Held::Run(id.to_string()), until_of(lease));
    }

    /// Stops renewing run `id`'s lease.
    pub fn release(&self, id: &str) {
        lock(&self.0).remove(&Held::Run(id.to_string()));
    }
}

fn lock(m: &Mutex<HashMap<Held, i64>>) -> std::sync::MutexGuard<'_, HashMap<Held, i64>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_end_with_time_or_with_their_process() {
        let leases = Leases::start(&crate::transfer::memory::MemoryServer::default());
        let ours = leases.fresh();
        assert!(held(Some(&ours)), "our own fresh lease");
        drop(leases);
        assert!(!held(Some(&ours)), "an import of this process that ended");
        assert!(!held(None));
        assert!(!held(Some("garbage")));
        let past = format!("{} {} {} 1", now_ms() - 1, host(), std::process::id());
        assert!(!held(Some(&past)), "expired");
        let later = now_ms() + 60_000;
        // A process of this host that does not exist (pids stay far below this).
        assert!(!held(Some(&format!("{later} {} 4000000000", host()))));
        // Another host's process: held until it expires.
        assert!(held(Some(&format!("{later} elsewhere 1"))));
    }

    /// A run's lease is renewed only when it nears its end: a run written in less than 40 s
    /// costs no renewal (each is one request, and at 100 ms a round of them was a burst of
    /// 20 to 40 set-tags every 30 s on the large set).
    #[tokio::test(start_paused = true)]
    async fn only_leases_near_their_end_are_renewed() {
        use crate::mlflow::CreateRun;
        use crate::mlflow::types::KeyValue;
        use crate::transfer::destination::Destination;
        use crate::transfer::memory::MemoryServer;
        let server = MemoryServer::default();
        let exp = server.create_experiment("e", &[]).await.unwrap();
        let leases = Leases::start(&server);
        let handle = leases.handle();
        let mut ids = Vec::new();
        let soon = format!("{} {} {} 0", now_ms() + 20_000, host(), std::process::id());
        for lease in [leases.fresh(), soon] {
            let run = server
                .create_run(&CreateRun {
                    experiment_id: exp.clone(),
                    run_name: None,
                    start_time: None,
                    tags: vec![KeyValue::new(LEASE, lease.clone())],
                    user_id: None,
                    reconcile_tag: None,
                })
                .await
                .unwrap();
            handle.hold(&run.info.run_id, &lease);
            ids.push(run.info.run_id);
        }
        let lease_of = async |id: &str| -> String {
            let run = server.get_run(id).await.unwrap();
            let tag = run.data.tags.iter().find(|t| t.key == LEASE).unwrap();
            tag.value.clone()
        };
        let (fresh, ending) = (lease_of(&ids[0]).await, lease_of(&ids[1]).await);
        let renewals = || server.log().iter().filter(|c| **c == "set_run_tag").count();
        // Two rounds (the clock of leases does not move with paused time: the fresh lease keeps
        // its two minutes, the other its 20 s).
        tokio::time::sleep(RENEW_EVERY * 2 + Duration::from_secs(1)).await;
        assert_eq!(lease_of(&ids[0]).await, fresh, "a fresh lease was renewed");
        assert_ne!(
            lease_of(&ids[1]).await,
            ending,
            "a lease near its end was not"
        );
        assert_eq!(
            renewals(),
            1,
            "renewed once, then not again while its lease is fresh"
        );
    }
}
