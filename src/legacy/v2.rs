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

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::tree::{DirTree, Tree};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::mlflow::json::QuoteNonFinite;

/// Points per metric chunk written.
const CHUNK_POINTS: usize = 10_000;

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
    Error::Config(format!(
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
struct LoggedModelDoc {
    model_id: String,
    experiment_id: Id,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    artifact_location: Option<String>,
    #[serde(default)]
    creation_timestamp: Option<i64>,
    #[serde(default)]
    last_updated_timestamp: Option<i64>,
    #[serde(default)]
    model_type: Option<String>,
    #[serde(default)]
    source_run_id: Option<String>,
    #[serde(default)]
    status: Option<Id>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    params: Tags,
    /// Its experiment's name (mlflow-archive writes it: model and run trees hold no experiment).
    #[serde(default, rename = "_experiment_name")]
    experiment_name: Option<String>,
}

/// A logged model of the tree, read; written after its source run.
struct LoggedModelDir {
    record: rec::LoggedModel,
    dir: PathBuf,
    experiment_name: Option<String>,
}

fn read_logged_model(t: &dyn Tree, dir: &Path) -> Result<LoggedModelDir> {
    let path = dir.join("logged_model.json");
    let doc: Doc<LoggedModelDoc> = parse_file(t, &path)?;
    let m = doc.mlflow;
    let status = match m.status.map(Id::into_string) {
        Some(s) if s.chars().all(|c| c.is_ascii_digit()) => match s.as_str() {
            "1" => "LOGGED_MODEL_PENDING".to_string(),
            "2" => "LOGGED_MODEL_READY".to_string(),
            "3" => "LOGGED_MODEL_UPLOAD_FAILED".to_string(),
            _ => String::new(),
        },
        Some(s) => s,
        None => String::new(),
    };
    Ok(LoggedModelDir {
        record: rec::LoggedModel {
            model_id: m.model_id,
            experiment_id: m.experiment_id.into_string(),
            name: m.name.unwrap_or_default(),
            model_type: m.model_type.unwrap_or_default(),
            source_run_id: m.source_run_id.unwrap_or_default(),
            status,
            status_message: m.status_message.unwrap_or_default(),
            artifact_uri: m.artifact_location.unwrap_or_default(),
            creation_timestamp: m.creation_timestamp,
            last_updated_timestamp: m.last_updated_timestamp,
            params: m.params.into_vec(),
            tags: m.tags.into_vec(),
        },
        dir: dir.to_path_buf(),
        experiment_name: m.experiment_name,
    })
}

/// The logged models of a model or run tree, which lists them nowhere: every
/// `logged_models/<model_id>/logged_model.json`, in id order, but those written already.
fn scan_logged_models(t: &dyn Tree, root: &Path, seen: &mut Seen) -> Result<Vec<LoggedModelDir>> {
    let dir = root.join("logged_models");
    if !t.is_dir(&dir) {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for (rel, _) in t.files_under(&dir)? {
        if let Some((id, "logged_model.json")) = rel.split_once('/')
            && seen.logged_models.insert(id.to_string())
        {
            found.push(read_logged_model(t, &dir.join(id))?);
        }
    }
    Ok(found)
}

/// Writes `runs`, parents first, and `models`: each logged model right after the run of `runs`
/// that made it, the others first.
fn write_runs_and_models<W: Write>(
    t: &dyn Tree,
    runs: Vec<RunDir>,
    models: Vec<LoggedModelDir>,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    let mut by_source: HashMap<String, Vec<LoggedModelDir>> = HashMap::new();
    let run_ids: HashSet<&str> = runs.iter().map(|r| r.record.run_id.as_str()).collect();
    for m in models {
        let source = m.record.source_run_id.clone();
        if run_ids.contains(source.as_str()) {
            by_source.entry(source).or_default().push(m);
        } else {
            write_logged_model(t, &m, w)?;
        }
    }
    for r in parents_first(runs) {
        write_run(t, &r, w)?;
        for m in by_source.remove(&r.record.run_id).unwrap_or_default() {
            write_logged_model(t, &m, w)?;
        }
    }
    Ok(())
}

fn write_logged_model<W: Write>(
    t: &dyn Tree,
    m: &LoggedModelDir,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    w.begin_logged_model(&m.record)?;
    let artifacts = m.dir.join("artifacts");
    if t.is_dir(&artifacts) {
        write_artifacts(t, &artifacts, w)?;
    }
    w.end_unit()
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

/// A run read without its metrics: its record and where its files are.
struct RunDir {
    record: rec::Run,
    dir: PathBuf,
}

fn read_run_meta(t: &dyn Tree, dir: &Path) -> Result<RunDir> {
    let path = dir.join("run.json");
    let doc: Doc<RunDoc> = parse_file(t, &path)?;
    let d = doc.mlflow;
    let run_id = d
        .info
        .run_id
        .or(d.info.run_uuid)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Error::Config(format!("{}: info has no run_id", path.display())))?;
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
fn parents_first(runs: Vec<RunDir>) -> Vec<RunDir> {
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
fn write_run<W: Write>(t: &dyn Tree, r: &RunDir, w: &mut ArchiveWriter<W>) -> Result<()> {
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
fn write_artifacts<W: Write>(t: &dyn Tree, root: &Path, w: &mut ArchiveWriter<W>) -> Result<()> {
    for (rel, path) in t.files_under(root)? {
        let (size, body) = t.open(&path)?;
        w.artifact(&rel, size, body)?;
    }
    Ok(())
}

/// Reads `run.json` again and writes its `metrics` (under `mlflow` in file version 2, at the top
/// in older files) as chunks, point by point.
fn stream_metrics<W: Write>(
    t: &dyn Tree,
    path: &Path,
    when: i64,
    w: &mut ArchiveWriter<W>,
) -> Result<()> {
    let (_, f) = t.open(path)?;
    let mut de = serde_json::Deserializer::from_reader(QuoteNonFinite::new(f));
    let mut scan = Scan {
        sink: &mut |c: rec::MetricChunk| w.metric_chunk(&c),
        failure: None,
        when,
    };
    let parsed = Object(&mut scan).deserialize(&mut de);
    if let Some(e) = scan.failure {
        return Err(e);
    }
    parsed.map_err(|e| Error::Json {
        what: format!("{}: reading the metric history", path.display()),
        source: e,
    })
}

/// Where the chunks of a streamed `run.json` go, and what a classic single value is timed at.
struct Scan<'s> {
    sink: &'s mut dyn FnMut(rec::MetricChunk) -> Result<()>,
    /// The sink's own error (serde carries only text).
    failure: Option<Error>,
    /// The time given to a classic file's one value per metric.
    when: i64,
}

impl Scan<'_> {
    fn emit<E: serde::de::Error>(&mut self, chunk: rec::MetricChunk) -> std::result::Result<(), E> {
        if chunk.points.is_empty() {
            return Ok(());
        }
        (self.sink)(chunk).map_err(|e| {
            let msg = e.to_string();
            self.failure = Some(e);
            E::custom(msg)
        })
    }
}

/// An object of `run.json`: its `metrics` are read, `mlflow` is looked into, the rest skipped.
struct Object<'c, 's>(&'c mut Scan<'s>);

impl<'de> DeserializeSeed<'de> for Object<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Object<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a run.json object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "mlflow" => map.next_value_seed(Object(&mut *self.0))?,
                "metrics" => map.next_value_seed(Metrics(&mut *self.0))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `metrics`: key → history.
struct Metrics<'c, 's>(&'c mut Scan<'s>);

impl<'de> DeserializeSeed<'de> for Metrics<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Metrics<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("metrics: an object of metric histories")
    }
    fn visit_unit<E: serde::de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            map.next_value_seed(History {
                key,
                scan: &mut *self.0,
            })?;
        }
        Ok(())
    }
}

/// One metric's history: a list of points, or (classic `run.json`) a single latest value.
struct History<'c, 's> {
    key: String,
    scan: &'c mut Scan<'s>,
}

#[derive(Deserialize)]
struct LegacyPoint {
    #[serde(with = "crate::mlflow::json::float")]
    value: f64,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    step: i64,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
}

impl<'de> DeserializeSeed<'de> for History<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for History<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the history of metric {:?}: a list of points, or one value",
            self.key
        )
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<(), E> {
        let chunk = rec::MetricChunk {
            key: self.key,
            points: vec![rec::Point {
                step: 0,
                timestamp: self.scan.when,
                value: v,
            }],
            ..rec::MetricChunk::default()
        };
        self.scan.emit(chunk)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<(), E> {
        self.visit_f64(v as f64)
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<(), E> {
        match v {
            "NaN" => self.visit_f64(f64::NAN),
            "Infinity" => self.visit_f64(f64::INFINITY),
            "-Infinity" => self.visit_f64(f64::NEG_INFINITY),
            other => Err(E::custom(format!(
                "metric {:?}: {other:?} is not a value",
                self.key
            ))),
        }
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        let mut chunk: Option<rec::MetricChunk> = None;
        while let Some(p) = seq.next_element::<LegacyPoint>()? {
            let same = chunk.as_ref().is_some_and(|c| {
                c.model_id == p.model_id
                    && c.dataset_name == p.dataset_name
                    && c.dataset_digest == p.dataset_digest
                    && c.points.len() < CHUNK_POINTS
            });
            if !same {
                if let Some(c) = chunk.take() {
                    self.scan.emit(c)?;
                }
                chunk = Some(rec::MetricChunk {
                    key: self.key.clone(),
                    model_id: p.model_id,
                    dataset_name: p.dataset_name,
                    dataset_digest: p.dataset_digest,
                    points: Vec::new(),
                });
            }
            if let Some(c) = chunk.as_mut() {
                c.points.push(rec::Point {
                    step: p.step,
                    timestamp: p.timestamp,
                    value: p.value,
                });
            }
        }
        if let Some(c) = chunk {
            self.scan.emit(c)?;
        }
        Ok(())
    }
}

/// Whether `p` is a relative path of plain parts (no `..`, `.`, empty part, backslash or NUL), so
/// joining it to a directory stays inside.
pub fn safe_relative(p: &str) -> bool {
    !p.is_empty()
        && !p.contains(['\\', '\0'])
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The runs of a tree: `<dir>/<run_id>/run.json` or `<dir>/runs/<run_id>/run.json`.
fn run_dir(t: &dyn Tree, root: &Path, id: &str) -> Result<PathBuf> {
    if !safe_relative(id) || id.contains('/') {
        return Err(Error::Config(format!(
            "{}: run id {id:?} is not a plain name",
            root.display()
        )));
    }
    for d in [root.join("runs").join(id), root.join(id)] {
        if t.is_file(&d.join("run.json")) {
            return Ok(d);
        }
    }
    Err(Error::Config(format!(
        "{}: run {id} is listed but neither runs/{id}/run.json nor {id}/run.json exists",
        root.display()
    )))
}

fn read_experiment<W: Write>(
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
            return Err(Error::Config(format!(
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
fn read_classic_list<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let doc: Doc<ClassicListDoc> = parse_file(t, &root.join("manifest.json"))?;
    for e in doc.mlflow.experiments {
        let id = e.id.into_string();
        if !safe_relative(&id) || id.contains('/') {
            return Err(Error::Config(format!(
                "{}: experiment id {id:?} is not a plain name",
                root.join("manifest.json").display()
            )));
        }
        let dir = root.join(&id);
        if !t.is_file(&dir.join("manifest.json")) && !t.is_file(&dir.join("experiment.json")) {
            return Err(Error::Config(format!(
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
fn read_bulk<W: Write>(
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
fn read_experiment_list<W: Write>(
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
            return Err(Error::Config(format!(
                "{}: experiment id {id:?} is not a plain name",
                list.display()
            )));
        }
        let exp = dir.join(id);
        if !t.is_file(&exp.join("experiment.json")) {
            return Err(Error::Config(format!(
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
fn read_model_list<W: Write>(
    t: &dyn Tree,
    dir: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let list = dir.join("models.json");
    let doc: Doc<ModelsDoc> = parse_file(t, &list)?;
    for name in doc.mlflow.models {
        if !safe_relative(&name) {
            return Err(Error::Config(format!(
                "{}: model {name:?} would be read from outside the tree",
                list.display()
            )));
        }
        let model = dir.join(&name);
        if !t.is_file(&model.join("model.json")) {
            return Err(Error::Config(format!(
                "{}: listed in models.json but has no model.json",
                model.display()
            )));
        }
        read_model(t, &model, w, seen)?;
    }
    Ok(())
}

fn read_single_run<W: Write>(
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

/// Names the experiments of `models` not in `experiments` yet (by the name the tree gives, or
/// their id).
fn add_experiments_of(models: &[LoggedModelDir], experiments: &mut BTreeMap<String, String>) {
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
fn write_bare_experiments<W: Write>(
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

#[derive(Deserialize)]
struct ModelDoc {
    registered_model: LegacyModel,
}

#[derive(Deserialize)]
struct LegacyModel {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    last_updated_timestamp: Option<i64>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    aliases: Vec<LegacyAlias>,
    #[serde(default)]
    versions: Vec<LegacyVersion>,
    /// Older exports (and `--export-latest-versions`); the all-versions fork's `all_versions`.
    #[serde(default, alias = "all_versions")]
    latest_versions: Vec<LegacyVersion>,
}

#[derive(Deserialize)]
struct LegacyAlias {
    alias: String,
    version: Id,
}

#[derive(Deserialize)]
struct LegacyVersion {
    version: Id,
    #[serde(default)]
    current_stage: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    source: String,
    #[serde(default)]
    run_id: Option<String>,
    #[serde(default)]
    run_link: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    status_message: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    creation_timestamp: Option<i64>,
    #[serde(default, deserialize_with = "crate::mlflow::json::int64::deserialize")]
    last_updated_timestamp: Option<i64>,
    #[serde(default)]
    tags: Tags,
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default, rename = "_experiment_name")]
    experiment_name: Option<String>,
}

impl LegacyVersion {
    fn version_text(&self) -> String {
        match &self.version {
            Id::S(s) => s.clone(),
            Id::N(n) => n.to_string(),
        }
    }
}

fn version_number(id: Id, path: &Path) -> Result<u64> {
    let s = id.into_string();
    s.parse::<u64>()
        .map_err(|_| Error::Config(format!("{}: version {s:?} is not a number", path.display())))
}

fn read_model<W: Write>(
    t: &dyn Tree,
    root: &Path,
    w: &mut ArchiveWriter<W>,
    seen: &mut Seen,
) -> Result<()> {
    let path = root.join("model.json");
    let doc: Doc<ModelDoc> = parse_file(t, &path)?;
    let m = doc.mlflow.registered_model;
    let mut versions = m.versions;
    versions.extend(m.latest_versions);
    // The versions' runs, with their experiments (named by the versions' `_experiment_name`).
    let mut experiments: BTreeMap<String, String> = BTreeMap::new();
    let mut runs = Vec::new();
    for v in &versions {
        let Some(id) = v.run_id.as_deref().filter(|r| !r.is_empty()) else {
            continue;
        };
        if !safe_relative(id) || id.contains('/') {
            return Err(Error::Config(format!(
                "{}: version {:?} names run {id:?}, not a plain name",
                path.display(),
                v.version_text()
            )));
        }
        let dir = root.join(id);
        if seen.runs.contains(id) {
            continue; // written already, under its experiment
        }
        seen.runs.insert(id.to_string());
        if !t.is_file(&dir.join("run.json")) {
            continue; // a version whose run was not exported keeps its run id
        }
        let r = read_run_meta(t, &dir)?;
        experiments
            .entry(r.record.experiment_id.clone())
            .or_insert_with(|| {
                v.experiment_name
                    .clone()
                    .unwrap_or_else(|| format!("experiment {}", r.record.experiment_id))
            });
        runs.push(r);
    }
    // The logged models the versions come from (MLflow 3), with their experiments.
    let models = scan_logged_models(t, root, seen)?;
    add_experiments_of(&models, &mut experiments);
    write_bare_experiments(experiments, w, seen)?;
    write_runs_and_models(t, runs, models, w)?;
    let mut numbered = Vec::new();
    for v in versions {
        let n = version_number(v.version, &path)?;
        numbered.push(rec::ModelVersion {
            version: n,
            description: v.description.unwrap_or_default(),
            current_stage: v.current_stage.unwrap_or_else(|| "None".into()),
            source: v.source,
            run_id: v.run_id.unwrap_or_default(),
            model_id: v.model_id.unwrap_or_default(),
            run_link: v.run_link.unwrap_or_default(),
            status: v.status.unwrap_or_else(|| "READY".into()),
            status_message: v.status_message.unwrap_or_default(),
            user_id: v.user_id.unwrap_or_default(),
            creation_timestamp: v.creation_timestamp,
            last_updated_timestamp: v.last_updated_timestamp,
            tags: v.tags.into_vec(),
        });
    }
    numbered.sort_by_key(|v| v.version);
    numbered.dedup_by_key(|v| v.version);
    let mut aliases = Vec::new();
    for a in m.aliases {
        aliases.push(rec::Alias {
            alias: a.alias,
            version: version_number(a.version, &path)?,
        });
    }
    w.begin_registered_model(&rec::RegisteredModel {
        name: m.name,
        description: m.description.unwrap_or_default(),
        creation_timestamp: m.creation_timestamp,
        last_updated_timestamp: m.last_updated_timestamp,
        tags: m.tags.into_vec(),
        aliases,
    })?;
    for v in &numbered {
        w.model_version(v)?;
    }
    w.end_unit()
}
