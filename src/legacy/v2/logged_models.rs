//! Logged models (MLflow 3): `logged_models/<model_id>/logged_model.json` and its `artifacts/`,
//! each written right after the run that made it.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::runs::{RunDir, parents_first, write_artifacts, write_run};
use super::{Doc, Id, Seen, Tags, parse_file};
use crate::error::Result;
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::legacy::tree::Tree;

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
pub(super) struct LoggedModelDir {
    pub(super) record: rec::LoggedModel,
    dir: PathBuf,
    pub(super) experiment_name: Option<String>,
}

pub(super) fn read_logged_model(t: &dyn Tree, dir: &Path) -> Result<LoggedModelDir> {
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
pub(super) fn scan_logged_models(
    t: &dyn Tree,
    root: &Path,
    seen: &mut Seen,
) -> Result<Vec<LoggedModelDir>> {
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
pub(super) fn write_runs_and_models<W: Write>(
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
