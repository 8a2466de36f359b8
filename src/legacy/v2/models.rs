//! Registered model trees (`model.json`): the versions' runs and logged models with their
//! experiments, then the model with every version in numeric order and its aliases.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::Deserialize;

use super::experiments::{add_experiments_of, write_bare_experiments};
use super::logged_models::{scan_logged_models, write_runs_and_models};
use super::runs::read_run_meta;
use super::{Doc, Id, Seen, Tags, parse_file, safe_relative};
use crate::error::{Error, Result};
use crate::format::ArchiveWriter;
use crate::format::model as rec;
use crate::legacy::tree::Tree;

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
        .map_err(|_| Error::Input(format!("{}: version {s:?} is not a number", path.display())))
}

pub(super) fn read_model<W: Write>(
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
            return Err(Error::Input(format!(
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
        workspace: String::new(),
    })?;
    for v in &numbered {
        w.model_version(v)?;
    }
    w.end_unit()
}
