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

use std::collections::{BTreeMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::format::model as rec;
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
            Record::Sealed(_) => t.sealed()?,
            Record::End(_) => {}
        }
    }
    t.finish()?;
    t.w.close()?;
    Ok(t.summary)
}

/// Refuses to write into a non-empty directory, or through a symbolic link; creates `out`.
pub(crate) fn prepare(out: &Path) -> Result<()> {
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::Config(format!(
            "{}: a symbolic link; trees are not written through links, choose a new directory",
            out.display()
        ))),
        Ok(m) if m.is_dir() => {
            let mut entries = std::fs::read_dir(out)
                .map_err(|e| Error::io(format!("reading {}", out.display()), e))?;
            if entries.next().is_some() {
                return Err(Error::Config(format!(
                    "{}: exists and is not empty; choose a new directory",
                    out.display()
                )));
            }
            Ok(())
        }
        Ok(_) => Err(Error::Config(format!(
            "{}: exists and is not a directory; choose a new directory",
            out.display()
        ))),
        Err(_) => mkdir(out),
    }
}

/// Creates the file at `path` afresh: what is there (a leftover, or a symbolic link planted to
/// make the writer overwrite its target) is removed without being followed, and the file is
/// created exclusively, so that nothing put there in between is followed either.
pub(crate) fn create_fresh(path: &Path) -> Result<File> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(Error::Config(format!(
                "{}: a directory, not a file",
                path.display()
            )));
        }
        Ok(_) => std::fs::remove_file(path)
            .map_err(|e| Error::io(format!("removing {}", path.display()), e))?,
        Err(_) => {}
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| Error::io(format!("creating {}", p.display()), e))
}

/// Where the tree's files go, one at a time: a directory, or entries of a zip.
pub(crate) struct Out {
    /// Paths are built under this (the directory, or the zip's path) and stored relative to it.
    pub(crate) root: PathBuf,
    kind: OutKind,
}

enum OutKind {
    Dir(Option<BufWriter<File>>),
    /// `None` once finished; the flag abandons its file (see [`ZipFile`]).
    Zip(Option<Box<zip::ZipWriter<ZipFile>>>, Arc<AtomicBool>),
}

/// The file under a zip being written. After a failure (its own, or the caller's: see `Drop for
/// Out`) it is abandoned: it writes nothing more, and only keeps the position as if it did. The
/// zip writer's drop completes an unfinished zip, and prints to stderr when it cannot (a full
/// disk): an abandoned file lets it complete into nothing, and the caller reports the failure
/// and removes the file.
struct ZipFile {
    file: BufWriter<File>,
    pos: u64,
    len: u64,
    abandoned: Arc<AtomicBool>,
}

impl ZipFile {
    fn failed<T>(&mut self, e: std::io::Error) -> std::io::Result<T> {
        self.abandoned.store(true, Ordering::Relaxed);
        Err(e)
    }

    fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Relaxed)
    }
}

impl Write for ZipFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = if self.abandoned() {
            buf.len()
        } else {
            match self.file.write(buf) {
                Ok(n) => n,
                Err(e) => return self.failed(e),
            }
        };
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.abandoned() {
            return Ok(());
        }
        match self.file.flush() {
            Ok(()) => Ok(()),
            Err(e) => self.failed(e),
        }
    }
}

impl Seek for ZipFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        if !self.abandoned() {
            match self.file.seek(to) {
                Ok(p) => self.pos = p,
                Err(e) => return self.failed(e),
            }
        } else {
            let p = match to {
                SeekFrom::Start(p) => Some(p),
                SeekFrom::End(d) => self.len.checked_add_signed(d),
                SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            };
            self.pos = p.ok_or_else(|| std::io::Error::other("seek out of range"))?;
        }
        self.len = self.len.max(self.pos);
        Ok(self.pos)
    }
}

impl Drop for Out {
    fn drop(&mut self) {
        // Not closed: a failure part-way. Nothing more is written (see ZipFile).
        if let OutKind::Zip(Some(_), abandoned) = &self.kind {
            abandoned.store(true, Ordering::Relaxed);
        }
    }
}

impl Out {
    pub(crate) fn dir(root: &Path) -> Self {
        Out {
            root: root.to_path_buf(),
            kind: OutKind::Dir(None),
        }
    }

    pub(crate) fn zip(path: &Path) -> Result<Self> {
        let f = create_fresh(path)?;
        let abandoned = Arc::new(AtomicBool::new(false));
        let file = ZipFile {
            file: BufWriter::with_capacity(256 << 10, f),
            pos: 0,
            len: 0,
            abandoned: Arc::clone(&abandoned),
        };
        Ok(Out {
            root: path.to_path_buf(),
            kind: OutKind::Zip(Some(Box::new(zip::ZipWriter::new(file))), abandoned),
        })
    }

    /// Starts the file at `p` (under the root); the previous one must be ended.
    pub(crate) fn start(&mut self, p: &Path) -> Result<()> {
        match &mut self.kind {
            OutKind::Dir(current) => {
                if let Some(parent) = p.parent() {
                    mkdir(parent)?;
                }
                let f = File::create(p)
                    .map_err(|e| Error::io(format!("creating {}", p.display()), e))?;
                *current = Some(BufWriter::with_capacity(64 << 10, f));
                Ok(())
            }
            OutKind::Zip(None, _) => Err(Error::Config("the zip is finished".into())),
            OutKind::Zip(Some(z), _) => {
                let rel = p
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|r| r.to_str())
                    .ok_or_else(|| {
                        Error::Config(format!("{}: not a name for a zip entry", p.display()))
                    })?;
                let options = zip::write::SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(true);
                z.start_file(rel, options).map_err(|e| {
                    Error::Config(format!("{}: entry {rel:?}: {e}", self.root.display()))
                })
            }
        }
    }

    /// Writes the whole file at `p`: `v` as indented JSON.
    pub(crate) fn json_file(&mut self, p: &Path, v: &Value) -> Result<()> {
        self.start(p)?;
        write_json(self, v, p)?;
        self.end_file(p)
    }

    /// Ends the file at `p`.
    pub(crate) fn end_file(&mut self, p: &Path) -> Result<()> {
        if let OutKind::Dir(current) = &mut self.kind
            && let Some(mut f) = current.take()
        {
            f.flush()
                .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
        }
        Ok(())
    }

    /// Completes the output (a zip's central directory).
    pub(crate) fn close(&mut self) -> Result<()> {
        if let OutKind::Zip(slot, _) = &mut self.kind
            && let Some(z) = slot.take()
        {
            let mut f = z.finish().map_err(|e| {
                Error::Config(format!("{}: finishing the zip: {e}", self.root.display()))
            })?;
            f.file
                .flush()
                .map_err(|e| Error::io(format!("writing {}", self.root.display()), e))?;
        }
        Ok(())
    }
}

impl Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match &mut self.kind {
            OutKind::Dir(Some(f)) => f.write(buf),
            OutKind::Dir(None) => Err(std::io::Error::other("no file is open")),
            OutKind::Zip(Some(z), _) => z.write(buf),
            OutKind::Zip(None, _) => Err(std::io::Error::other("the zip is finished")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.kind {
            OutKind::Dir(Some(f)) => f.flush(),
            OutKind::Dir(None) => Ok(()),
            OutKind::Zip(Some(z), _) => z.flush(),
            OutKind::Zip(None, _) => Ok(()),
        }
    }
}

/// The `system` section the Python tool writes in every file.
fn system(h: &rec::Header) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    json!({
        "package_version": h.generator,
        "script": "mlflow-archive",
        "export_file_version": "2",
        "export_time": now,
        "mlflow_tracking_uri": h.source.as_ref().and_then(|s| s.tracking_uri.clone()),
    })
}

/// Writes a file the way the Python tool does: `system`, `info`, `mlflow`, indented.
fn write_doc(
    w: &mut Out,
    path: &Path,
    system: &Value,
    info: Option<Value>,
    mlflow: Value,
) -> Result<()> {
    let mut doc = serde_json::Map::new();
    doc.insert("system".into(), system.clone());
    if let Some(i) = info {
        doc.insert("info".into(), i);
    }
    doc.insert("mlflow".into(), mlflow);
    w.json_file(path, &Value::Object(doc))
}

pub(crate) fn write_json(f: &mut impl Write, v: &Value, path: &Path) -> Result<()> {
    serde_json::to_writer_pretty(&mut *f, v).map_err(|e| Error::Json {
        what: format!("writing {}", path.display()),
        source: e,
    })
}

pub(crate) fn tags_map(tags: &[rec::Tag]) -> Value {
    Value::Object(
        tags.iter()
            .map(|t| (t.key.clone(), Value::String(t.value.clone())))
            .collect(),
    )
}

/// An experiment and the ids of its runs written so far.
struct ExperimentEntry {
    record: rec::Experiment,
    runs: Vec<String>,
    logged_models: Vec<String>,
}

enum Open {
    None,
    /// A run whose `run.json` is still being written (its metrics object is open).
    Run {
        dir: PathBuf,
        json: bool,
        /// The metric key whose list is open, and the keys closed.
        key: Option<String>,
        done_keys: HashSet<String>,
        points: bool,
    },
    LoggedModel {
        dir: PathBuf,
        record: rec::LoggedModel,
    },
    Model {
        record: rec::RegisteredModel,
        versions: Vec<rec::ModelVersion>,
    },
}

struct Tree {
    w: Out,
    out: PathBuf,
    shape: Shape,
    system: Value,
    summary: TreeSummary,
    experiments: BTreeMap<String, ExperimentEntry>,
    /// Run id → (experiment id, artifact root on the source), for `model.json`.
    run_roots: BTreeMap<String, (String, String)>,
    /// The directories of the registered models written (bulk trees), under `models/`.
    models: Vec<String>,
    /// The same, in lower case.
    model_dirs: HashSet<String>,
    open: Open,
}

impl Tree {
    fn experiment_dir(&self, id: &str) -> PathBuf {
        match self.shape {
            Shape::Bulk => self.out.join("experiments").join(id),
            Shape::Experiments => self.out.join(id),
            _ => self.out.clone(),
        }
    }

    fn experiment(&mut self, e: rec::Experiment) -> Result<()> {
        if self.shape == Shape::Experiment && !self.experiments.is_empty() {
            return Err(Error::Config(format!(
                "experiment {}: the archive holds more than one experiment; write it as a bulk tree (export-all layout)",
                e.experiment_id
            )));
        }
        self.summary.experiments += 1;
        self.experiments.insert(
            e.experiment_id.clone(),
            ExperimentEntry {
                record: e,
                runs: Vec::new(),
                logged_models: Vec::new(),
            },
        );
        Ok(())
    }

    fn begin_run(&mut self, r: rec::Run) -> Result<()> {
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

    fn chunk(&mut self, c: &rec::MetricChunk) -> Result<()> {
        let Open::Run {
            dir,
            json: true,
            key,
            done_keys,
            points,
        } = &mut self.open
        else {
            return Err(Error::Config(format!(
                "metric {:?}: a chunk outside a run's metrics",
                c.key
            )));
        };
        let path = dir.join("run.json");
        let io = |e| Error::io(format!("writing {}", path.display()), e);
        let f = &mut self.w;
        if key.as_deref() != Some(c.key.as_str()) {
            if !done_keys.insert(c.key.clone()) {
                return Err(Error::Config(format!(
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
    fn close_run_json(&mut self) -> Result<()> {
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

    fn artifact_path(&mut self, rel: &str) -> Result<PathBuf> {
        self.close_run_json()?;
        let dir = match &self.open {
            Open::Run { dir, .. } | Open::LoggedModel { dir, .. } => dir.join("artifacts"),
            _ => {
                return Err(Error::Config(format!(
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
            return Err(Error::Config(format!("artifact {rel:?}: not a safe path")));
        }
        Ok(dir.join(rel))
    }

    fn begin_logged_model(&mut self, m: rec::LoggedModel) -> Result<()> {
        let dir = self
            .experiment_dir(&m.experiment_id)
            .join("logged_models")
            .join(&m.model_id);
        if let Some(e) = self.experiments.get_mut(&m.experiment_id) {
            e.logged_models.push(m.model_id.clone());
        }
        self.summary.logged_models += 1;
        self.open = Open::LoggedModel { dir, record: m };
        Ok(())
    }

    fn begin_model(&mut self, m: rec::RegisteredModel) -> Result<()> {
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

    fn version(&mut self, v: rec::ModelVersion) -> Result<()> {
        let Open::Model { versions, .. } = &mut self.open else {
            return Err(Error::Config(format!(
                "version {}: outside a registered model",
                v.version
            )));
        };
        self.summary.versions += 1;
        versions.push(v);
        Ok(())
    }

    fn sealed(&mut self) -> Result<()> {
        self.close_run_json()?;
        match std::mem::replace(&mut self.open, Open::None) {
            Open::LoggedModel { dir, record: m } => {
                // Model and run trees hold no experiment.json: the experiment's name goes here.
                let exp_name = self
                    .experiments
                    .get(&m.experiment_id)
                    .map(|e| e.record.name.clone());
                let doc = json!({
                    "model_id": m.model_id, "experiment_id": m.experiment_id, "name": m.name,
                    "artifact_location": m.artifact_uri, "creation_timestamp": m.creation_timestamp,
                    "last_updated_timestamp": m.last_updated_timestamp, "model_type": m.model_type,
                    "source_run_id": m.source_run_id, "status": m.status,
                    "status_message": m.status_message, "tags": tags_map(&m.tags),
                    "params": tags_map(&m.params), "_experiment_name": exp_name,
                });
                write_doc(
                    &mut self.w,
                    &dir.join("logged_model.json"),
                    &self.system,
                    None,
                    doc,
                )
            }
            Open::Model { record, versions } => self.write_model(record, versions),
            Open::Run { .. } | Open::None => Ok(()),
        }
    }

    fn write_model(
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

    /// The listing files, last.
    fn finish(&mut self) -> Result<()> {
        self.close_run_json()?;
        for e in self.experiments.values() {
            let dir = self.experiment_dir(&e.record.experiment_id);
            if !matches!(
                self.shape,
                Shape::Experiment | Shape::Experiments | Shape::Bulk
            ) {
                continue;
            }
            let x = &e.record;
            let doc = json!({
                "experiment": {
                    "experiment_id": x.experiment_id, "name": x.name,
                    "artifact_location": x.artifact_location, "lifecycle_stage": x.lifecycle_stage,
                    "tags": tags_map(&x.tags), "creation_time": x.creation_time,
                    "last_update_time": x.last_update_time,
                },
                "runs": e.runs,
                "logged_models": e.logged_models,
            });
            let info = json!({
                "num_total_runs": e.runs.len(), "num_ok_runs": e.runs.len(),
                "num_failed_runs": 0, "failed_runs": [],
            });
            write_doc(
                &mut self.w,
                &dir.join("experiment.json"),
                &self.system,
                Some(info),
                doc,
            )?;
        }
        let list = match self.shape {
            Shape::Bulk => Some(self.out.join("experiments/experiments.json")),
            Shape::Experiments => Some(self.out.join("experiments.json")),
            _ => None,
        };
        if let Some(list) = list {
            // As export-experiments writes it (its import-experiments reads `id` and `name`).
            let exps: Vec<Value> = self
                .experiments
                .values()
                .map(|e| json!({"id": e.record.experiment_id, "name": e.record.name, "ok_runs": e.runs.len(), "failed_runs": 0}))
                .collect();
            let runs: usize = self.experiments.values().map(|e| e.runs.len()).sum();
            write_doc(
                &mut self.w,
                &list,
                &self.system,
                Some(json!({
                    "experiments": exps.len(), "total_runs": runs, "ok_runs": runs, "failed_runs": 0,
                })),
                json!({ "experiments": exps }),
            )?;
        }
        if self.shape == Shape::Bulk {
            // The directories, as the Python tool's import-all reads them (it imports each
            // model under its directory's name; mlflow-archive reads the name in model.json).
            let mut names = self.models.clone();
            names.sort();
            write_doc(
                &mut self.w,
                &self.out.join("models/models.json"),
                &self.system,
                Some(
                    json!({"num_total_models": names.len(), "num_ok_models": names.len(), "failed_models": []}),
                ),
                json!({ "models": names }),
            )?;
            write_doc(
                &mut self.w,
                &self.out.join("manifest.json"),
                &self.system,
                Some(json!({})),
                json!({}),
            )?;
        }
        Ok(())
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

/// A metric value as Python's `json` writes it: a number, or a bare `NaN`, `Infinity`,
/// `-Infinity`.
pub(crate) fn value_token(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        serde_json::to_string(&v).unwrap_or_else(|_| "NaN".into())
    }
}
