//! How far a transfer got: counters the pipeline advances as objects and bytes pass, read by a
//! front end (the command line draws them on stderr when it is a terminal). Cheap enough to
//! update on every chunk; nothing here draws or allocates.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of one transfer. Exports count what went into the archive; imports and copies count
/// what reached the destination.
#[derive(Debug, Default)]
pub struct Progress {
    experiments: AtomicU64,
    runs: AtomicU64,
    logged_models: AtomicU64,
    versions: AtomicU64,
    points: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// Experiments written or created.
    pub experiments: u64,
    /// Runs done (written to the archive; on import, complete on the destination or found so).
    pub runs: u64,
    /// Logged models done.
    pub logged_models: u64,
    /// Registered model versions done.
    pub versions: u64,
    /// Metric points passed.
    pub points: u64,
    /// Artifact files passed (counted when they begin).
    pub files: u64,
    /// Artifact bytes passed.
    pub bytes: u64,
}

/// What a counter counts.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Counter {
    /// Experiments.
    Experiments,
    /// Runs.
    Runs,
    /// Logged models.
    LoggedModels,
    /// Model versions.
    Versions,
    /// Metric points.
    Points,
    /// Artifact files.
    Files,
    /// Artifact bytes.
    Bytes,
}

impl Progress {
    /// Adds `n` to a counter.
    pub fn add(&self, c: Counter, n: u64) {
        let a = match c {
            Counter::Experiments => &self.experiments,
            Counter::Runs => &self.runs,
            Counter::LoggedModels => &self.logged_models,
            Counter::Versions => &self.versions,
            Counter::Points => &self.points,
            Counter::Files => &self.files,
            Counter::Bytes => &self.bytes,
        };
        a.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> Snapshot {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            experiments: g(&self.experiments),
            runs: g(&self.runs),
            logged_models: g(&self.logged_models),
            versions: g(&self.versions),
            points: g(&self.points),
            files: g(&self.files),
            bytes: g(&self.bytes),
        }
    }
}

/// Adds to a counter of an optional [`Progress`].
pub(crate) fn tick(p: &Option<std::sync::Arc<Progress>>, c: Counter, n: u64) {
    if let Some(p) = p {
        p.add(c, n);
    }
}
