//! Registered models: the versions gathered while the unit is open, then `model.json`, in the
//! model's own directory (`models/<name>/` in a bulk tree, its name made safe and unique).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::Shape;
use super::json::{tags_map, write_doc};
use super::tree::{Open, Tree};
use crate::error::{Error, Result};
use crate::format::model as rec;

impl Tree {
    pub(super) fn begin_model(&mut self, m: rec::RegisteredModel) -> Result<()> {
        if self.shape == Shape::Experiments {
            return Err(Error::Config(format!(
                "registered model {:?}: the layout of export-experiments holds no registered models; write the export-all layout (convert --shape all)",
                m.name
            )));
        }
        self.summary.models += 1;
        self.open = Open::Model {
            record: m,
            versions: Vec::new(),
        };
        Ok(())
    }

    pub(super) fn version(&mut self, v: rec::ModelVersion) -> Result<()> {
        let Open::Model { versions, .. } = &mut self.open else {
            return Err(Error::Input(format!(
                "version {}: outside a registered model",
                v.version
            )));
        };
        self.summary.versions += 1;
        versions.push(v);
        Ok(())
    }

    pub(super) fn write_model(
        &mut self,
        m: rec::RegisteredModel,
        versions: Vec<rec::ModelVersion>,
    ) -> Result<()> {
        let dir = match self.shape {
            Shape::Bulk => {
                let name = unique_dir(safe_name(&m.name), &mut self.model_dirs);
                self.models.push(name.clone());
                self.out.join("models").join(name)
            }
            _ => self.out.clone(),
        };
        let aliases_of = |n: u64| -> Vec<String> {
            m.aliases
                .iter()
                .filter(|a| a.version == n)
                .map(|a| a.alias.clone())
                .collect()
        };
        let versions: Vec<Value> = versions
            .iter()
            .map(|v| {
                let (exp, root) = self.run_roots.get(&v.run_id).cloned().unwrap_or_default();
                let exp_name = self.experiments.get(&exp).map(|e| e.record.name.clone());
                json!({
                    "name": m.name, "version": v.version.to_string(),
                    "creation_timestamp": v.creation_timestamp,
                    "last_updated_timestamp": v.last_updated_timestamp,
                    "current_stage": v.current_stage, "description": v.description,
                    "user_id": v.user_id, "source": v.source, "run_id": v.run_id,
                    "run_link": v.run_link, "status": v.status, "status_message": v.status_message,
                    "tags": tags_map(&v.tags), "aliases": aliases_of(v.version),
                    "model_id": (!v.model_id.is_empty()).then_some(&v.model_id),
                    "_run_artifact_uri": (!root.is_empty()).then_some(root),
                    "_experiment_name": exp_name,
                })
            })
            .collect();
        let doc = json!({ "registered_model": {
            "name": m.name, "description": m.description,
            "creation_timestamp": m.creation_timestamp,
            "last_updated_timestamp": m.last_updated_timestamp,
            "tags": m.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
            "aliases": m.aliases.iter().map(|a| json!({"alias": a.alias, "version": a.version.to_string()})).collect::<Vec<_>>(),
            "versions": versions,
        }});
        let info = json!({
            "num_src_versions": versions_len(&doc), "num_dst_versions": versions_len(&doc),
            "failed_versions": [], "export_latest_versions": false,
        });
        write_doc(
            &mut self.w,
            &dir.join("model.json"),
            &self.system,
            Some(info),
            doc,
        )
    }
}

fn versions_len(doc: &Value) -> usize {
    doc["registered_model"]["versions"]
        .as_array()
        .map_or(0, Vec::len)
}

/// A registered model's directory under `models/`: its name, as the Python tool uses it (a `/`
/// makes subdirectories), unless a part of it could leave the tree (`..`, `.`, empty, `\\`, NUL:
/// then the name is one directory, those characters replaced by `_`), and with `_` before a part
/// that would stand where the tree has a file (`model.json`, `models.json`).
pub(crate) fn safe_name(name: &str) -> String {
    let parts: Vec<String> = if crate::legacy::v2::safe_relative(name) {
        name.split('/').map(str::to_string).collect()
    } else {
        vec![
            name.chars()
                .map(|c| {
                    if matches!(c, '/' | '\\' | '\0') {
                        '_'
                    } else {
                        c
                    }
                })
                .collect(),
        ]
    };
    parts
        .into_iter()
        .map(|p| match p.as_str() {
            "" | "." | ".." | "model.json" | "models.json" => format!("_{p}"),
            _ => p,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// `dir`, or `dir-2`, `dir-3`… when a model written before has it (names such as `team\\model`
/// and `team_model` map to one directory); `taken` holds the directories so far, in lower case,
/// so that the tree also unpacks whole on file systems that ignore case.
fn unique_dir(dir: String, taken: &mut HashSet<String>) -> String {
    let mut candidate = dir.clone();
    let mut n = 1;
    while !taken.insert(candidate.to_lowercase()) {
        n += 1;
        candidate = format!("{dir}-{n}");
    }
    candidate
}
