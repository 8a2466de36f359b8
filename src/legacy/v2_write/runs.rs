//! Runs: `run.json` written as the archive's records arrive (its metrics object open while the
//! chunks stream in, closed when the artifacts begin), and where each artifact goes.

use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use super::Shape;
use super::json::{tags_map, value_token, write_json};
use super::out::Out;
use super::tree::{Open, Tree};
use crate::error::{Error, Result};
use crate::format::model as rec;

impl Tree {
    pub(super) fn begin_run(&mut self, r: rec::Run) -> Result<()> {
        let dir = match self.shape {
            Shape::Run => self.out.clone(),
            _ => self.experiment_dir(&r.experiment_id).join(&r.run_id),
        };
        let path = dir.join("run.json");
        self.w.start(&path)?;
        let info = json!({
            "run_uuid": r.run_id,
            "run_id": r.run_id,
            "experiment_id": r.experiment_id,
            "user_id": r.user_id,
            "status": r.status,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "lifecycle_stage": r.lifecycle_stage,
            "artifact_uri": r.artifact_uri,
            "run_name": r.run_name,
        });
        let params = tags_map(&r.params);
        let tags = tags_map(&r.tags);
        let inputs = json!({
            "dataset_inputs": r.dataset_inputs.iter().map(|d| json!({
                "dataset": {
                    "name": d.name, "digest": d.digest, "source_type": d.source_type,
                    "source": d.source, "schema": d.schema, "profile": d.profile,
                },
                "tags": d.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "model_inputs": r.model_inputs.iter().map(|m| json!({"model_id": m})).collect::<Vec<_>>(),
        });
        let outputs = json!({
            "model_outputs": r.model_outputs.iter().map(|o| json!({"model_id": o.model_id, "step": o.step})).collect::<Vec<_>>(),
        });
        let write = |f: &mut Out, s: &str| {
            f.write_all(s.as_bytes())
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))
        };
        let f = &mut self.w;
        write(f, "{\n\"system\": ")?;
        write_json(f, &self.system, &path)?;
        write(f, ",\n\"mlflow\": {\n\"info\": ")?;
        write_json(f, &info, &path)?;
        for (k, v) in [
            ("params", &params),
            ("tags", &tags),
            ("inputs", &inputs),
            ("outputs", &outputs),
        ] {
            write(f, &format!(",\n\"{k}\": "))?;
            write_json(f, v, &path)?;
        }
        write(f, ",\n\"metrics\": {")?;
        if let Some(e) = self.experiments.get_mut(&r.experiment_id) {
            e.runs.push(r.run_id.clone());
        }
        self.run_roots.insert(
            r.run_id.clone(),
            (r.experiment_id.clone(), r.artifact_uri.clone()),
        );
        self.summary.runs += 1;
        self.open = Open::Run {
            dir,
            json: true,
            key: None,
            done_keys: HashSet::new(),
            points: false,
        };
        Ok(())
    }

    pub(super) fn chunk(&mut self, c: &rec::MetricChunk) -> Result<()> {
        let Open::Run {
            dir,
            json: true,
            key,
            done_keys,
            points,
        } = &mut self.open
        else {
            return Err(Error::Input(format!(
                "metric {:?}: a chunk outside a run's metrics",
                c.key
            )));
        };
        let path = dir.join("run.json");
        let io = |e| Error::io(format!("writing {}", path.display()), e);
        let f = &mut self.w;
        if key.as_deref() != Some(c.key.as_str()) {
            if !done_keys.insert(c.key.clone()) {
                return Err(Error::Input(format!(
                    "metric {:?}: its chunks are not together in the archive; the layout holds one list per metric",
                    c.key
                )));
            }
            let sep = if key.is_some() { "]," } else { "" };
            let name = serde_json::to_string(&c.key).unwrap_or_default();
            write!(f, "{sep}\n{name}: [").map_err(io)?;
            *key = Some(c.key.clone());
            *points = false;
        }
        for p in &c.points {
            let sep = if *points { "," } else { "" };
            *points = true;
            write!(
                f,
                "{sep}\n{{\"value\": {}, \"timestamp\": {}, \"step\": {}",
                value_token(p.value),
                p.timestamp,
                p.step
            )
            .map_err(io)?;
            for (k, v) in [
                ("model_id", &c.model_id),
                ("dataset_name", &c.dataset_name),
                ("dataset_digest", &c.dataset_digest),
            ] {
                if let Some(v) = v {
                    let v = serde_json::to_string(v).unwrap_or_default();
                    write!(f, ", \"{k}\": {v}").map_err(io)?;
                }
            }
            f.write_all(b"}").map_err(io)?;
        }
        Ok(())
    }

    /// Closes the open run's `run.json` (its metrics are complete once artifacts begin).
    pub(super) fn close_run_json(&mut self) -> Result<()> {
        if let Open::Run { dir, json, key, .. } = &mut self.open
            && std::mem::take(json)
        {
            let f = &mut self.w;
            let path = dir.join("run.json");
            let end = if key.is_some() {
                "]\n}\n}\n}\n"
            } else {
                "}\n}\n}\n"
            };
            f.write_all(end.as_bytes())
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
            f.end_file(&path)?;
        }
        Ok(())
    }

    pub(super) fn artifact_path(&mut self, rel: &str) -> Result<PathBuf> {
        self.close_run_json()?;
        let dir = match &self.open {
            Open::Run { dir, .. } | Open::LoggedModel { dir, .. } => dir.join("artifacts"),
            _ => {
                return Err(Error::Input(format!(
                    "artifact {rel:?} outside a run or logged model"
                )));
            }
        };
        // Archive names are checked when read (no `..`, no absolute paths); checked again here
        // because this one becomes a path on disk.
        if rel
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(Error::Input(format!("artifact {rel:?}: not a safe path")));
        }
        Ok(dir.join(rel))
    }
}
