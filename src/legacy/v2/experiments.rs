//! Experiment trees (`experiment.json`, or the classic `manifest.json`): the experiment, then its
//! runs and logged models; and the experiments a model or run tree knows by id and name only.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;

use super::logged_models::{LoggedModelDir, read_logged_model, write_runs_and_models};
use super::runs::{read_run_meta, run_dir};
use super::{Doc, Id, Seen, Tags, parse_file, safe_relative};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::legacy::tree::Tree;

#[derive(Deserialize)]
struct ExperimentDoc {
    experiment: LegacyExperiment,
    /// `runs` (version 2), `run_ids` (classic; its README says `run-ids`).
    #[serde(default, alias = "run_ids", alias = "run-ids")]
    runs: Vec<String>,
    /// 1.1.x: `export_info.ok_runs`.
    #[serde(default)]
    export_info: Option<ExportInfo>,
    /// MLflow 3 (the tool's newer versions): `logged_models/<id>/logged_model.json`.
    #[serde(default)]
    logged_models: Vec<String>,
}

#[derive(Deserialize, Default)]
struct ExportInfo {
    #[serde(default)]
    ok_runs: Vec<String>,
}
#[derive(Deserialize)]
struct LegacyExperiment {
    experiment_id: Id,
    name: String,
    #[serde(default)]
    artifact_location: Option<String>,
    #[serde(default)]
    lifecycle_stage: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    creation_time: Option<i64>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    last_update_time: Option<i64>,
}
pub(super) fn read_experiment<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let file = if t.is_file(&root.join("experiment.json")) {
        root.join("experiment.json")
    } else {
        root.join("manifest.json")
    };
    let mut doc: Doc<ExperimentDoc> = parse_file(t, &file)?;
    if doc.mlflow.runs.is_empty()
        && let Some(info) = doc.mlflow.export_info.take()
    {
        doc.mlflow.runs = info.ok_runs;
    }
    let e = doc.mlflow.experiment;
    let experiment_id = e.experiment_id.into_string();
    seen.experiments.insert(experiment_id.clone());
    w.experiment(&rec::Experiment {
        experiment_id,
        name: e.name,
        artifact_location: e.artifact_location.unwrap_or_default(),
        lifecycle_stage: e.lifecycle_stage.unwrap_or_else(|| "active".into()),
        creation_time: e.creation_time,
        last_update_time: e.last_update_time,
        tags: e.tags.into_vec(),
        workspace: String::new(),
    })?;
    let mut runs = Vec::new();
    for id in &doc.mlflow.runs {
        if seen.runs.insert(id.clone()) {
            runs.push(read_run_meta(t, &run_dir(t, root, id)?)?);
        }
    }
    let mut models = Vec::new();
    for id in &doc.mlflow.logged_models {
        if !safe_relative(id) || id.contains('/') {
            return Err(Error::Input(format!(
                "{}: logged model id {id:?} is not a plain name",
                root.display()
            )));
        }
        if seen.logged_models.insert(id.clone()) {
            models.push(read_logged_model(t, &root.join("logged_models").join(id))?);
        }
    }
    write_runs_and_models(t, runs, models, w)
}
/// Names the experiments of `models` not in `experiments` yet (by the name the tree gives, or
/// their id).
pub(super) fn add_experiments_of(
    models: &[LoggedModelDir],
    experiments: &mut BTreeMap<String, String>,
) {
    for m in models {
        let id = &m.record.experiment_id;
        experiments.entry(id.clone()).or_insert_with(|| {
            m.experiment_name
                .clone()
                .unwrap_or_else(|| format!("experiment {id}"))
        });
    }
}

/// Experiments the tree knows only by id and name, but those written already.
pub(super) fn write_bare_experiments<W: Write>(
    experiments: BTreeMap<String, String>,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    for (id, name) in experiments {
        if !seen.experiments.insert(id.clone()) {
            continue;
        }
        w.experiment(&rec::Experiment {
            experiment_id: id,
            name,
            lifecycle_stage: "active".into(),
            ..rec::Experiment::default()
        })?;
    }
    Ok(())
}
