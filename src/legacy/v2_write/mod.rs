//! Writing the Python tool's current layout (export file version 2) from an archive, so the
//! pipelines and the Python tool's own `import-*` commands that read that layout can take what
//! mlflow-archive exported. The shape follows what the archive holds (its header's scope):
//!
//! | scope | tree |
//! |---|---|
//! | `experiment` | `experiment.json`, `<run_id>/run.json` + `artifacts/` (what `export-experiment` writes) |
//! | `model` | `model.json`, `<run_id>/run.json` + `artifacts/` per version's run (`export-model`) |
//! | `run` | `run.json`, `artifacts/` (`export-run`) |
//! | `experiments` | `experiments.json`, `<id>/experiment.json`, `<id>/<run_id>/…` (`export-experiments`) |
//! | anything else | `manifest.json`, `experiments/experiments.json`, `experiments/<id>/…`, `models/models.json`, `models/<name>/model.json` (`export-all`, and `export-models`) |
//!
//! Everything streams: a run's `run.json` is written as its metric chunks arrive (the layout keeps
//! a whole history in one JSON value, so it is written, never built), artifacts are copied as they
//! are read. The files that list what a tree holds (`experiment.json`, `model.json`,
//! `experiments.json`, `manifest.json`) are written last, so an interrupted tree is not mistaken
//! for a complete one. Logged models go where the tool's newer versions put them:
//! `logged_models/<model_id>/logged_model.json` + `artifacts/` next to their experiment's runs.

mod json;
mod models;
mod out;
mod runs;
mod tree;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use json::system;
pub(crate) use json::tags_map;
pub(crate) use out::{Out, prepare};
use tree::{Open, Tree};

use crate::error::{Error, Result};
use crate::format::{ArchiveReader, Record};

/// How the tree is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Shape {
    /// One experiment.
    Experiment,
    /// One registered model with its versions' runs.
    Model,
    /// One run.
    Run,
    /// Several experiments, no registered models (`export-experiments`).
    Experiments,
    /// Everything (`export-all`).
    Bulk,
}

impl Shape {
    /// The shape for an archive's scope.
    pub fn for_scope(scope: Option<&str>) -> Self {
        match scope {
            Some("experiment") => Shape::Experiment,
            Some("model") => Shape::Model,
            Some("run") => Shape::Run,
            Some("experiments") => Shape::Experiments,
            _ => Shape::Bulk,
        }
    }
}

/// What a tree received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeSummary {
    /// Experiments.
    pub experiments: u64,
    /// Runs.
    pub runs: u64,
    /// Logged models.
    pub logged_models: u64,
    /// Registered models.
    pub models: u64,
    /// Model versions.
    pub versions: u64,
    /// Artifact files.
    pub artifacts: u64,
}

/// Writes the archive read by `r` as a v2 tree at `out` (which must not exist, or be empty).
///
/// # Errors
///
/// The first problem reading the archive meets, or a failed write under `target` (an existing,
/// non-empty target is refused).
pub fn write_tree<R: Read>(
    r: &mut ArchiveReader<R>,
    out: &Path,
    shape: Shape,
) -> Result<TreeSummary> {
    prepare(out)?;
    write_to(r, Out::dir(out), shape)
}

/// Writes the archive read by `r` as a `.zip` of a v2 tree at `zip` (created or replaced: what
/// was there is removed, a symbolic link included, never followed), file by file, each deflated
/// as it streams.
///
/// # Errors
///
/// As [`write_tree`].
pub fn write_tree_zip<R: Read>(
    r: &mut ArchiveReader<R>,
    zip: &Path,
    shape: Shape,
) -> Result<TreeSummary> {
    write_to(r, Out::zip(zip)?, shape)
}

fn write_to<R: Read>(r: &mut ArchiveReader<R>, w: Out, shape: Shape) -> Result<TreeSummary> {
    let system = system(r.header());
    let out = w.root.clone();
    let mut t = Tree {
        w,
        out,
        shape,
        system,
        summary: TreeSummary::default(),
        experiments: BTreeMap::new(),
        run_roots: BTreeMap::new(),
        models: Vec::new(),
        model_dirs: HashSet::new(),
        open: Open::None,
    };
    while let Some(rec) = r.next_record()? {
        match rec {
            Record::Experiment(e) => t.experiment(e)?,
            Record::Run(run) => t.begin_run(run)?,
            Record::MetricChunk(c) => t.chunk(&c)?,
            Record::Artifact(a) => {
                let path = t.artifact_path(&a.path)?;
                t.w.start(&path)?;
                std::io::copy(&mut r.body(), &mut t.w)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                t.w.end_file(&path)?;
                t.summary.artifacts += 1;
            }
            Record::LoggedModel(m) => t.begin_logged_model(m)?,
            Record::RegisteredModel(m) => t.begin_model(m)?,
            Record::ModelVersion(v) => t.version(v)?,
            // Not yet written in the Python tool's layout (its `traces/` and
            // `evaluation_datasets/` folders): refused, never dropped in silence.
            Record::Trace(x) => {
                return Err(Error::Config(format!(
                    "trace {}: writing traces in the Python tool's layout is not supported yet; keep the archive (.mlar), or export without traces (--no-traces)",
                    x.trace_id
                )));
            }
            Record::Dataset(d) => {
                return Err(Error::Config(format!(
                    "evaluation dataset {} {:?}: writing datasets in the Python tool's layout is not supported yet; keep the archive (.mlar), or export without datasets (--no-datasets)",
                    d.dataset_id, d.name
                )));
            }
            Record::DatasetRecords(_) => {}
            Record::Permissions(p) if !p.is_empty() => {
                let object = match &t.open {
                    Open::Model { record, .. } => format!("registered model {:?}", record.name),
                    _ => "an experiment".to_string(),
                };
                return Err(Error::Config(format!(
                    "{object}: writing permissions in the Python tool's layout is not supported yet; keep the archive (.mlar), or export without --export-permissions"
                )));
            }
            Record::Permissions(_) => {}
            Record::Sealed(s) if matches!(s.unit, crate::format::path::UnitId::Other { .. }) => {
                return Err(Error::Config(format!(
                    "unit {:?} is of a kind a later version of the archive format defines, which this mlflow-archive does not know and cannot write in the Python tool's layout",
                    s.unit.prefix()
                )));
            }
            Record::Sealed(_) => t.sealed()?,
            Record::End(_) => {}
        }
    }
    t.finish()?;
    t.w.close()?;
    Ok(t.summary)
}
