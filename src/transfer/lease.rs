//! Leases on the runs an import is writing, so that concurrent imports (two people, a scheduler's
//! retry) never take each other's runs for the leftovers of a killed import.
//!
//! Every run an import creates carries the tag [`LEASE`]: `<expiry ms> <host> <pid>`. While the
//! import runs, a task of its own renews the lease of each run it has not finished, every
//! [`RENEW_EVERY`], to [`LEASE_FOR`] ahead. A half-done run is taken for abandoned only when its
//! lease is over: expired, or held by a process of this host that no longer exists (a killed
//! import, seen at once by the next import on the same machine). A run without the tag (made
//! before leases existed) has no lease.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::destination::Destination;
use super::ordered::AbortOnDrop;

/// The tag holding a run's lease.
pub const LEASE: &str = "mlflow_archive.lease";
/// How far ahead a lease reaches when set or renewed.
pub const LEASE_FOR: Duration = Duration::from_secs(120);
/// How often the leases of unfinished runs are renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(30);

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

/// A lease value held by this process, reaching [`LEASE_FOR`] ahead.
pub fn fresh() -> String {
    let until = now_ms().saturating_add(LEASE_FOR.as_millis() as i64);
    format!("{until} {} {}", host(), std::process::id())
}

/// Whether a run whose lease tag is `value` (if any) is still held by a live import.
pub fn held(value: Option<&str>) -> bool {
    let Some(v) = value else { return false };
    let mut parts = v.split(' ');
    let until = parts.next().and_then(|u| u.parse::<i64>().ok());
    let (owner_host, pid) = (parts.next(), parts.next());
    let Some(until) = until else { return false };
    if until <= now_ms() {
        return false;
    }
    if owner_host == Some(host()) {
        // Same machine: the holder is alive only if its process is.
        return pid.is_some_and(|p| {
            p == std::process::id().to_string()
                || std::path::Path::new(&format!("/proc/{p}")).exists()
        });
    }
    true
}

/// The runs this import holds leases on, renewed by a task of their own until dropped.
pub struct Leases {
    runs: Arc<Mutex<HashSet<String>>>,
    _renewer: AbortOnDrop<()>,
}

impl Leases {
    /// Starts renewing, through `client`, the leases of the runs [`Leases::hold`] names.
    pub fn start(client: &impl Destination) -> Self {
        let runs: Arc<Mutex<HashSet<String>>> = Arc::default();
        let (client, held) = (client.clone(), Arc::clone(&runs));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                let ids: Vec<String> = lock(&held).iter().cloned().collect();
                for id in ids {
                    // A renewal that fails is tried again next round; the lease has time left.
                    let _ = client.set_run_tag(&id, LEASE, &fresh()).await;
                }
            }
        });
        Leases {
            runs,
            _renewer: AbortOnDrop(Some(task)),
        }
    }

    /// Keeps renewing the lease of run `id` (created with [`fresh`]).
    pub fn hold(&self, id: &str) {
        lock(&self.runs).insert(id.to_string());
    }

    /// Stops renewing it (the run is finished, or given up).
    pub fn release(&self, id: &str) {
        lock(&self.runs).remove(id);
    }
}

fn lock(m: &Mutex<HashSet<String>>) -> std::sync::MutexGuard<'_, HashSet<String>> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_end_with_time_or_with_their_process() {
        assert!(held(Some(&fresh())), "our own fresh lease");
        assert!(!held(None));
        assert!(!held(Some("garbage")));
        let past = format!("{} {} {}", now_ms() - 1, host(), std::process::id());
        assert!(!held(Some(&past)), "expired");
        let later = now_ms() + 60_000;
        // A process of this host that does not exist (pids stay far below this).
        assert!(!held(Some(&format!("{later} {} 4000000000", host()))));
        // Another host's process: held until it expires.
        assert!(held(Some(&format!("{later} elsewhere 1"))));
    }
}
