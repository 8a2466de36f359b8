//! Runs: `run.json` read without its metrics, parents ordered before children, each run unit
//! written with its history and artifacts; and the tree of `export-run`, one run alone.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::IgnoredAny;

use super::experiments::{add_experiments_of, write_bare_experiments};
use super::history::stream_metrics;
use super::logged_models::{scan_logged_models, write_runs_and_models};
use super::{Doc, Id, Seen, Tags, parse_file, safe_relative};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::legacy::tree::Tree;

#[derive(Deserialize)]
struct RunDoc {
    info: RunInfo,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    #[allow(dead_code)]
    metrics: IgnoredAny,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    inputs: Option<Inputs>,
    #[serde(default)]
    outputs: Option<Outputs>,
}

#[derive(Deserialize)]
struct RunInfo {
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_uuid: Option<String>,
    experiment_id: Id,
    #[serde(default)]
    run_name: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    start_time: Option<i64>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    end_time: Option<i64>,
    #[serde(default)]
    lifecycle_stage: Option<String>,
    #[serde(default)]
    artifact_uri: Option<String>,
}

#[derive(Deserialize, Default)]
struct Inputs {
    #[serde(default)]
    dataset_inputs: Vec<LegacyDatasetInput>,
    #[serde(default)]
    model_inputs: Vec<ModelRef>,
}

#[derive(Deserialize)]
struct LegacyDatasetInput {
    dataset: LegacyDataset,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize)]
struct LegacyDataset {
    name: String,
    digest: String,
    #[serde(default)]
    source_type: String,
    #[serde(default)]
    source: String,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    profile: Option<String>,
}

#[derive(Deserialize)]
struct ModelRef {
    model_id: String,
}

#[derive(Deserialize, Default)]
struct Outputs {
    #[serde(default)]
    model_outputs: Vec<LegacyModelOutput>,
}

#[derive(Deserialize)]
struct LegacyModelOutput {
    model_id: String,
    #[serde(default)]
    step: i64,
}
/// A run read without its metrics: its record and where its files are.
pub(super) struct RunDir {
    pub(super) record: rec::Run,
    dir: PathBuf,
}

pub(super) fn read_run_meta(t: &dyn Tree, dir: &Path) -> Result<RunDir> {
    let path = dir.join("run.json");
    let doc: Doc<RunDoc> = parse_file(t, &path)?;
    let d = doc.mlflow;
    let run_id = d
        .info
        .run_id
        .or(d.info.run_uuid)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Input(format!("{}: info has no run_id", path.display())))?;
    let inputs = d.inputs.unwrap_or_default();
    let tags = d.tags.into_vec();
    // Older files have no run_name: the name is the tag mlflow.runName.
    let run_name = d
        .info
        .run_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| {
            tags.iter()
                .find(|t| t.key == "mlflow.runName")
                .map(|t| t.value.clone())
                .unwrap_or_default()
        });
    let record = rec::Run {
        run_name,
        experiment_id: d.info.experiment_id.into_string(),
        user_id: d.info.user_id.unwrap_or_default(),
        status: d.info.status.unwrap_or_else(|| "FINISHED".into()),
        start_time: d.info.start_time,
        end_time: d.info.end_time,
        lifecycle_stage: d.info.lifecycle_stage.unwrap_or_else(|| "active".into()),
        artifact_uri: d.info.artifact_uri.unwrap_or_default(),
        params: d
            .params
            .into_iter()
            .map(|(k, v)| rec::Tag::new(k, v))
            .collect(),
        tags,
        dataset_inputs: inputs
            .dataset_inputs
            .into_iter()
            .map(|i| rec::DatasetInput {
                tags: i.tags.into_vec(),
                name: i.dataset.name,
                digest: i.dataset.digest,
                source_type: i.dataset.source_type,
                source: i.dataset.source,
                schema: i.dataset.schema.unwrap_or_default(),
                profile: i.dataset.profile.unwrap_or_default(),
            })
            .collect(),
        model_inputs: inputs
            .model_inputs
            .into_iter()
            .map(|m| m.model_id)
            .collect(),
        model_outputs: d
            .outputs
            .unwrap_or_default()
            .model_outputs
            .into_iter()
            .map(|o| rec::ModelOutput {
                model_id: o.model_id,
                step: o.step,
            })
            .collect(),
        run_id,
    };
    Ok(RunDir {
        record,
        dir: dir.to_path_buf(),
    })
}

/// Orders runs parents first (a parent outside the set does not hold its children back).
pub(super) fn parents_first(runs: Vec<RunDir>) -> Vec<RunDir> {
    let ids: HashSet<String> = runs.iter().map(|r| r.record.run_id.clone()).collect();
    let mut waiting: HashMap<String, Vec<RunDir>> = HashMap::new();
    let mut ready: Vec<RunDir> = Vec::new();
    for r in runs {
        match r.record.parent_run_id() {
            Some(p) if ids.contains(p) && p != r.record.run_id => {
                waiting.entry(p.to_string()).or_default().push(r)
            }
            _ => ready.push(r),
        }
    }
    let mut out = Vec::new();
    let mut stack: Vec<RunDir> = ready.into_iter().rev().collect();
    while let Some(r) = stack.pop() {
        if let Some(children) = waiting.remove(&r.record.run_id) {
            stack.extend(children.into_iter().rev());
        }
        out.push(r);
    }
    // A cycle of parents: written last, as they are.
    out.extend(waiting.into_values().flatten());
    out
}

/// Writes one run unit: its record, its metric history streamed from `run.json`, its artifacts.
pub(super) fn write_run<W: Write>(
    t: &dyn Tree,
    r: &RunDir,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    w.begin_run(&r.record)?;
    // The classic layout keeps a metric's latest value only, with no time: it gets the run's.
    let when = r.record.end_time.or(r.record.start_time).unwrap_or(0);
    stream_metrics(t, &r.dir.join("run.json"), when, w)?;
    let artifacts = r.dir.join("artifacts");
    if t.is_dir(&artifacts) {
        write_artifacts(t, &artifacts, w)?;
    }
    w.end_unit()
}

/// Every file under `root`, in name order, as artifacts of the open unit.
pub(super) fn write_artifacts<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    for (rel, path) in t.files_under(root)? {
        let (size, body) = t.open(&path)?;
        w.artifact(&rel, size, body)?;
    }
    Ok(())
}
/// The runs of a tree: `<dir>/<run_id>/run.json` or `<dir>/runs/<run_id>/run.json`.
pub(super) fn run_dir(t: &dyn Tree, root: &Path, id: &str) -> Result<PathBuf> {
    if !safe_relative(id) || id.contains('/') {
        return Err(Error::Input(format!(
            "{}: run id {id:?} is not a plain name",
            root.display()
        )));
    }
    for d in [root.join("runs").join(id), root.join(id)] {
        if t.is_file(&d.join("run.json")) {
            return Ok(d);
        }
    }
    Err(Error::Input(format!(
        "{}: run {id} is listed but neither runs/{id}/run.json nor {id}/run.json exists",
        root.display()
    )))
}
pub(super) fn read_single_run<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let r = read_run_meta(t, root)?;
    let models = scan_logged_models(t, root, seen)?;
    // export-run does not write the experiment: only its id is known.
    let mut experiments = BTreeMap::new();
    experiments.insert(
        r.record.experiment_id.clone(),
        format!("experiment {}", r.record.experiment_id),
    );
    add_experiments_of(&models, &mut experiments);
    write_bare_experiments(experiments, w, seen)?;
    write_runs_and_models(t, vec![r], models, w)
}
