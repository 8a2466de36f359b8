//! The tags an import sets and reads (one place for their names), and what it keeps of an
//! archive's own.

use super::*;

/// The tag that names an imported run's source id.
pub const LINEAGE_RUN: &str = "mlflow_archive.source.run_id";

/// The tag that names the server an imported run came from (its address without credentials,
/// as the archive's header names it): `sync --delete-missing` deletes only runs of the source
/// it syncs.
pub const LINEAGE_SERVER: &str = "mlflow_archive.source.server";

/// The tag that names an imported logged model's source id.
pub const LINEAGE_MODEL: &str = "mlflow_archive.source.model_id";

/// The tag that says how far an import of a run or logged model got.
pub const STATE: &str = "mlflow_archive.import";

/// The tag of an evaluation dataset the import made: its source id (a dataset is found again by
/// it, since names are not unique).
pub const LINEAGE_DATASET: &str = "mlflow_archive.source.dataset_id";

/// The tag of an evaluation dataset the import made that holds its source's last update time
/// (milliseconds) when it was copied: a sync reads the source dataset again only when it moved.
pub const DATASET_UPDATED: &str = "mlflow_archive.source.last_update_time";

/// Marks a half-imported run that a later import gave up on and deleted; it keeps its lineage tag,
/// so every import of a source run can be found, but [`is_abandoned`] runs are not the import.
pub const ABANDONED: &str = "mlflow_archive.abandoned";

/// A tag unique to one creation of a run, to find it if the server's answer was lost.
pub const ATTEMPT: &str = "mlflow_archive.attempt";

/// A value no other run creation uses: process, time and a counter.
pub(super) fn attempt_id() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// A parent run that was not in the archive (the tag `mlflow.parentRunId` is dropped).
pub const MISSING_PARENT: &str = "mlflow_archive.source.parent_run_id";

/// The prefix of every tag this tool sets.
pub(super) const OWN_PREFIX: &str = "mlflow_archive.";

/// Where an archive's lineage tags (`mlflow_archive.source.*`, set by the import that made the
/// objects it was exported from) are kept: `mlflow_archive.origin.*`, the first source.
pub(super) const ORIGIN_PREFIX: &str = "mlflow_archive.origin.";

/// The tags of an archived object that this import writes: every tag but this tool's own. Those
/// describe an earlier import, not this one: its lineage (`mlflow_archive.source.*`) is kept as
/// history under `mlflow_archive.origin.*` (the first hop's wins, when the object already carries
/// one), its state, attempt, abandonment and placeholder tags are dropped. So this import's own
/// tags are the only ones that say what this import did.
pub(super) fn archived_tags(tags: &[rec::Tag]) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let Some(rest) = t.key.strip_prefix(OWN_PREFIX) else {
            out.push(KeyValue::new(t.key.clone(), t.value.clone()));
            continue;
        };
        if t.key.starts_with(ORIGIN_PREFIX) {
            out.push(KeyValue::new(t.key.clone(), t.value.clone()));
        } else if let Some(what) = rest.strip_prefix("source.") {
            let origin = format!("{ORIGIN_PREFIX}{what}");
            if !tags.iter().any(|o| o.key == origin) {
                out.push(KeyValue::new(origin, t.value.clone()));
            }
        }
    }
    out
}

/// The tag that names an imported model version's source number.
pub const LINEAGE_VERSION: &str = "mlflow_archive.source.version";

/// The tag of a model version the import made that names the source registered model it came
/// from (`<workspace>/<name>`, or the name from a source without workspaces): two source models
/// imported under one name (from two workspaces or servers) keep their versions apart.
pub const LINEAGE_SOURCE_MODEL: &str = "mlflow_archive.source.registered_model";

/// The tag of a placeholder version created (and deleted) to reproduce a gap in numbering.
pub const PLACEHOLDER: &str = "mlflow_archive.placeholder";

/// The path under its run that a placeholder version's `runs:/` source names (nothing is there).
pub(super) const PLACEHOLDER_PATH: &str = "mlflow-archive-placeholder";

/// The tag of a prompt that lists the experiments it was used in (`,3,0,`; MLflow 3).
pub const PROMPT_EXPERIMENTS: &str = "_mlflow_experiment_ids";

/// The tag that makes a registered model or a version a prompt (MLflow 3).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

pub(super) use crate::transfer::map::key_values as kv;

/// [`STATE`] of a run or logged model being written.
pub const IN_PROGRESS: &str = "in-progress";
/// [`STATE`] of a run or logged model whose every part was written.
pub const COMPLETE: &str = "complete";
/// MLflow's tag naming a nested run's parent.
pub const PARENT_RUN: &str = "mlflow.parentRunId";

pub(super) fn is_complete(r: &crate::mlflow::types::Run) -> bool {
    r.data
        .tags
        .iter()
        .any(|t| t.key == STATE && t.value == COMPLETE)
}

/// An imported run (it has the lineage tag) that was half done and given up by a later import:
/// marked, or deleted without being complete (an import deletes a run before its state says
/// complete only when it abandons it).
pub fn is_abandoned(r: &crate::mlflow::types::Run) -> bool {
    let tag = |k: &str| r.data.tags.iter().any(|t| t.key == k);
    tag(LINEAGE_RUN) && (tag(ABANDONED) || (r.info.lifecycle_stage == "deleted" && !is_complete(r)))
}

/// Prefix of the tags that keep a source value the destination keeps for itself
/// (`mlflow_archive.source.mlflow.user` on a Databricks workspace).
pub const SOURCE_PREFIX: &str = "mlflow_archive.source.";

/// A run's Databricks notebook tags: re-pointed at the notebook when it is imported too.
pub const NOTEBOOK_TAGS: [&str; 3] = [
    crate::mlflow::api::workspace::NOTEBOOK_PATH,
    crate::transfer::import::notebooks::NOTEBOOK_ID,
    crate::mlflow::api::workspace::NOTEBOOK_REVISION,
];
