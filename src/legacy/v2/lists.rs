//! The bulk tops that name other trees: `export-all` and `export-models` (`manifest.json` with
//! `experiments/` and `models/`), `experiments.json`, `models.json` and the classic export list.

use std::io::Write;
use std::path::Path;

use serde::Deserialize;

use super::experiments::read_experiment;
use super::models::read_model;
use super::{Doc, Id, Seen, parse_file, safe_relative};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::legacy::tree::Tree;

#[derive(Deserialize)]
struct ExperimentsDoc {
    #[serde(default)]
    experiments: Vec<ExperimentEntry>,
}

#[derive(Deserialize)]
struct ExperimentEntry {
    id: Id,
}

#[derive(Deserialize)]
struct ClassicListDoc {
    #[serde(default)]
    experiments: Vec<ExperimentEntry>,
}

/// The classic export list: `manifest.json` names the experiments, each in `<id>/`.
pub(super) fn read_classic_list<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let doc: Doc<ClassicListDoc> = parse_file(t, &root.join("manifest.json"))?;
    for e in doc.mlflow.experiments {
        let id = e.id.into_string();
        if !safe_relative(&id) || id.contains('/') {
            return Err(Error::Input(format!(
                "{}: experiment id {id:?} is not a plain name",
                root.join("manifest.json").display()
            )));
        }
        let dir = root.join(&id);
        if !t.is_file(&dir.join("manifest.json")) && !t.is_file(&dir.join("experiment.json")) {
            return Err(Error::Input(format!(
                "{}: listed in manifest.json but has no manifest.json",
                dir.display()
            )));
        }
        read_experiment(t, &dir, w, seen)?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct ModelsDoc {
    #[serde(default)]
    models: Vec<String>,
}

/// `export-all` and `export-models`: every experiment of `experiments/`, then every model of
/// `models/`.
pub(super) fn read_bulk<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let experiments = root.join("experiments");
    if t.is_file(&experiments.join("experiments.json")) {
        read_experiment_list(t, &experiments, w, seen)?;
    }
    let models = root.join("models");
    if t.is_file(&models.join("models.json")) {
        read_model_list(t, &models, w, seen)?;
    }
    Ok(())
}

/// `export-experiments`: `experiments.json` lists the experiments, each in `<id>/`.
pub(super) fn read_experiment_list<W: Write>(
    t: &dyn Tree,
    dir: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let list = dir.join("experiments.json");
    let doc: Doc<ExperimentsDoc> = parse_file(t, &list)?;
    for e in doc.mlflow.experiments {
        let id = e.id.into_string();
        if !safe_relative(&id) || id.contains('/') {
            return Err(Error::Input(format!(
                "{}: experiment id {id:?} is not a plain name",
                list.display()
            )));
        }
        let exp = dir.join(id);
        if !t.is_file(&exp.join("experiment.json")) {
            return Err(Error::Input(format!(
                "{}: listed in experiments.json but has no experiment.json",
                exp.display()
            )));
        }
        read_experiment(t, &exp, w, seen)?;
    }
    Ok(())
}

/// The models of `export-models` (its `models/`): `models.json` lists the registered models, each
/// in `<name>/`.
pub(super) fn read_model_list<W: Write>(
    t: &dyn Tree,
    dir: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let list = dir.join("models.json");
    let doc: Doc<ModelsDoc> = parse_file(t, &list)?;
    for name in doc.mlflow.models {
        if !safe_relative(&name) {
            return Err(Error::Input(format!(
                "{}: model {name:?} would be read from outside the tree",
                list.display()
            )));
        }
        let model = dir.join(&name);
        if !t.is_file(&model.join("model.json")) {
            return Err(Error::Input(format!(
                "{}: listed in models.json but has no model.json",
                model.display()
            )));
        }
        read_model(t, &model, w, seen)?;
    }
    Ok(())
}
