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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::import::{
    COMPLETE, LINEAGE_MODEL, LINEAGE_RUN, LINEAGE_SERVER, MISSING_PARENT, PARENT_RUN, STATE,
};
use super::map;
use super::source::Source;
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::Client;
use crate::mlflow::types::{Metric, Run, ViewType};

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
    let mut points: Vec<(&str, u64, i64, i64)> = latest
        .iter()
        .map(|m| {
            // One NaN, whatever its bits.
            let v = if m.value.is_nan() {
                f64::NAN.to_bits()
            } else {
                m.value.to_bits()
            };
            (m.key.as_str(), v, m.step, m.timestamp)
        })
        .collect();
    points.sort_unstable();
    let mut h = FNV_START;
    for (k, v, s, t) in points {
        h = fnv(k.as_bytes(), h);
        h = fnv(&[0], h);
        h = fnv(&v.to_le_bytes(), h);
        h = fnv(&s.to_le_bytes(), h);
        h = fnv(&t.to_le_bytes(), h);
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
}

/// What the destination (or the earlier incremental exports) holds, by source id; see the
/// module's documentation.
#[derive(Debug, Default)]
pub struct Base {
    runs: HashMap<String, KnownRun>,
    /// Source logged model id → its status at the destination (complete there).
    logged_models: HashMap<String, String>,
    traces: HashSet<String>,
    /// The destination copy of each source run, on a server destination.
    dst: HashMap<String, DstRun>,
    /// Runs started outside it are not exported.
    window: Window,
    /// What the export decided, and the source runs it listed (for `--delete-missing`).
    seen: Mutex<SeenState>,
}

/// Where a source run's complete copy is on a server destination, and the clients of its
/// MLflow workspace on both sides.
#[derive(Debug, Clone)]
struct DstRun {
    src: Client,
    dst: Client,
    run_id: String,
    artifact_uri: String,
    /// Its latest metric values.
    latest: Vec<Metric>,
    /// The source server its import named ([`LINEAGE_SERVER`]).
    server: Option<String>,
    /// The source id of its parent, when it was imported without it ([`MISSING_PARENT`]).
    missing_parent: Option<String>,
}

#[derive(Debug, Default)]
struct SeenState {
    counts: Seen,
    /// Every source run listed, with what was decided (the export's second pass follows the
    /// first pass's decision, even if the run changed in between).
    runs: HashMap<String, Class>,
    /// What an archive export adds to the state, once it is sealed.
    exported: BTreeMap<String, KnownRun>,
    exported_models: Vec<(String, String)>,
    exported_traces: Vec<String>,
}

/// The state file of incremental archives ([`Base::save`]).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// `mlflow-archive sync state 1`.
    format: String,
    /// The source these archives were exported from.
    source: String,
    runs: BTreeMap<String, KnownRun>,
    /// Logged model id → its status when written.
    #[serde(default)]
    logged_models: BTreeMap<String, String>,
    #[serde(default)]
    traces: Vec<String>,
}

const STATE_FORMAT: &str = "mlflow-archive sync state 1";

impl Base {
    /// A base that holds nothing and only applies a time window (a plain export with
    /// `--since`/`--until`).
    pub fn window(window: Window) -> Self {
        Base {
            window,
            ..Base::default()
        }
    }

    /// Sets the time window.
    #[must_use]
    pub fn with_window(mut self, window: Window) -> Self {
        self.window = window;
        self
    }

    /// The time window.
    pub fn window_of(&self) -> Window {
        self.window
    }

    /// What an export does with source run `r` (a search answer: its tags, params and latest
    /// metrics); counted, and remembered for the state of an incremental archive. A run listed
    /// again keeps its first decision.
    pub fn classify(&self, r: &Run) -> Class {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(class) = seen.runs.get(&r.info.run_id) {
            return *class;
        }
        let class = self.peek(r);
        seen.runs.insert(r.info.run_id.clone(), class);
        match class {
            Class::New => seen.counts.runs_new += 1,
            Class::Changed => seen.counts.runs_changed += 1,
            Class::Unchanged => seen.counts.runs_unchanged += 1,
            Class::Outside => seen.counts.runs_outside += 1,
        }
        if matches!(class, Class::New | Class::Changed) {
            seen.exported.insert(r.info.run_id.clone(), known(r));
        }
        class
    }

    /// What [`Base::classify`] would decide for `r` now, without counting or remembering.
    pub fn peek(&self, r: &Run) -> Class {
        if !self.window.contains(r.info.start_time) {
            return Class::Outside;
        }
        match self.runs.get(&r.info.run_id) {
            None => Class::New,
            // A run that had not ended may have new points or files without any other sign.
            Some(k) if k.ended && *k == self.known_here(r, k) => Class::Unchanged,
            Some(_) => Class::Changed,
        }
    }

    /// What the destination would hold of `r` once copied, its latest values compared with those
    /// of the keys the source has (a metric logged to the destination copy by hand is not one
    /// an update could take away: the run would be updated at every sync).
    fn known_here(&self, r: &Run, k: &KnownRun) -> KnownRun {
        let mut now = known(r);
        if let Some(d) = self.dst.get(&r.info.run_id)
            && d.latest
                .iter()
                .any(|m| !r.data.metrics.iter().any(|x| x.key == m.key))
        {
            let ours: Vec<Metric> = d
                .latest
                .iter()
                .filter(|m| r.data.metrics.iter().any(|x| x.key == m.key))
                .cloned()
                .collect();
            if metrics_digest(&ours) == now.metrics {
                now.metrics.clone_from(&k.metrics);
            }
        }
        now
    }

    /// Whether source logged model `m` is complete at the destination with the status it has
    /// now (not read again): one copied while its files were still being logged (`PENDING`)
    /// is read again once it is `READY`.
    pub fn has_logged_model(&self, m: &crate::mlflow::types::LoggedModel) -> bool {
        let id = &m.info.model_id;
        let has = self
            .logged_models
            .get(id)
            .is_some_and(|status| *status == m.info.status);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if has {
            seen.counts.logged_models_unchanged += 1;
        } else {
            seen.exported_models
                .push((id.clone(), m.info.status.clone()));
        }
        has
    }

    /// Whether trace `id` is complete at the destination (not read again).
    pub fn has_trace(&self, id: &str) -> bool {
        let has = self.traces.contains(id);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if has {
            seen.counts.traces_unchanged += 1;
        } else {
            seen.exported_traces.push(id.to_string());
        }
        has
    }

    /// The files (path → size) the destination copy of source run `src` has, when the base is
    /// a server's and holds that run; none otherwise.
    ///
    /// # Errors
    ///
    /// A failed listing of the destination's files.
    pub async fn dst_files(&self, src: &str) -> Result<HashMap<String, u64>> {
        let Some(d) = self.dst.get(src) else {
            return Ok(HashMap::new());
        };
        if !self.runs.get(src).is_some_and(|k| k.ended) {
            // Copied while running: a file may have been rewritten since with the same size.
            return Ok(HashMap::new());
        }
        let root = crate::mlflow::ArtifactRoot::parse(&d.artifact_uri)
            .map_err(|e| Error::Config(format!("the destination copy of run {src}: {e}")))?;
        Source::artifact_files(&d.dst, &root)
            .map_ok(|f| (f.path, f.size))
            .try_collect()
            .await
    }

    /// The metric keys of changed source run `r` whose history must be sent: none when its
    /// latest values are the destination's and the copy had ended (a change of tags, status or
    /// lifecycle), else the keys whose latest value differs; every key of a run the destination
    /// does not hold, or copied while running (a new point need not change the latest value).
    pub fn keys_to_send(&self, r: &Run) -> Option<HashSet<String>> {
        let id = &r.info.run_id;
        let (Some(d), Some(k)) = (self.dst.get(id), self.runs.get(id)) else {
            return None;
        };
        if !k.ended {
            return None;
        }
        let same = |m: &Metric| {
            d.latest.iter().any(|x| {
                x.key == m.key
                    && x.step == m.step
                    && x.timestamp == m.timestamp
                    && (x.value == m.value || (x.value.is_nan() && m.value.is_nan()))
            })
        };
        Some(
            r.data
                .metrics
                .iter()
                .filter(|m| !same(m))
                .map(|m| m.key.clone())
                .collect(),
        )
    }

    /// The counts so far.
    pub fn seen(&self) -> Seen {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counts
    }

    /// Whether the export listed source run `id` (in any class).
    pub fn listed(&self, id: &str) -> bool {
        self.class_of(id).is_some()
    }

    /// What the export decided for source run `id`, if it listed it.
    fn class_of(&self, id: &str) -> Option<Class> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .runs
            .get(id)
            .copied()
    }

    /// What server `dst` holds of the experiments of `src` (matched by name, workspace by
    /// workspace as an import places them, or all in `dst_workspace`): per experiment one search
    /// of its runs, one of its logged models and one of its traces.
    ///
    /// # Errors
    ///
    /// A failed read of either server.
    pub async fn of_server(
        src: &Client,
        dst: &Client,
        dst_workspace: Option<&str>,
    ) -> Result<Self> {
        let mut base = Base::default();
        let dst_has_workspaces = dst.workspaces_enabled().await?;
        let scopes: Vec<(Client, Client)> = match Source::workspaces(src).await? {
            None => vec![(
                src.clone(),
                scoped(dst, dst_workspace, None, dst_has_workspaces),
            )],
            Some(names) => names
                .iter()
                .map(|ws| {
                    (
                        src.in_workspace(ws),
                        scoped(dst, dst_workspace, Some(ws), dst_has_workspaces),
                    )
                })
                .collect(),
        };
        for (src, dst) in scopes {
            let experiments: Vec<_> = Source::experiments(&src, ViewType::ActiveOnly)
                .try_collect()
                .await?;
            for e in experiments {
                let Some(found) = dst.get_experiment_by_name(&e.name).await? else {
                    continue;
                };
                base.read_experiment(&src, &dst, &found.experiment_id)
                    .await?;
            }
        }
        Ok(base)
    }

    async fn read_experiment(&mut self, src: &Client, dst: &Client, id: &str) -> Result<()> {
        let ids = [id.to_string()];
        let filter = format!("tags.`{LINEAGE_RUN}` LIKE '%'");
        let mut runs = std::pin::pin!(dst.search_runs(&ids, Some(&filter), ViewType::All));
        while let Some(r) = runs.try_next().await? {
            let tag = |k: &str| {
                r.data
                    .tags
                    .iter()
                    .find(|t| t.key == k)
                    .map(|t| t.value.as_str())
            };
            let (Some(from), Some(COMPLETE)) = (tag(LINEAGE_RUN), tag(STATE)) else {
                continue;
            };
            let k = KnownRun {
                digest: tag(DIGEST).unwrap_or_default().to_string(),
                metrics: metrics_digest(&r.data.metrics),
                ended: ended(&r.info.status),
                deleted: r.info.lifecycle_stage == "deleted",
            };
            self.runs.insert(from.to_string(), k);
            self.dst.insert(
                from.to_string(),
                DstRun {
                    src: src.clone(),
                    dst: dst.clone(),
                    run_id: r.info.run_id.clone(),
                    artifact_uri: r.info.artifact_uri.clone(),
                    latest: r.data.metrics.clone(),
                    server: tag(LINEAGE_SERVER).map(str::to_string),
                    missing_parent: tag(MISSING_PARENT).map(str::to_string),
                },
            );
        }
        let mut models = std::pin::pin!(Source::logged_models(dst, &ids));
        while let Some(m) = models.try_next().await? {
            let tag = |k: &str| {
                m.info
                    .tags
                    .iter()
                    .find(|t| t.key == k)
                    .map(|t| t.value.as_str())
            };
            if let (Some(from), Some(COMPLETE)) = (tag(LINEAGE_MODEL), tag(STATE)) {
                self.logged_models
                    .insert(from.to_string(), m.info.status.clone());
            }
        }
        let mut traces = std::pin::pin!(Source::traces(dst, &ids));
        while let Some(t) = traces.try_next().await? {
            if t.tags.get(STATE).map(String::as_str) == Some(COMPLETE) {
                self.traces.insert(t.trace_id);
            }
        }
        Ok(())
    }

    /// The base recorded in state file `path` for source `server` (an empty one when the file
    /// does not exist: the first incremental export is a full one).
    ///
    /// # Errors
    ///
    /// [`Error::Input`] when the file cannot be read, is not a state file, or was made for
    /// another source.
    pub fn load(path: &std::path::Path, server: &str) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Base::default()),
            Err(e) => {
                return Err(Error::io(
                    format!("reading sync state {}", path.display()),
                    e,
                ));
            }
        };
        let state: StateFile = serde_json::from_slice(&text).map_err(|e| {
            Error::Input(format!(
                "sync state {}: not a state file of mlflow-archive ({e}); give another --state, or remove it to start a new chain with a full archive",
                path.display()
            ))
        })?;
        if state.format != STATE_FORMAT {
            return Err(Error::Input(format!(
                "sync state {}: format {:?}, expected {STATE_FORMAT:?} (written by another version of mlflow-archive?); remove it to start a new chain with a full archive",
                path.display(),
                state.format
            )));
        }
        if state.source != server {
            return Err(Error::Input(format!(
                "sync state {} was written for source {}, not {server}: give each source its own state file",
                path.display(),
                state.source
            )));
        }
        Ok(Base {
            runs: state.runs.into_iter().collect(),
            logged_models: state.logged_models.into_iter().collect(),
            traces: state.traces.into_iter().collect(),
            ..Base::default()
        })
    }

    /// Writes the base with what this export added to state file `path` (through a temporary
    /// file renamed over it: a kill leaves the old state or the new one, never half of one).
    /// Called only after the archive was sealed.
    ///
    /// # Errors
    ///
    /// A failure to write or rename the file.
    pub fn save(&self, path: &std::path::Path, server: &str) -> Result<()> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut runs: BTreeMap<String, KnownRun> = self
            .runs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        runs.extend(seen.exported.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut logged_models: BTreeMap<String, String> = self
            .logged_models
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        logged_models.extend(seen.exported_models.iter().cloned());
        let mut traces: Vec<String> = self.traces.iter().cloned().collect();
        traces.extend(seen.exported_traces.iter().cloned());
        traces.sort();
        traces.dedup();
        let state = StateFile {
            format: STATE_FORMAT.into(),
            source: server.to_string(),
            runs,
            logged_models,
            traces,
        };
        let tmp = path.with_extension("tmp-sync-state");
        let text = serde_json::to_vec(&state)
            .map_err(|e| Error::Internal(format!("writing the sync state: {e}")))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("writing sync state {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("replacing sync state {}", path.display()), e))
    }
}

/// What a server-to-server [`sync`] did, kind by kind, and what it cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Source runs not at the destination before, copied.
    pub runs_new: u64,
    /// Runs changed at the source since they were copied, brought up to date in place.
    pub runs_updated: u64,
    /// Runs the destination held as they are: not read.
    pub runs_unchanged: u64,
    /// Runs outside `--since`/`--until`.
    pub runs_outside: u64,
    /// Runs copied without their parent (outside the time window then) pointed at the parent's
    /// copy now that the destination holds it (also counted as unchanged or outside).
    pub runs_relinked: u64,
    /// Destination runs whose source run is gone, deleted (`--delete-missing`).
    pub runs_deleted: Vec<DeletedRun>,
    /// Logged models copied.
    pub logged_models_new: u64,
    /// Logged models complete at the destination, not read.
    pub logged_models_unchanged: u64,
    /// Traces copied.
    pub traces_new: u64,
    /// Traces complete at the destination, not read.
    pub traces_unchanged: u64,
    /// Model versions copied.
    pub versions_new: u64,
    /// Model versions found at the destination (their stage, description, tags and the
    /// model's aliases set as the source has them).
    pub versions_unchanged: u64,
    /// Experiments of the source (each one's runs compared).
    pub experiments: u64,
    /// Evaluation dataset records upserted.
    pub dataset_records: u64,
    /// Metric points sent (points the destination had already are kept once by the server).
    pub metric_points: u64,
    /// Artifact files sent.
    pub artifacts: u64,
    /// Artifact bytes sent.
    pub artifact_bytes: u64,
    /// HTTP requests to the source (retries counted; not those of artifact stores reached
    /// directly).
    pub requests_source: u64,
    /// HTTP requests to the destination.
    pub requests_destination: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The copy's own report (id maps, notes).
    pub import: crate::transfer::import::ImportReport,
}

/// Options of a sync beyond those of its export and import.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Delete destination runs whose source run is gone (purged from the source); never by
    /// default.
    pub delete_missing: bool,
}

/// Brings server `dst` up to date with server `src`: every active experiment, with the runs
/// new or changed since the last sync (or copy) and only those read (within the time window of
/// `export.base`, if any), logged models and traces
/// not yet there, every registered model. Deleted and restored runs follow the source; a run
/// the source no longer has is deleted only with [`SyncOptions::delete_missing`]. Safe to kill
/// at any point: the next sync finishes the job, copying nothing twice.
///
/// # Errors
///
/// As [`copy_all`](crate::transfer::copy::copy_all): a [`Failed`](crate::transfer::import::Failed)
/// with what was done before the failure.
pub async fn sync(
    src: &Client,
    dst: &Client,
    export: &crate::transfer::export::ExportOptions,
    import: &crate::transfer::import::ImportOptions,
    opts: &SyncOptions,
) -> std::result::Result<SyncReport, crate::transfer::import::Failed> {
    use crate::transfer::import::Failed;
    let started = std::time::Instant::now();
    let (src_before, dst_before) = (src.requests_sent(), dst.requests_sent());
    let failed = |error: Error| Failed {
        error,
        done: Box::default(),
    };
    let base = Base::of_server(src, dst, import.dst_workspace.as_deref())
        .await
        .map_err(|e| failed(e.within(format!("reading what {} holds", dst.server()))))?
        .with_window(
            export
                .base
                .as_ref()
                .map(|b| b.window_of())
                .unwrap_or_default(),
        );
    let base = std::sync::Arc::new(base);
    let export = crate::transfer::export::ExportOptions {
        base: Some(std::sync::Arc::clone(&base)),
        // Deleted runs too: a run deleted (or restored) at the source is so at the destination.
        export_deleted_runs: true,
        ..export.clone()
    };
    let import = crate::transfer::import::ImportOptions {
        update: true,
        ..import.clone()
    };
    let done = crate::transfer::copy::copy_all(src, dst, &export, &import).await?;
    let relinked = relink(&base, &done.runs).await.map_err(|error| Failed {
        error,
        done: Box::new(done.clone()),
    })?;
    let mut deleted = Vec::new();
    if opts.delete_missing {
        delete_missing(&base, src.server(), &mut deleted)
            .await
            .map_err(|error| Failed {
                error,
                done: Box::new(done.clone()),
            })?;
    }
    let seen = base.seen();
    Ok(SyncReport {
        runs_new: done.runs_imported,
        runs_updated: done.runs_updated,
        runs_unchanged: seen.runs_unchanged + done.runs_skipped,
        runs_relinked: relinked,
        runs_outside: seen.runs_outside,
        runs_deleted: deleted,
        logged_models_new: done.logged_models_imported,
        logged_models_unchanged: seen.logged_models_unchanged,
        traces_new: done.traces_imported,
        traces_unchanged: seen.traces_unchanged + done.traces_skipped,
        versions_new: done.versions_imported,
        versions_unchanged: done.versions_skipped,
        experiments: done.experiments.len() as u64,
        dataset_records: done.dataset_records,
        metric_points: done.metric_points,
        artifacts: done.artifacts,
        artifact_bytes: done.artifact_bytes,
        requests_source: src.requests_sent() - src_before,
        requests_destination: dst.requests_sent() - dst_before,
        seconds: started.elapsed().as_secs_f64(),
        import: done,
    })
}

/// Points the destination copies of runs imported without their parent (outside the time
/// window then, or in an experiment not copied yet) at the parent's copy, once the destination
/// holds it: `mlflow.parentRunId` set, then the parent's source id tag deleted (a kill between
/// the two leaves the tag, and the next sync does it again). Only runs the sync did not bring up
/// to date (their update points them at it); deleted ones take no writes. Returns how many.
async fn relink(base: &Base, runs: &HashMap<String, String>) -> Result<u64> {
    let mut waiting: Vec<(&String, &DstRun, &String)> = base
        .dst
        .iter()
        .filter_map(|(src, d)| Some((src, d, d.missing_parent.as_ref()?)))
        .filter(|(src, _, _)| {
            matches!(base.class_of(src), Some(Class::Unchanged | Class::Outside))
                && !base.runs.get(*src).is_some_and(|k| k.deleted)
        })
        .collect();
    waiting.sort_by_key(|(src, _, _)| *src);
    let mut relinked = 0;
    for (src, d, parent) in waiting {
        let Some(parent_dst) = runs
            .get(parent)
            .or_else(|| base.dst.get(parent).map(|p| &p.run_id))
        else {
            continue;
        };
        let what = || format!("pointing run {} (source run {src}) at its parent", d.run_id);
        d.dst
            .set_run_tag(&d.run_id, PARENT_RUN, parent_dst)
            .await
            .map_err(|e| e.within(what()))?;
        d.dst
            .delete_run_tag(&d.run_id, MISSING_PARENT)
            .await
            .map_err(|e| e.within(what()))?;
        relinked += 1;
    }
    Ok(relinked)
}

/// Deletes the destination runs whose source run the source no longer has: copies of this
/// source (their server tag names it) that the sync did not list and that the source answers
/// "not found" for (asked once each: the cost follows the deletions).
async fn delete_missing(base: &Base, server: &str, deleted: &mut Vec<DeletedRun>) -> Result<()> {
    let mut gone: Vec<(&String, &DstRun)> = base
        .dst
        .iter()
        .filter(|(src, d)| {
            d.server.as_deref() == Some(server)
                && !base.listed(src)
                && !base.runs.get(*src).is_some_and(|k| k.deleted)
        })
        .collect();
    gone.sort_by_key(|(src, _)| *src);
    for (src, d) in gone {
        match d.src.get_run(src).await {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.within(format!("asking whether source run {src} is gone"))),
        }
        d.dst.delete_run(&d.run_id).await.map_err(|e| {
            e.within(format!(
                "deleting run {} (its source run {src} is gone)",
                d.run_id
            ))
        })?;
        deleted.push(DeletedRun {
            source: src.clone(),
            destination: d.run_id.clone(),
        });
    }
    Ok(())
}

/// A destination run deleted because its source run is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedRun {
    /// The source run's id.
    pub source: String,
    /// The destination run's id.
    pub destination: String,
}

/// The destination client for the objects of source workspace `ws`, as an import places them.
fn scoped(dst: &Client, dst_workspace: Option<&str>, ws: Option<&str>, has: bool) -> Client {
    match (dst_workspace, ws) {
        (Some(w), _) => dst.in_workspace(w),
        (None, Some(w)) if has => dst.in_workspace(w),
        _ => dst.clone(),
    }
}

/// What the destination would hold of `r` once copied.
fn known(r: &Run) -> KnownRun {
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

    fn run(status: &str, tags: &[(&str, &str)]) -> Run {
        let mut r = Run::default();
        r.info.run_id = "r1".into();
        r.info.status = status.into();
        r.info.start_time = Some(5);
        r.data.tags = tags
            .iter()
            .map(|(k, v)| crate::mlflow::types::KeyValue::new(*k, *v))
            .collect();
        r
    }

    #[test]
    fn a_run_is_unchanged_only_when_ended_and_equal_in_every_part() {
        let r = run("FINISHED", &[("a", "1"), ("b", "2")]);
        let mut base = Base::default();
        base.runs.insert("r1".into(), known(&r));
        assert_eq!(base.classify(&r), Class::Unchanged);
        // Tag order does not matter; a changed value, a new point, a status do.
        let reordered = run("FINISHED", &[("b", "2"), ("a", "1")]);
        assert_eq!(base.peek(&reordered), Class::Unchanged);
        assert_eq!(base.peek(&run("FINISHED", &[("a", "1")])), Class::Changed);
        let mut point = r.clone();
        point.data.metrics.push(Metric {
            key: "m".into(),
            value: f64::NAN,
            ..Metric::default()
        });
        assert_eq!(base.peek(&point), Class::Changed);
        let mut deleted = r.clone();
        deleted.info.lifecycle_stage = "deleted".into();
        assert_eq!(base.peek(&deleted), Class::Changed);
        // A run that had not ended is read again, even if nothing seems to have changed.
        let running = run("RUNNING", &[("a", "1"), ("b", "2")]);
        base.runs.insert("r1".into(), known(&running));
        assert_eq!(base.peek(&running), Class::Changed);
        let mut other = r.clone();
        other.info.run_id = "r2".into();
        assert_eq!(base.classify(&other), Class::New);
        let seen = base.seen();
        assert_eq!((seen.runs_unchanged, seen.runs_new), (1, 1));
    }
}
