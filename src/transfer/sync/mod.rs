//! Keeping a replica: what the destination (or an earlier incremental export) already holds of
//! each source object, so that an export reads only what changed since.
//!
//! A [`Base`] knows, by source id, the runs that are complete at the destination with what they
//! were when copied (a digest of the run's record, a digest of its latest metric values, whether
//! it had ended), the logged models and traces that are complete there. The export asks it of
//! every source run it lists ([`Base::classify`]): a run the destination holds as it is now is
//! not read at all (no history, no artifact listing, no `runs/get`), a changed one is exported
//! whole and brought up to date in place by the import (`ImportOptions::update`).
//!
//! The base of a server destination is read from the destination itself ([`Base::of_server`]:
//! a few searches per experiment, over the lineage tags every import leaves); the base of an
//! incremental archive is a small state file written after each archive is sealed
//! ([`Base::load`], [`Base::save`]).

mod base;
mod run;
mod state;

use serde::{Deserialize, Serialize};

use super::map;
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::types::{Metric, Run};

pub use base::Base;
pub use run::{DeletedRun, SyncOptions, SyncReport, sync};

/// The tag of a destination run that holds the [`run_digest`] of the source run it was last
/// brought up to date with; empty while an update is under way.
pub const DIGEST: &str = "mlflow_archive.source.digest";

/// Runs started in `[since, until)` (milliseconds since the epoch); either end open.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Runs started at or after this.
    pub since: Option<i64>,
    /// Runs started before this.
    pub until: Option<i64>,
}

impl Window {
    /// Whether a run started at `start` is inside (a run without a start time is inside only
    /// an open window).
    pub fn contains(&self, start: Option<i64>) -> bool {
        if self.since.is_none() && self.until.is_none() {
            return true;
        }
        let Some(t) = start else {
            return false;
        };
        self.since.is_none_or(|s| t >= s) && self.until.is_none_or(|u| t < u)
    }

    /// Parses a time given as epoch milliseconds or ISO 8601 (`2026-11-30`,
    /// `2026-11-30T12:00:00Z`, `2026-11-30T12:00:00+01:00`; a time without an offset is UTC).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming `what` (the option) and the forms it takes.
    pub fn parse_time(what: &str, s: &str) -> Result<i64> {
        let s = s.trim();
        if let Ok(ms) = s.parse::<i64>() {
            return Ok(ms);
        }
        let bad = || {
            Error::Config(format!(
                "{what} {s:?}: expected milliseconds since the epoch or an ISO 8601 date or time (2026-11-30, 2026-11-30T12:00:00Z, 2026-11-30T12:00:00+01:00)"
            ))
        };
        if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
            return Ok(t.timestamp_millis());
        }
        for f in [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
        ] {
            if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
                return Ok(t.and_utc().timestamp_millis());
            }
        }
        let day = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad())?;
        Ok(day
            .and_hms_opt(0, 0, 0)
            .ok_or_else(bad)?
            .and_utc()
            .timestamp_millis())
    }
}

/// FNV-1a, 64 bits: a digest that stays the same across builds and platforms (what is
/// compared is a copy made by this tool against its source, not an adversary's input).
fn fnv(bytes: &[u8], mut h: u64) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// The digest of what a run's record says besides its metric histories and artifacts: name,
/// status, start and end, lifecycle, params and tags (in any order).
pub fn run_digest(r: &rec::Run) -> String {
    let mut tags: Vec<(&str, &str)> = r
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    tags.sort_unstable();
    let mut params: Vec<(&str, &str)> = r
        .params
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    params.sort_unstable();
    let canonical = serde_json::json!([
        r.run_name,
        r.status,
        r.start_time,
        r.end_time,
        r.lifecycle_stage,
        params,
        tags,
    ]);
    format!(
        "v1:{:016x}",
        fnv(canonical.to_string().as_bytes(), FNV_START)
    )
}

/// The digest of a run's latest metric values (key, value, step, time), in any order: a new
/// point that changed any of them changes it.
pub fn metrics_digest(latest: &[Metric]) -> String {
    digest_of(&point_hashes(latest))
}

/// Each latest value as two hashes: of its key, and of the whole point (key, value, step,
/// time), sorted. What a base keeps of a destination run's latest values: 16 bytes a key.
pub(crate) fn point_hashes(latest: &[Metric]) -> Vec<(u64, u64)> {
    let mut hashes: Vec<(u64, u64)> = latest.iter().map(point_hash).collect();
    hashes.sort_unstable();
    hashes
}

/// The hashes of one point: of its key, and of the point.
pub(crate) fn point_hash(m: &Metric) -> (u64, u64) {
    // One NaN, whatever its bits.
    let v = if m.value.is_nan() {
        f64::NAN.to_bits()
    } else {
        m.value.to_bits()
    };
    let key = fnv(m.key.as_bytes(), FNV_START);
    let mut h = fnv(&[0], key);
    h = fnv(&v.to_le_bytes(), h);
    h = fnv(&m.step.to_le_bytes(), h);
    h = fnv(&m.timestamp.to_le_bytes(), h);
    (key, h)
}

/// The [`metrics_digest`] of points given by their [`point_hashes`] (sorted).
pub(crate) fn digest_of(hashes: &[(u64, u64)]) -> String {
    let mut h = FNV_START;
    for (_, point) in hashes {
        h = fnv(&point.to_le_bytes(), h);
    }
    format!("{h:016x}")
}

/// Whether a run with this status will not change by itself any more.
pub fn ended(status: &str) -> bool {
    matches!(status, "FINISHED" | "FAILED" | "KILLED")
}

/// What the destination holds of one source run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownRun {
    /// The [`run_digest`] it was copied (or last brought up to date) with; empty when unknown.
    pub digest: String,
    /// The [`metrics_digest`] of its latest values.
    pub metrics: String,
    /// Whether it had ended then.
    pub ended: bool,
    /// Whether it is deleted (at the destination itself: a kill between the digest and the
    /// deletion leaves them apart).
    #[serde(default)]
    pub deleted: bool,
}

/// What an export does with a source run, given the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Not at the destination: exported.
    New,
    /// At the destination, but changed since (or not ended then): exported, and brought up to
    /// date in place.
    Changed,
    /// At the destination as it is now: not read.
    Unchanged,
    /// Outside the time window: not exported.
    Outside,
}

/// Per-kind counts of a sync's decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Seen {
    /// Source runs not at the destination.
    pub runs_new: u64,
    /// Source runs changed since they were copied.
    pub runs_changed: u64,
    /// Source runs the destination holds as they are.
    pub runs_unchanged: u64,
    /// Source runs outside the time window.
    pub runs_outside: u64,
    /// Logged models complete at the destination, not read.
    pub logged_models_unchanged: u64,
    /// Traces complete at the destination, not read.
    pub traces_unchanged: u64,
    /// Evaluation datasets whose copy is as the source's, not read.
    pub datasets_unchanged: u64,
}

/// What the destination would hold of `r` once copied.
pub(super) fn known(r: &Run) -> KnownRun {
    KnownRun {
        digest: run_digest(&map::run(r)),
        metrics: metrics_digest(&r.data.metrics),
        ended: ended(&r.info.status),
        deleted: r.info.lifecycle_stage == "deleted",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_the_forms_the_python_tool_takes() {
        let day = Window::parse_time("--since", "2026-11-30").unwrap();
        assert_eq!(day, 1_795_996_800_000);
        assert_eq!(
            Window::parse_time("--since", "2026-11-30T00:00:00Z").unwrap(),
            day
        );
        assert_eq!(
            Window::parse_time("--since", "2026-11-30T01:00:00+01:00").unwrap(),
            day
        );
        assert_eq!(
            Window::parse_time("--since", "2026-11-30T00:00").unwrap(),
            day
        );
        assert_eq!(Window::parse_time("--since", "1795996800000").unwrap(), day);
        let e = Window::parse_time("--until", "yesterday")
            .unwrap_err()
            .to_string();
        assert!(e.contains("--until \"yesterday\""), "{e}");
        let w = Window {
            since: Some(10),
            until: Some(20),
        };
        assert!(w.contains(Some(10)) && w.contains(Some(19)));
        assert!(!w.contains(Some(20)) && !w.contains(Some(9)) && !w.contains(None));
        assert!(Window::default().contains(None));
    }
}
