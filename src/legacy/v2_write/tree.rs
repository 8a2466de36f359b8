//! The tree being written: the experiments and what each holds, the unit open, logged models,
//! and the listing files (`experiment.json`, `experiments.json`, `models.json`, `manifest.json`)
//! written last.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use serde_json::{Value, json};

use super::json::{tags_map, write_doc};
use super::out::Out;
use super::{Shape, TreeSummary};
use crate::error::{Error, Result};
use crate::format::model as rec;

/// An experiment and the ids of its runs written so far.
pub(super) struct ExperimentEntry {
    pub(super) record: rec::Experiment,
    pub(super) runs: Vec<String>,
    pub(super) logged_models: Vec<String>,
}

pub(super) enum Open {
    None,
    /// A run whose `run.json` is still being written (its metrics object is open).
    Run {
        dir: PathBuf,
        json: bool,
        /// The metric key whose list is open, and the keys closed.
        key: Option<String>,
        done_keys: HashSet<String>,
        points: bool,
    },
    LoggedModel {
        dir: PathBuf,
        record: rec::LoggedModel,
    },
    Model {
        record: rec::RegisteredModel,
        versions: Vec<rec::ModelVersion>,
    },
}

pub(super) struct Tree {
    pub(super) w: Out,
    pub(super) out: PathBuf,
    pub(super) shape: Shape,
    pub(super) system: Value,
    pub(super) summary: TreeSummary,
    pub(super) experiments: BTreeMap<String, ExperimentEntry>,
    /// Run id → (experiment id, artifact root on the source), for `model.json`.
    pub(super) run_roots: BTreeMap<String, (String, String)>,
    /// The directories of the registered models written (bulk trees), under `models/`.
    pub(super) models: Vec<String>,
    /// The same, in lower case.
    pub(super) model_dirs: HashSet<String>,
    pub(super) open: Open,
}

impl Tree {
    pub(super) fn experiment_dir(&self, id: &str) -> PathBuf {
        match self.shape {
            Shape::Bulk => self.out.join("experiments").join(id),
            Shape::Experiments => self.out.join(id),
            _ => self.out.clone(),
        }
    }

    pub(super) fn experiment(&mut self, e: rec::Experiment) -> Result<()> {
        if self.shape == Shape::Experiment && !self.experiments.is_empty() {
            return Err(Error::Config(format!(
                "experiment {}: the archive holds more than one experiment; write it as a bulk tree (export-all layout)",
                e.experiment_id
            )));
        }
        self.summary.experiments += 1;
        self.experiments.insert(
            e.experiment_id.clone(),
            ExperimentEntry {
                record: e,
                runs: Vec::new(),
                logged_models: Vec::new(),
            },
        );
        Ok(())
    }

    pub(super) fn begin_logged_model(&mut self, m: rec::LoggedModel) -> Result<()> {
        let dir = self
            .experiment_dir(&m.experiment_id)
            .join("logged_models")
            .join(&m.model_id);
        if let Some(e) = self.experiments.get_mut(&m.experiment_id) {
            e.logged_models.push(m.model_id.clone());
        }
        self.summary.logged_models += 1;
        self.open = Open::LoggedModel { dir, record: m };
        Ok(())
    }

    pub(super) fn sealed(&mut self) -> Result<()> {
        self.close_run_json()?;
        match std::mem::replace(&mut self.open, Open::None) {
            Open::LoggedModel { dir, record: m } => {
                // Model and run trees hold no experiment.json: the experiment's name goes here.
                let exp_name = self
                    .experiments
                    .get(&m.experiment_id)
                    .map(|e| e.record.name.clone());
                let doc = json!({
                    "model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
                    "artifact_location": m.artifact_uri, "creation_timestamp": m.creation_timestamp,
                    "last_updated_timestamp": m.last_updated_timestamp, "model_type": m.model_type,
                    "source_run_id": m.source_run_id, "status": m.status,
                    "status_message": m.status_message, "tags": tags_map(&m.tags),
                    "params": tags_map(&m.params), "_experiment_name": exp_name,
                });
                write_doc(
                    &mut self.w,
                    &dir.join("logged_model.json"),
                    &self.system,
                    None,
                    doc,
                )
            }
            Open::Model { record, versions } => self.write_model(record, versions),
            Open::Run { .. } | Open::None => Ok(()),
        }
    }

    /// The listing files, last.
    pub(super) fn finish(&mut self) -> Result<()> {
        self.close_run_json()?;
        for e in self.experiments.values() {
            let dir = self.experiment_dir(&e.record.experiment_id);
            if !matches!(
                self.shape,
                Shape::Experiment | Shape::Experiments | Shape::Bulk
            ) {
                continue;
            }
            let x = &e.record;
            let doc = json!({
                "experiment": {
                    "experiment_id": x.experiment_id, "name": x.name,
                    "artifact_location": x.artifact_location, "lifecycle_stage": x.lifecycle_stage,
                    "tags": tags_map(&x.tags), "creation_time": x.creation_time,
                    "last_update_time": x.last_update_time,
                },
                "runs": e.runs,
                "logged_models": e.logged_models,
            });
            let info = json!({
                "num_total_runs": e.runs.len(), "num_ok_runs": e.runs.len(),
                "num_failed_runs": 0, "failed_runs": [],
            });
            write_doc(
                &mut self.w,
                &dir.join("experiment.json"),
                &self.system,
                Some(info),
                doc,
            )?;
        }
        let list = match self.shape {
            Shape::Bulk => Some(self.out.join("experiments/experiments.json")),
            Shape::Experiments => Some(self.out.join("experiments.json")),
            _ => None,
        };
        if let Some(list) = list {
            // As export-experiments writes it (its import-experiments reads `id` and `name`).
            let exps: Vec<Value> = self
                .experiments
                .values()
                .map(|e| json!({"id": e.record.experiment_id, "name": e.record.name, "ok_runs": e.runs.len(), "failed_runs": 0}))
                .collect();
            let runs: usize = self.experiments.values().map(|e| e.runs.len()).sum();
            write_doc(
                &mut self.w,
                &list,
                &self.system,
                Some(json!({
                    "experiments": exps.len(), "total_runs": runs, "ok_runs": runs, "failed_runs": 0,
                })),
                json!({ "experiments": exps }),
            )?;
        }
        if self.shape == Shape::Bulk {
            // The directories, as the Python tool's import-all reads them (it imports each
            // model under its directory's name; mlflow-archive reads the name in model.json).
            let mut names = self.models.clone();
            names.sort();
            write_doc(
                &mut self.w,
                &self.out.join("models/models.json"),
                &self.system,
                Some(
                    json!({"num_total_models": names.len(), "num_ok_models": names.len(), "failed_models": []}),
                ),
                json!({ "models": names }),
            )?;
            write_doc(
                &mut self.w,
                &self.out.join("manifest.json"),
                &self.system,
                Some(json!({})),
                json!({}),
            )?;
        }
        Ok(())
    }
}
