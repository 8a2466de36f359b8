//! [`Base`]: what a destination (or a state file) holds, and the export's decisions.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use futures_util::TryStreamExt;

use super::{
    Class, DIGEST, KnownRun, Seen, Window, digest_of, ended, known, point_hash, point_hashes,
};
use crate::error::{Error, Result};
use crate::mlflow::Client;
use crate::mlflow::types::{Metric, Run, ViewType};
use crate::transfer::import::{
    COMPLETE, DATASET_UPDATED, LINEAGE_DATASET, LINEAGE_MODEL, LINEAGE_RUN, LINEAGE_SERVER,
    MISSING_PARENT, STATE,
};
use crate::transfer::source::Source;

/// What the destination (or the earlier incremental exports) holds, by source id; see the
/// module's documentation.
#[derive(Debug, Default)]
pub struct Base {
    pub(super) runs: HashMap<String, KnownRun>,
    /// Source logged model id → its status at the destination (complete there).
    pub(super) logged_models: HashMap<String, String>,
    pub(super) traces: HashSet<String>,
    /// Source evaluation dataset id → its last update time when a complete copy was made.
    pub(super) datasets: HashMap<String, String>,
    /// The destination copy of each source run, on a server destination.
    pub(super) dst: HashMap<String, DstRun>,
    /// Runs started outside it are not exported.
    pub(super) window: Window,
    /// What the export decided, and the source runs it listed (for `--delete-missing`).
    pub(super) seen: Mutex<SeenState>,
}

/// Where a source run's complete copy is on a server destination, and the clients of its
/// MLflow workspace on both sides.
#[derive(Debug, Clone)]
pub(super) struct DstRun {
    pub(super) src: Client,
    pub(super) dst: Client,
    pub(super) run_id: String,
    pub(super) artifact_uri: String,
    /// Its latest metric values, as [`point_hashes`].
    pub(super) latest: Vec<(u64, u64)>,
    /// The source server its import named ([`LINEAGE_SERVER`]).
    pub(super) server: Option<String>,
    /// The source id of its parent, when it was imported without it ([`MISSING_PARENT`]).
    pub(super) missing_parent: Option<String>,
}

#[derive(Debug, Default)]
pub(super) struct SeenState {
    pub(super) counts: Seen,
    /// Every source run listed, with what was decided (the export's second pass follows the
    /// first pass's decision, even if the run changed in between).
    pub(super) runs: HashMap<String, Class>,
    /// What an archive export adds to the state, once it is sealed.
    pub(super) exported: BTreeMap<String, KnownRun>,
    pub(super) exported_models: Vec<(String, String)>,
    pub(super) exported_traces: Vec<String>,
}

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
        if let Some(d) = self.dst.get(&r.info.run_id) {
            let keys: HashSet<u64> = r.data.metrics.iter().map(|m| point_hash(m).0).collect();
            if d.latest.iter().any(|(key, _)| !keys.contains(key)) {
                let ours: Vec<(u64, u64)> = d
                    .latest
                    .iter()
                    .filter(|(key, _)| keys.contains(key))
                    .copied()
                    .collect();
                if digest_of(&ours) == now.metrics {
                    now.metrics.clone_from(&k.metrics);
                }
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

    /// Whether source evaluation dataset `d` has a complete copy at the destination made when
    /// it was last updated (not read again).
    pub fn has_dataset(&self, d: &crate::mlflow::api::datasets::EvaluationDataset) -> bool {
        let has = d
            .last_update_time
            .is_some_and(|t| self.datasets.get(&d.dataset_id) == Some(&t.to_string()));
        if has {
            self.seen
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .counts
                .datasets_unchanged += 1;
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
        let same = |m: &Metric| d.latest.binary_search(&point_hash(m)).is_ok();
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
    pub(super) fn class_of(&self, id: &str) -> Option<Class> {
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
            let mut datasets = std::pin::pin!(Source::datasets(&dst, &[]));
            while let Some(d) = datasets.try_next().await? {
                let tag = |k: &str| d.tags.get(k).map(String::as_str);
                if let (Some(from), Some(COMPLETE), Some(when)) =
                    (tag(LINEAGE_DATASET), tag(STATE), tag(DATASET_UPDATED))
                {
                    base.datasets.insert(from.to_string(), when.to_string());
                }
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
            let latest = point_hashes(&r.data.metrics);
            let k = KnownRun {
                digest: tag(DIGEST).unwrap_or_default().to_string(),
                metrics: digest_of(&latest),
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
                    latest,
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
}

/// The destination client for the objects of source workspace `ws`, as an import places them.
fn scoped(dst: &Client, dst_workspace: Option<&str>, ws: Option<&str>, has: bool) -> Client {
    match (dst_workspace, ws) {
        (Some(w), _) => dst.in_workspace(w),
        (None, Some(w)) if has => dst.in_workspace(w),
        _ => dst.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mlflow::types::Metric;

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
