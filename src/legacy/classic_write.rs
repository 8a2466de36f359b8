//! Writing the classic (2020-2021) layout of mlflow-export-import, for pipelines that still read
//! it. The layout holds less than an archive: one value per metric (the latest: highest step, then
//! latest time), no dataset or model inputs and outputs, no logged models, no aliases, and (in
//! an export list) no registered models. Whatever it cannot hold is dropped only when the caller
//! allows it ([`Lossy::allowed`]); otherwise the first such object stops the conversion, named.
//!
//! | scope | tree |
//! |---|---|
//! | `experiment` | `manifest.json` (`experiment`, `export_info`, `run_ids`, `failed_run_ids`), `<run_id>/run.json` + `artifacts/` |
//! | `model` | `model.json` (`registered_model` with every version under `latest_versions`), `<run_id>/…` |
//! | `run` | `run.json`, `artifacts/` |
//! | anything else | an export list: `manifest.json` naming the experiments, `<id>/manifest.json`, `<id>/<run_id>/…` |
//!
//! Files carry no `system`/`mlflow` sections, as then. Each `run.json` is written when its run
//! ends (its metrics reduced to one value each, so memory holds one value per key).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::v2_write::{Out, Shape, TreeSummary, tags_map};
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::format::{ArchiveReader, Record};

/// What may be dropped, and what was.
#[derive(Debug, Default)]
pub struct Lossy {
    /// Drop what the layout cannot hold (`--allow-lossy`); otherwise stop at the first such thing.
    pub allowed: bool,
    /// What was dropped, one line per object.
    pub dropped: Vec<String>,
}

impl Lossy {
    fn drop(&mut self, what: String) -> Result<()> {
        if !self.allowed {
            return Err(Error::Config(format!(
                "the classic layout cannot hold {what}; give --allow-lossy to write it without (everything dropped is listed)"
            )));
        }
        self.dropped.push(what);
        Ok(())
    }
}

/// Writes the archive read by `r` as a classic tree at `out` (a new directory), or as a zip of one
/// when `zip`.
///
/// # Errors
///
/// The first problem reading the archive meets, a record the classic layout cannot hold when
/// `lossy` does not allow dropping it, or a failed write under `target`.
pub fn write_classic<R: Read>(
    r: &mut ArchiveReader<R>,
    out: &Path,
    zip: bool,
    shape: Shape,
    lossy: &mut Lossy,
) -> Result<TreeSummary> {
    let w = if zip {
        Out::zip(out)?
    } else {
        super::v2_write::prepare(out)?;
        Out::dir(out)
    };
    let mut t = Classic {
        w,
        out: out.to_path_buf(),
        shape,
        summary: TreeSummary::default(),
        experiments: BTreeMap::new(),
        run_roots: BTreeMap::new(),
        open: Open::None,
    };
    while let Some(rec) = r.next_record()? {
        match rec {
            Record::Experiment(e) => {
                t.summary.experiments += 1;
                t.experiments
                    .insert(e.experiment_id.clone(), (e, Vec::new()));
            }
            Record::Run(run) => t.begin_run(run, lossy)?,
            Record::MetricChunk(c) => t.chunk(&c)?,
            Record::Artifact(a) => {
                t.close_run(lossy)?;
                let Open::Run { dir, .. } = &t.open else {
                    // A logged model's files: dropped with it.
                    std::io::copy(&mut r.body(), &mut std::io::sink())
                        .map_err(|e| Error::io("reading the archive", e))?;
                    continue;
                };
                if a.path
                    .split('/')
                    .any(|c| c.is_empty() || c == "." || c == "..")
                {
                    return Err(Error::Input(format!(
                        "artifact {:?}: not a safe path",
                        a.path
                    )));
                }
                let path = dir.join("artifacts").join(&a.path);
                t.w.start(&path)?;
                std::io::copy(&mut r.body(), &mut t.w)
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
                t.w.end_file(&path)?;
                t.summary.artifacts += 1;
            }
            Record::LoggedModel(m) => {
                lossy.drop(format!("logged model {} {:?}", m.model_id, m.name))?;
                t.open = Open::Skip;
            }
            Record::Trace(x) => {
                t.close_run(lossy)?;
                lossy.drop(format!("trace {}", x.trace_id))?;
                t.open = Open::Skip;
            }
            Record::Dataset(d) => {
                t.close_run(lossy)?;
                lossy.drop(format!("evaluation dataset {} {:?}", d.dataset_id, d.name))?;
                t.open = Open::Skip;
            }
            Record::DatasetRecords(_) => {}
            Record::Permissions(p) if !p.is_empty() => {
                lossy.drop(format!("{} permission entries", p.entries()))?;
            }
            Record::Permissions(_) => {}
            Record::RegisteredModel(m) => {
                if t.shape != Shape::Model {
                    lossy.drop(format!(
                        "registered model {:?} in an export list (write it alone, as a model)",
                        m.name
                    ))?;
                    t.open = Open::Skip;
                } else {
                    if !m.aliases.is_empty() {
                        lossy.drop(format!("model {:?}: its aliases", m.name))?;
                    }
                    t.summary.models += 1;
                    t.open = Open::Model(m, Vec::new());
                }
            }
            Record::ModelVersion(v) => {
                if let Open::Model(_, versions) = &mut t.open {
                    t.summary.versions += 1;
                    versions.push(v);
                }
            }
            Record::Sealed(s) if matches!(s.unit, crate::format::path::UnitId::Other { .. }) => {
                lossy.drop(format!(
                    "unit {:?} (of a kind a later version of the archive format defines)",
                    s.unit.prefix()
                ))?;
            }
            Record::Sealed(_) => t.sealed(lossy)?,
            Record::End(_) => {}
        }
    }
    t.finish()?;
    t.w.close()?;
    Ok(t.summary)
}

enum Open {
    None,
    Skip,
    Run {
        dir: PathBuf,
        record: Option<Box<rec::Run>>,
        /// Per metric: the latest point (step, timestamp, value) and how many there were.
        latest: BTreeMap<String, ((i64, i64), f64, u64)>,
        links: bool,
    },
    Model(rec::RegisteredModel, Vec<rec::ModelVersion>),
}

struct Classic {
    w: Out,
    out: PathBuf,
    shape: Shape,
    summary: TreeSummary,
    experiments: BTreeMap<String, (rec::Experiment, Vec<String>)>,
    run_roots: BTreeMap<String, String>,
    open: Open,
}

impl Classic {
    fn experiment_dir(&self, id: &str) -> PathBuf {
        match self.shape {
            Shape::Bulk | Shape::Experiments => self.out.join(id),
            _ => self.out.clone(),
        }
    }

    fn begin_run(&mut self, r: rec::Run, lossy: &mut Lossy) -> Result<()> {
        let what = format!("run {} {:?}", r.run_id, r.run_name);
        if !r.dataset_inputs.is_empty() {
            lossy.drop(format!("{what}: its dataset inputs"))?;
        }
        if !r.model_inputs.is_empty() || !r.model_outputs.is_empty() {
            lossy.drop(format!("{what}: its logged-model inputs and outputs"))?;
        }
        let dir = match self.shape {
            Shape::Run => self.out.clone(),
            _ => self.experiment_dir(&r.experiment_id).join(&r.run_id),
        };
        if let Some((_, runs)) = self.experiments.get_mut(&r.experiment_id) {
            runs.push(r.run_id.clone());
        }
        self.run_roots
            .insert(r.run_id.clone(), r.artifact_uri.clone());
        self.summary.runs += 1;
        self.open = Open::Run {
            dir,
            record: Some(Box::new(r)),
            latest: BTreeMap::new(),
            links: false,
        };
        Ok(())
    }

    fn chunk(&mut self, c: &rec::MetricChunk) -> Result<()> {
        let Open::Run { latest, links, .. } = &mut self.open else {
            return Ok(());
        };
        *links |= c.model_id.is_some() || c.dataset_name.is_some();
        for p in &c.points {
            let e = latest
                .entry(c.key.clone())
                .or_insert(((p.step, p.timestamp), p.value, 0));
            if (p.step, p.timestamp) >= e.0 {
                e.0 = (p.step, p.timestamp);
                e.1 = p.value;
            }
            e.2 += 1;
        }
        Ok(())
    }

    /// Writes the open run's `run.json` (once), with one value per metric.
    fn close_run(&mut self, lossy: &mut Lossy) -> Result<()> {
        let Open::Run {
            dir,
            record,
            latest,
            links,
        } = &mut self.open
        else {
            return Ok(());
        };
        let Some(r) = record.take() else {
            return Ok(());
        };
        let what = format!("run {} {:?}", r.run_id, r.run_name);
        for (key, (_, _, n)) in latest.iter() {
            if *n > 1 {
                lossy.drop(format!(
                    "{what}: metric {key:?}: {} of its {n} points (one value per metric)",
                    n - 1
                ))?;
            }
        }
        if *links {
            lossy.drop(format!("{what}: which points belong to logged models"))?;
        }
        let metrics: serde_json::Map<String, Value> = latest
            .iter()
            .map(|(k, (_, v, _))| (k.clone(), number(*v)))
            .collect();
        let doc = json!({
            "info": {
                "run_uuid": r.run_id, "run_id": r.run_id, "experiment_id": r.experiment_id,
                "user_id": r.user_id, "status": r.status, "start_time": r.start_time,
                "end_time": r.end_time, "lifecycle_stage": r.lifecycle_stage,
                "artifact_uri": r.artifact_uri, "run_name": r.run_name,
            },
            "params": tags_map(&r.params),
            "metrics": metrics,
            "tags": tags_map(&r.tags),
        });
        let path = dir.join("run.json");
        self.w.json_file(&path, &doc)
    }

    fn sealed(&mut self, lossy: &mut Lossy) -> Result<()> {
        self.close_run(lossy)?;
        if let Open::Model(m, versions) = std::mem::replace(&mut self.open, Open::None) {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    json!({
                        "name": m.name, "version": v.version.to_string(),
                        "creation_timestamp": v.creation_timestamp,
                        "last_updated_timestamp": v.last_updated_timestamp,
                        "current_stage": v.current_stage, "description": v.description,
                        "source": v.source, "run_id": v.run_id, "run_link": v.run_link,
                        "status": v.status, "user_id": v.user_id,
                        "artifact_uri": self.run_roots.get(&v.run_id),
                        "tags": v.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
                    })
                })
                .collect();
            let doc = json!({ "registered_model": {
                "name": m.name, "description": m.description,
                "creation_timestamp": m.creation_timestamp,
                "last_updated_timestamp": m.last_updated_timestamp,
                "tags": m.tags.iter().map(|t| json!({"key": t.key, "value": t.value})).collect::<Vec<_>>(),
                "latest_versions": versions,
            }});
            let path = self.out.join("model.json");
            self.w.json_file(&path, &doc)?;
        }
        Ok(())
    }

    /// The manifests, last.
    fn finish(&mut self) -> Result<()> {
        if !matches!(
            self.shape,
            Shape::Experiment | Shape::Experiments | Shape::Bulk
        ) {
            return Ok(());
        }
        for (e, runs) in self.experiments.values() {
            let doc = json!({
                "experiment": {
                    "experiment_id": e.experiment_id, "name": e.name,
                    "artifact_location": e.artifact_location,
                    "lifecycle_stage": e.lifecycle_stage,
                },
                "export_info": { "num_runs": runs.len() },
                "run_ids": runs,
                "failed_run_ids": [],
            });
            let path = self.experiment_dir(&e.experiment_id).join("manifest.json");
            self.w.json_file(&path, &doc)?;
        }
        if matches!(self.shape, Shape::Bulk | Shape::Experiments) {
            let list: Vec<Value> = self
                .experiments
                .values()
                .map(|(e, _)| json!({"id": e.experiment_id, "name": e.name}))
                .collect();
            let doc = json!({ "info": { "export_tool": "mlflow-archive" }, "experiments": list });
            let path = self.out.join("manifest.json");
            self.w.json_file(&path, &doc)?;
        }
        Ok(())
    }
}

/// A metric value for `serde_json` (which has no NaN): NaN and the infinities as the strings the
/// readers accept.
fn number(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(
        || {
            Value::String(
                if v.is_nan() {
                    "NaN"
                } else if v > 0.0 {
                    "Infinity"
                } else {
                    "-Infinity"
                }
                .into(),
            )
        },
        Value::Number,
    )
}
