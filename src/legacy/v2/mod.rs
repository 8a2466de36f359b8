//! Reading the Python tool's current layout (export file version 2, `mlflow-export-import` 1.2.0
//! and later) into archive records: every JSON file has `system`, `info` and `mlflow` sections, and
//! the payload is under `mlflow`.
//!
//! | tree | written by | read as |
//! |---|---|---|
//! | `experiment.json`, `<run_id>/run.json` (or `runs/<run_id>/`), `artifacts/` under each run | `export-experiment` | the experiment and its runs |
//! | `run.json`, `artifacts/` | `export-run` | one run (its experiment named by id only) |
//! | `model.json`, `<run_id>/run.json` per version | `export-model` | the versions' runs, then the model with every version |
//! | `experiments.json`, `<experiment_id>/` (each an `export-experiment` tree) | `export-experiments` | every experiment listed |
//! | `manifest.json`, `experiments/experiments.json` + `experiments/<id>/`, `models/models.json` + `models/<name>/model.json` | `export-all`, `export-models` | every experiment, then every model |
//! | `models.json`, `<name>/model.json` | the `models/` of `export-models`, read alone | every model listed (their runs are in the sibling `experiments/`, not read) |
//! | `manifest.json` naming experiments, `<id>/manifest.json` | the classic `export-experiment-list` | every experiment listed |
//!
//! Logged models (MLflow 3; mlflow-archive writes them, the Python tool 1.2.0 does not) are in
//! `logged_models/<model_id>/logged_model.json` + `artifacts/` beside the runs of an experiment,
//! model or run tree.
//!
//! The reader writes into an [`ArchiveWriter`], so every legacy tree passes the archive's own checks
//! on its way to an import (through an in-process pipe) or to a `.mlar` file. `run.json` keeps a
//! run's whole metric history in one JSON value: it is read twice, once without the metrics (the
//! run's record must come first) and once streaming the metrics into chunks, so no history is held
//! whole.

mod experiments;
mod history;
mod lists;
mod logged_models;
mod models;
mod runs;

use std::collections::{BTreeMap, HashSet};
use std::io::{Read, Write};
use std::path::Path;

use serde::Deserialize;

use super::tree::{DirTree, Tree};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::mlflow::json::QuoteNonFinite;
use experiments::read_experiment;
use lists::{read_bulk, read_classic_list, read_experiment_list, read_model_list};
use models::read_model;
use runs::read_single_run;

/// What a tree holds, by its top-level file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// `experiment.json`.
    Experiment,
    /// `run.json`.
    Run,
    /// `model.json`.
    Model,
    /// `manifest.json` with `experiments/experiments.json` and/or `models/models.json`
    /// (`export-all`, `export-models`).
    Bulk,
    /// `experiments.json` naming experiments, each in `<id>/` (`export-experiments`).
    Experiments,
    /// `models.json` naming registered models, each in `<name>/` (the `models/` of
    /// `export-models`, read alone).
    Models,
    /// The classic export list: `manifest.json` naming experiments, each `<id>/manifest.json`.
    ClassicList,
}

/// Detects a v2 tree at `root`, or `None` when it is not one.
pub fn detect(t: &dyn Tree, root: &Path) -> Option<Kind> {
    let has = |f: &str| t.is_file(&root.join(f));
    if has("experiments/experiments.json") || has("models/models.json") {
        Some(Kind::Bulk)
    } else if has("manifest.json") {
        // The classic layout: an experiment's manifest, or an export list's.
        let mut head = Vec::new();
        let (_, mut r) = t.open(&root.join("manifest.json")).ok()?;
        r.read_to_end(&mut head).ok()?;
        let v: serde_json::Value = crate::mlflow::json::parse(&head).ok()?;
        let v = v.get("mlflow").cloned().unwrap_or(v);
        if v.get("experiment").is_some() {
            Some(Kind::Experiment)
        } else if v.get("experiments").is_some() {
            Some(Kind::ClassicList)
        } else {
            None
        }
    } else if has("experiment.json") {
        Some(Kind::Experiment)
    } else if has("model.json") {
        Some(Kind::Model)
    } else if has("run.json") {
        Some(Kind::Run)
    } else if has("experiments.json") {
        Some(Kind::Experiments)
    } else if has("models.json") {
        Some(Kind::Models)
    } else {
        None
    }
}

/// Writes everything the directory at `root` holds into `w` (the caller finishes the archive).
///
/// # Errors
///
/// A tree that is not one the Python tool writes (the error names the file and what is wrong), a
/// file that cannot be read, or an error of the archive writer `w`.
pub fn read_tree<W: Write>(root: &Path, w: &mut ArchiveWriter<W>) -> Result<()> {
    read_tree_in(&DirTree::new(root), root, w)
}

/// Writes everything the tree `t` holds under `root` into `w`.
///
/// # Errors
///
/// As [`read_tree`].
pub fn read_tree_in<W: Write>(t: &dyn Tree, root: &Path, w: &mut ArchiveWriter<W>) -> Result<()> {
    let mut seen = Seen::default();
    match detect(t, root) {
        Some(Kind::Experiment) => read_experiment(t, root, w, &mut seen),
        Some(Kind::Run) => read_single_run(t, root, w, &mut seen),
        Some(Kind::Model) => read_model(t, root, w, &mut seen),
        Some(Kind::Bulk) => read_bulk(t, root, w, &mut seen),
        Some(Kind::Experiments) => read_experiment_list(t, root, w, &mut seen),
        Some(Kind::Models) => read_model_list(t, root, w, &mut seen),
        Some(Kind::ClassicList) => read_classic_list(t, root, w, &mut seen),
        None => Err(not_an_export(root)),
    }
}

/// The error for a tree of no known layout, naming the files looked for.
pub fn not_an_export(root: &Path) -> Error {
    Error::Input(format!(
        "{}: not an export of mlflow-export-import (no experiment.json, model.json, run.json, experiments.json, models.json or manifest.json at its top)",
        root.display()
    ))
}

/// What a tree has written so far: a bulk tree holds some runs twice (under an experiment and
/// under a model), and each becomes one unit.
#[derive(Default)]
struct Seen {
    experiments: HashSet<String>,
    runs: HashSet<String>,
    logged_models: HashSet<String>,
}

/// The payload of a file: under `mlflow` (file version 2), or the file itself (the classic
/// 2020-2021 layout and the 1.1.x files, which have no sections).
struct Doc<T> {
    mlflow: T,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Doc<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut v = serde_json::Value::deserialize(d)?;
        let payload = match v.get_mut("mlflow") {
            Some(inner) if inner.is_object() => inner.take(),
            _ => v,
        };
        T::deserialize(payload)
            .map(|mlflow| Doc { mlflow })
            .map_err(serde::de::Error::custom)
    }
}

/// Tags as the Python tool writes them: a dict (runs, experiments, versions) or a list of
/// `{key, value}` (registered models).
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Tags {
    #[default]
    None,
    Map(BTreeMap<String, String>),
    List(Vec<KeyValue>),
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: String,
}

impl Tags {
    fn into_vec(self) -> Vec<rec::Tag> {
        match self {
            Tags::None => Vec::new(),
            Tags::Map(m) => m.into_iter().map(|(k, v)| rec::Tag::new(k, v)).collect(),
            Tags::List(l) => l
                .into_iter()
                .map(|t| rec::Tag::new(t.key, t.value))
                .collect(),
        }
    }
}

/// An id the Python tool may write as a number or a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    S(String),
    N(i64),
}

impl Id {
    fn into_string(self) -> String {
        match self {
            Id::S(s) => s,
            Id::N(n) => n.to_string(),
        }
    }
}

/// Parses a small JSON file (bare `NaN` accepted); errors name the file.
fn parse_file<T: for<'de> Deserialize<'de>>(t: &dyn Tree, path: &Path) -> Result<T> {
    let (_, f) = t.open(path)?;
    serde_json::from_reader(QuoteNonFinite::new(f)).map_err(|e| Error::Json {
        what: format!(
            "{}: not the layout mlflow-export-import writes",
            path.display()
        ),
        source: e,
    })
}

/// Whether `p` is a relative path of plain parts (no `..`, `.`, empty part, backslash or NUL), so
/// joining it to a directory stays inside.
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(['\\', '\0'])
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}
