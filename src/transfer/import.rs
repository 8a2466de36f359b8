//! Archive → tracking server: experiments and their runs (start and end times, status, params,
//! tags, full metric histories, dataset inputs, artifacts streamed straight through), logged
//! models, with source ids mapped to destination ids.
//!
//! Idempotent and resumable: every imported run carries the lineage tag
//! [`LINEAGE_RUN`] (its source id) and [`STATE`] (`in-progress`, then `complete` once its unit's
//! seal checked and everything was written). Importing the same archive again skips complete runs,
//! and redoes a run left `in-progress` by an interrupted import (the half-done run is marked
//! [`ABANDONED`] and deleted), so no run, metric point or artifact is duplicated. Up to `jobs` runs
//! are written at once: the archive is read front to back, each run's metric batches and uploads
//! go to a worker task of its own, and runs are finished (inputs, outputs, end time, `complete`)
//! in archive order.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::archive_source::{ArchiveSource, Event};
use super::lease::{self, LEASE, Leases};
use super::ordered::{AbortOnDrop, BudgetRx, BudgetTx, budget_channel};
use super::progress::{Counter, Progress, tick};
use super::replay::{Owner, Replay};
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::format::path::UnitId;
use crate::format::{ArtifactEntry, Record};
use crate::mlflow::api::runs::{
    MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_TOTAL,
};
use crate::mlflow::types::{
    Dataset, DatasetInput, KeyValue, Metric, ModelInput, ModelOutput, ViewType,
};
use crate::mlflow::{ArtifactRoot, Client, CreateLoggedModel, CreateRun, UpdateRun};
use std::sync::Arc;

/// The tag that names an imported run's source id.
pub const LINEAGE_RUN: &str = "mlflow_archive.source.run_id";
/// The tag that names an imported logged model's source id.
pub const LINEAGE_MODEL: &str = "mlflow_archive.source.model_id";
/// The tag that says how far an import of a run or logged model got.
pub const STATE: &str = "mlflow_archive.import";
/// Marks a half-imported run that a later import gave up on and deleted; it keeps its lineage tag,
/// so every import of a source run can be found, but [`is_abandoned`] runs are not the import.
pub const ABANDONED: &str = "mlflow_archive.abandoned";
/// A tag unique to one creation of a run, to find it if the server's answer was lost.
pub const ATTEMPT: &str = "mlflow_archive.attempt";

/// A value no other run creation uses: process, time and a counter.
fn attempt_id() -> String {
    static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{nanos}-{n}", std::process::id())
}

/// A parent run that was not in the archive (the tag `mlflow.parentRunId` is dropped).
pub const MISSING_PARENT: &str = "mlflow_archive.source.parent_run_id";

/// How many times two imports completing one source run at once step back before giving up.
const SETTLE_ROUNDS: u32 = 20;

/// The prefix of every tag this tool sets.
const OWN_PREFIX: &str = "mlflow_archive.";
/// Where an archive's lineage tags (`mlflow_archive.source.*`, set by the import that made the
/// objects it was exported from) are kept: `mlflow_archive.origin.*`, the first source.
const ORIGIN_PREFIX: &str = "mlflow_archive.origin.";

/// The tags of an archived object that this import writes: every tag but this tool's own. Those
/// describe an earlier import, not this one: its lineage (`mlflow_archive.source.*`) is kept as
/// history under `mlflow_archive.origin.*` (the first hop's wins, when the object already carries
/// one), its state, attempt, abandonment and placeholder tags are dropped. So this import's own
/// tags are the only ones that say what this import did.
fn archived_tags(tags: &[rec::Tag]) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(tags.len());
    for t in tags {
        let Some(rest) = t.key.strip_prefix(OWN_PREFIX) else {
            out.push(KeyValue::new(t.key.clone(), t.value.clone()));
            continue;
        };
        if t.key.starts_with(ORIGIN_PREFIX) {
            out.push(KeyValue::new(t.key.clone(), t.value.clone()));
        } else if let Some(what) = rest.strip_prefix("source.") {
            let origin = format!("{ORIGIN_PREFIX}{what}");
            if !tags.iter().any(|o| o.key == origin) {
                out.push(KeyValue::new(origin, t.value.clone()));
            }
        }
    }
    out
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Runs imported at once.
    pub jobs: usize,
    /// Counts what reaches the destination.
    pub progress: Option<Arc<Progress>>,
    /// Import every experiment of the archive into this one (created if missing).
    pub experiment_name: Option<String>,
    /// Prefix the archived experiment names with this (when `experiment_name` is not given).
    pub experiment_name_prefix: Option<String>,
    /// Keep the source's `mlflow.user` tag. Without it, imported runs get the importing user's
    /// (the basic-auth user name when there is one, else the local user), as MLflow's own client
    /// and the Python tool give them.
    pub use_src_user_id: bool,
    /// Keep `mlflow.*` tags (default true).
    pub import_mlflow_tags: bool,
    /// Keep provenance tags written by exporters (`mlflow_tools.metadata.*`,
    /// `mlflow_export_import.metadata.*`; default false).
    pub import_metadata_tags: bool,
    /// Import the archive's registered model under this name (an archive with one model).
    pub model_name: Option<String>,
    /// Delete an existing registered model of that name (and its versions) first.
    pub delete_model: bool,
    /// Where a large artifact's body can be read again when its upload must be sent again (a
    /// copy's source server, an input file); without one, such a failure leaves the run
    /// unfinished, for the next import to complete.
    pub replay: Option<Replay>,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            jobs: super::export::DEFAULT_JOBS,
            progress: None,
            experiment_name: None,
            experiment_name_prefix: None,
            use_src_user_id: false,
            import_mlflow_tags: true,
            import_metadata_tags: false,
            model_name: None,
            delete_model: false,
            replay: None,
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    /// Source experiment id → destination experiment id.
    pub experiments: HashMap<String, String>,
    /// Source run id → destination run id, of the runs complete on the destination (imported now
    /// or earlier).
    pub runs: HashMap<String, String>,
    /// Source logged model id → destination id.
    pub logged_models: HashMap<String, String>,
    /// Runs imported by this call.
    pub runs_imported: u64,
    /// Runs found complete from an earlier import and skipped.
    pub runs_skipped: u64,
    /// Runs found half-imported and redone.
    pub runs_redone: u64,
    /// Metric points written.
    pub metric_points: u64,
    /// Artifact files written.
    pub artifacts: u64,
    /// Artifact bytes written.
    pub artifact_bytes: u64,
    /// Nested runs whose parent was not in the archive.
    pub missing_parents: Vec<String>,
    /// Registered models: source name → destination name.
    pub models: HashMap<String, String>,
    /// Model versions created by this call.
    pub versions_imported: u64,
    /// Model versions found from an earlier import and skipped.
    pub versions_skipped: u64,
    /// Versions whose number could not be reproduced: (model, source number, destination number).
    pub renumbered_versions: Vec<(String, u64, u64)>,
}

/// The tag that names an imported model version's source number.
pub const LINEAGE_VERSION: &str = "mlflow_archive.source.version";
/// The tag of a placeholder version created (and deleted) to reproduce a gap in numbering.
pub const PLACEHOLDER: &str = "mlflow_archive.placeholder";
/// The path under its run that a placeholder version's `runs:/` source names (nothing is there).
const PLACEHOLDER_PATH: &str = "mlflow-archive-placeholder";
/// The tag that makes a registered model or a version a prompt (MLflow 3).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

enum Open {
    None,
    /// A run or logged model that was imported before: its members are read (and checked) but
    /// not written.
    Skip,
    Run {
        src: rec::Run,
        dst: String,
        metrics: Vec<Metric>,
        /// Params and tags not sent yet: they ride with the first metric batch.
        head: Vec<KeyValue>,
        head_tags: Vec<KeyValue>,
        /// The run's writes (metric batches, uploads), done in order by its worker task.
        ops: RunOps,
        worker: AbortOnDrop<Result<Written>>,
    },
    LoggedModel {
        src: rec::LoggedModel,
        dst: String,
        root: ArtifactRoot,
    },
    Model {
        src: rec::RegisteredModel,
        dst: String,
        /// Source version number → destination version number.
        numbers: HashMap<u64, String>,
    },
}

/// A write of a run's content, done by the run's worker task.
enum Op {
    /// One `log-batch` (more if the params or tags exceed its limits).
    Batch {
        metrics: Vec<Metric>,
        params: Vec<KeyValue>,
        tags: Vec<KeyValue>,
    },
    Upload {
        path: String,
        size: u64,
        body: mpsc::Receiver<Result<Bytes>>,
        owner: Owner,
    },
    UploadBytes {
        path: String,
        data: Bytes,
    },
    /// The run's status and end time, once everything else of it is written.
    Update(UpdateRun),
}

impl Op {
    /// What the op holds in memory while it waits for the worker (an estimate).
    fn cost(&self) -> usize {
        256 + match self {
            Op::Batch {
                metrics,
                params,
                tags,
            } => {
                let kv = |v: &[KeyValue]| -> usize {
                    v.iter().map(|t| 32 + t.key.len() + t.value.len()).sum()
                };
                metrics.iter().map(|m| 64 + m.key.len()).sum::<usize>() + kv(params) + kv(tags)
            }
            Op::Upload { path, .. } => path.len(),
            Op::UploadBytes { path, data } => path.len() + data.len(),
            Op::Update(_) => 0,
        }
    }
}

/// Artifacts up to this size are read from the archive into memory and queued whole (and
/// retried on transient failures); larger ones stream from the archive to the server while the
/// reader waits for them.
const BUFFERED_FILE_MAX: u64 = 1 << 20;

/// The queue of a run's writes: each op holds its cost in the run's share of the transfer's
/// buffer budget until it is done, so the reader goes on to the next runs while earlier ones are
/// written, and `jobs` runs write at once.
struct RunOps(BudgetTx<Op>);

impl RunOps {
    fn new(jobs: usize) -> (Self, BudgetRx<Op>) {
        let (tx, rx) = budget_channel(jobs);
        (Self(tx), rx)
    }

    /// A queue whose worker is gone (every send fails).
    fn closed() -> Self {
        Self::new(1).0
    }

    /// Queues `op`, waiting while the run's budget is spent; `Err` if the worker stopped.
    async fn send(&self, op: Op) -> std::result::Result<(), ()> {
        let cost = op.cost();
        self.0.send(op, cost).await
    }
}

/// What a run's worker wrote.
#[derive(Debug, Default)]
struct Written {
    metric_points: u64,
    artifacts: u64,
    artifact_bytes: u64,
}

/// Writes a run's metric batches and artifacts in order, on its own task, so up to `jobs` runs
/// are written at once while the archive is read front to back.
async fn run_worker(
    client: Client,
    dst: String,
    root: ArtifactRoot,
    mut ops: BudgetRx<Op>,
    progress: Option<Arc<Progress>>,
    replay: Option<Replay>,
) -> Result<Written> {
    let mut w = Written::default();
    // The permit is held until the op is done: its data is in memory until then.
    while let Some((op, _permit)) = ops.recv().await {
        match op {
            Op::Batch {
                metrics,
                params,
                tags,
            } => {
                client.log_batch(&dst, &metrics, &params, &tags).await?;
                w.metric_points += metrics.len() as u64;
                tick(&progress, Counter::Points, metrics.len() as u64);
            }
            Op::Upload {
                path,
                size,
                body,
                owner,
            } => {
                tick(&progress, Counter::Files, 1);
                let replay = replay.as_ref().map(|r| (r, &owner));
                super::replay::upload(&client, &root, &path, size, tokio_stream(body), replay)
                    .await
                    .map_err(|e| e.about(format!("artifact {path:?}")))?;
                w.artifacts += 1;
                w.artifact_bytes += size;
            }
            Op::UploadBytes { path, data } => {
                let n = data.len() as u64;
                tick(&progress, Counter::Files, 1);
                tick(&progress, Counter::Bytes, n);
                client
                    .upload_artifact_bytes(&root, &path, data)
                    .await
                    .map_err(|e| e.about(format!("artifact {path:?}")))?;
                w.artifacts += 1;
                w.artifact_bytes += n;
            }
            Op::Update(u) => {
                client.update_run(&u).await?;
            }
        }
    }
    Ok(w)
}

/// A run read to its seal whose worker may still be writing.
struct Sealed {
    src: rec::Run,
    dst: String,
    worker: AbortOnDrop<Result<Written>>,
}

struct Importer<'a> {
    client: &'a Client,
    opts: &'a ImportOptions,
    report: ImportReport,
    open: Open,
    /// Source run id → destination run id, for every run created or found (the report lists
    /// only finished ones).
    run_ids: HashMap<String, String>,
    /// Sealed runs whose workers are still writing, oldest first; finished in this order.
    sealed: std::collections::VecDeque<Sealed>,
    /// Run outputs naming logged models that come later in the archive: (dst run, src model, step).
    pending_outputs: Vec<(String, String, i64)>,
    /// Metric points linked to a logged model not imported yet, by source model id:
    /// (destination run, point).
    deferred_links: HashMap<String, Vec<(String, Metric)>>,
    /// Runs sealed but waiting for deferred linked points: destination run → (source run,
    /// deleted at source).
    waiting_runs: HashMap<String, (String, String, bool)>,
    /// Source runs that failed or were left unfinished by a failure: their children are not
    /// finished either (they would point at a run the next import redoes).
    failed: std::collections::HashSet<String>,
    /// Lineage indexes of destination experiments ([`lineage_index`]), loaded on first use
    /// (empty for experiments this import created).
    priors: HashMap<String, HashMap<String, Vec<Prior>>>,
    /// Destination experiments where runs were finished: swept for late duplicates at the end.
    touched: std::collections::HashSet<String>,
    /// The importing user, for `mlflow.user` unless the source's is kept.
    user: String,
    /// The runs this import is writing, whose leases it renews.
    leases: Leases,
}

/// Who imports: the basic-auth user name when there is one, else the local user (what MLflow's
/// client records as `mlflow.user`: `LOGNAME`, `USER`, `LNAME`, `USERNAME`, else the account of
/// this process).
pub fn importing_user(client: &Client) -> String {
    if let crate::mlflow::Auth::Basic { username, .. } = &client.config().auth {
        return username.clone();
    }
    for k in ["LOGNAME", "USER", "LNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(k)
            && !v.is_empty()
        {
            return v;
        }
    }
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().next().map(str::to_string))
        });
    if let (Some(uid), Ok(passwd)) = (uid, std::fs::read_to_string("/etc/passwd")) {
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            if f.len() > 2 && f[2] == uid {
                return f[0].to_string();
            }
        }
    }
    "unknown".into()
}

/// Imports an archive read from `source` into the server.
///
/// When it fails, the runs read to their seal before the failure are still finished, and the
/// error comes with the report of what was done.
pub async fn import_archive(
    client: &Client,
    source: ArchiveSource,
    opts: &ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    let mut imp = Importer {
        client,
        opts,
        report: ImportReport::default(),
        open: Open::None,
        run_ids: HashMap::new(),
        sealed: std::collections::VecDeque::new(),
        pending_outputs: Vec::new(),
        deferred_links: HashMap::new(),
        waiting_runs: HashMap::new(),
        failed: std::collections::HashSet::new(),
        priors: HashMap::new(),
        touched: std::collections::HashSet::new(),
        user: importing_user(client),
        leases: Leases::start(client),
    };
    let result = imp.run(source).await;
    let done = std::mem::take(&mut imp.report);
    match result {
        Ok(()) => Ok(done),
        Err(error) => Err(Failed {
            error,
            done: Box::new(done),
        }),
    }
}

/// An import (or copy) that stopped: why, and what it had done by then.
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct Failed {
    /// Why it stopped.
    #[source]
    pub error: Error,
    /// What was imported before: complete runs, versions, id maps.
    pub done: Box<ImportReport>,
}

impl Importer<'_> {
    /// Reads and imports the whole archive; what was done stays in `self.report` either way.
    async fn run(&mut self, mut source: ArchiveSource) -> Result<()> {
        let read = self.read_all(&mut source).await;
        // Runs read to their seal are finished even if the archive failed after them.
        self.open = Open::None;
        let finished = self.finish_sealed(0).await;
        read.and(finished)?;
        self.sweep().await?;
        // Points linked to logged models that are not in the archive keep no link.
        let leftover: Vec<String> = self.deferred_links.keys().cloned().collect();
        for m in leftover {
            self.release_links(&m, None).await?;
        }
        Ok(())
    }

    async fn read_all(&mut self, source: &mut ArchiveSource) -> Result<()> {
        let imp = self;
        let mut ended = false;
        while let Some(event) = source.next().await {
            match event? {
                Event::Header(_) => {}
                Event::Record(Record::End(_)) => ended = true,
                Event::Record(r) => {
                    if matches!(r, Record::RegisteredModel(_) | Record::LoggedModel(_)) {
                        // Versions may name any run, and a logged model its source run: every
                        // run before them is finished first.
                        imp.finish_sealed(0).await?;
                    }
                    let sealed = matches!(r, Record::Sealed(_));
                    let what = imp.describe(Some(&r));
                    imp.record(r).await.map_err(|e| e.within(what))?;
                    if sealed {
                        // At most `jobs` runs write at once (the one being read among them).
                        imp.finish_sealed(imp.opts.jobs.max(1) - 1).await?;
                    }
                }
                Event::Artifact(a) => {
                    let what = imp.describe(None);
                    imp.artifact(a, source).await.map_err(|e| e.within(what))?
                }
                Event::Body(_) | Event::ArtifactEnd => {
                    return Err(Error::Config("archive events out of order".into()));
                }
            }
        }
        if !ended {
            return Err(Error::Config("the archive ended before its trailer".into()));
        }
        Ok(())
    }

    /// Finishes sealed runs, oldest first, until at most `keep` are left writing.
    async fn finish_sealed(&mut self, keep: usize) -> Result<()> {
        while self.sealed.len() > keep {
            let Some(mut s) = self.sealed.pop_front() else {
                break;
            };
            let what = format!("run {} (destination run {})", s.src.run_id, s.dst);
            let parent = s
                .src
                .tags
                .iter()
                .find(|t| t.key == "mlflow.parentRunId")
                .map(|t| t.value.clone());
            if parent.is_some_and(|p| self.failed.contains(&p)) {
                // Its parent failed: left in-progress, to be redone with it.
                self.failed.insert(s.src.run_id.clone());
                continue;
            }
            let src_id = s.src.run_id.clone();
            let written = s.worker.join(&what).await.and_then(|r| r);
            let done = match written {
                Ok(w) => {
                    self.report.metric_points += w.metric_points;
                    self.report.artifacts += w.artifacts;
                    self.report.artifact_bytes += w.artifact_bytes;
                    self.finish_run(s.src, s.dst).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                // The others were read whole: finish them (but this run's children) before
                // reporting this failure.
                self.failed.insert(src_id);
                let _ = Box::pin(self.finish_sealed(0)).await;
                return Err(e.within(what));
            }
        }
        Ok(())
    }
}

fn kv(tags: &[rec::Tag]) -> Vec<KeyValue> {
    tags.iter()
        .map(|t| KeyValue::new(t.key.clone(), t.value.clone()))
        .collect()
}

impl Importer<'_> {
    /// The object being imported, for error messages: the record about to be applied, or the
    /// open unit.
    fn describe(&self, next: Option<&Record>) -> String {
        match next {
            Some(Record::Experiment(e)) => {
                return format!("experiment {} {:?}", e.experiment_id, e.name);
            }
            Some(Record::Run(r)) => return format!("run {} {:?}", r.run_id, r.run_name),
            Some(Record::LoggedModel(m)) => return format!("logged model {}", m.model_id),
            Some(Record::RegisteredModel(m)) => return format!("registered model {:?}", m.name),
            _ => {}
        }
        match &self.open {
            Open::Run { src, dst, .. } => format!("run {} (destination run {dst})", src.run_id),
            Open::LoggedModel { src, dst, .. } => {
                format!("logged model {} (destination {dst})", src.model_id)
            }
            Open::Model { src, dst, .. } => match next {
                Some(Record::ModelVersion(v)) => format!(
                    "model {:?} version {} (destination model {dst:?})",
                    src.name, v.version
                ),
                _ => format!("registered model {:?} (destination {dst:?})", src.name),
            },
            Open::Skip | Open::None => "the archive".into(),
        }
    }

    async fn record(&mut self, r: Record) -> Result<()> {
        match r {
            Record::Experiment(e) => self.experiment(e).await,
            Record::Run(r) => self.begin_run(r).await,
            Record::MetricChunk(c) => self.chunk(c).await,
            Record::LoggedModel(m) => self.begin_logged_model(m).await,
            Record::Sealed(s) => self.sealed(s.unit).await,
            Record::RegisteredModel(m) => self.begin_model(m).await,
            Record::ModelVersion(v) => self.version(v).await,
            Record::Artifact(_) | Record::End(_) => Ok(()),
        }
    }

    /// The runs earlier imports left of source run `src` in destination experiment `exp`.
    async fn priors(&mut self, exp: &str, src: &str) -> Result<Vec<Prior>> {
        if !self.priors.contains_key(exp) {
            let index = lineage_index(self.client, exp).await?;
            self.priors.insert(exp.to_string(), index);
        }
        Ok(self
            .priors
            .get_mut(exp)
            .and_then(|i| i.remove(src))
            .unwrap_or_default())
    }

    /// A killed import's create that reached the server only after this import looked for its
    /// lineage left a second, half-done run beside one this import completed: abandoned now.
    /// (One search per experiment, at the end; a kill before it leaves them to the next import,
    /// which abandons half-done runs as it meets them.)
    async fn sweep(&mut self) -> Result<()> {
        for exp in std::mem::take(&mut self.touched) {
            for (src, priors) in lineage_index(self.client, &exp).await? {
                let Some(dst) = self.report.runs.get(&src) else {
                    continue;
                };
                for old in priors.iter().filter(|p| p.left_over() && p.run_id != *dst) {
                    self.abandon(old).await.map_err(|e| {
                        e.within(format!("run {src} (a late duplicate {})", old.run_id))
                    })?;
                }
            }
        }
        Ok(())
    }

    async fn experiment(&mut self, e: rec::Experiment) -> Result<()> {
        let name = match (
            &self.opts.experiment_name,
            &self.opts.experiment_name_prefix,
        ) {
            (Some(n), _) => n.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", e.name),
            (None, None) => e.name.clone(),
        };
        let id = match self.client.get_experiment_by_name(&name).await? {
            Some(found) => {
                if found.lifecycle_stage == "deleted" {
                    return Err(Error::Config(format!(
                        "experiment {name:?} exists on {} but is deleted: restore it or choose another name",
                        self.client.server()
                    )));
                }
                found.experiment_id
            }
            None => match self
                .client
                .create_experiment(&name, None, &kv(&e.tags))
                .await
            {
                Ok(id) => {
                    // New: no run of any lineage is in it.
                    self.priors.insert(id.clone(), HashMap::new());
                    id
                }
                // A concurrent import created it first: use it.
                Err(err) if err.is_already_exists() => {
                    match self.client.get_experiment_by_name(&name).await? {
                        Some(found) => found.experiment_id,
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            },
        };
        self.report.experiments.insert(e.experiment_id, id);
        tick(&self.opts.progress, Counter::Experiments, 1);
        Ok(())
    }

    fn dst_experiment(&self, src: &str, what: &str) -> Result<String> {
        if let Some(id) = self.report.experiments.get(src) {
            return Ok(id.clone());
        }
        if self.report.experiments.len() == 1 && self.opts.experiment_name.is_some() {
            return Ok(self
                .report
                .experiments
                .values()
                .next()
                .cloned()
                .unwrap_or_default());
        }
        Err(Error::Config(format!(
            "{what}: its experiment {src} is not in the archive; give --experiment-name"
        )))
    }

    async fn begin_run(&mut self, r: rec::Run) -> Result<()> {
        let what = format!("run {}", r.run_id);
        let exp = self.dst_experiment(&r.experiment_id, &what)?;
        let found = self.priors(&exp, &r.run_id).await?;
        let complete = found.iter().find(|x| x.complete).cloned();
        // Half imported by an interrupted import (more than one if a killed import's last
        // create reached the server late): marked abandoned and deleted.
        // Runs marked abandoned by a killed import but still active are finished off too.
        let half_done: Vec<&Prior> = found.iter().filter(|x| x.left_over()).collect();
        for old in &half_done {
            self.abandon(old).await?;
        }
        let half_done: Vec<_> = half_done.into_iter().filter(|x| !x.marked).collect();
        if let Some(done) = complete {
            self.run_ids.insert(r.run_id.clone(), done.run_id.clone());
            self.report.runs.insert(r.run_id.clone(), done.run_id);
            self.report.runs_skipped += 1;
            tick(&self.opts.progress, Counter::Runs, 1);
            self.open = Open::Skip;
            return Ok(());
        }
        if !half_done.is_empty() {
            self.report.runs_redone += 1;
        }
        let mut tags: Vec<KeyValue> = Vec::new();
        for t in &archived_tags(&r.tags) {
            let mlflow_tag = t.key.starts_with("mlflow.");
            if mlflow_tag && !self.opts.import_mlflow_tags {
                continue;
            }
            let metadata = t.key.starts_with("mlflow_tools.metadata.")
                || t.key.starts_with("mlflow_export_import.metadata.");
            if metadata && !self.opts.import_metadata_tags {
                continue;
            }
            match t.key.as_str() {
                "mlflow.user" if !self.opts.use_src_user_id => continue,
                "mlflow.runName" => continue, // set through run_name
                "mlflow.parentRunId" => match self.run_ids.get(&t.value) {
                    Some(dst) => tags.push(KeyValue::new("mlflow.parentRunId", dst.clone())),
                    None => {
                        self.report.missing_parents.push(r.run_id.clone());
                        tags.push(KeyValue::new(MISSING_PARENT, t.value.clone()));
                    }
                },
                _ => tags.push(KeyValue::new(t.key.clone(), t.value.clone())),
            }
        }
        if !self.opts.use_src_user_id {
            tags.push(KeyValue::new("mlflow.user", self.user.clone()));
        }
        let created = self
            .client
            .create_run(&CreateRun {
                experiment_id: exp,
                run_name: Some(r.run_name.clone()),
                start_time: r.start_time,
                tags: vec![
                    KeyValue::new(LINEAGE_RUN, r.run_id.clone()),
                    KeyValue::new(STATE, "in-progress"),
                    KeyValue::new(ATTEMPT, attempt_id()),
                    KeyValue::new(LEASE, lease::fresh()),
                ],
                user_id: None,
                // Not the lineage tag: abandoned runs of the same source carry it too.
                reconcile_tag: Some(ATTEMPT.into()),
            })
            .await?;
        let dst = created.info.run_id.clone();
        self.leases.hold(&dst);
        let root = ArtifactRoot::parse(&created.info.artifact_uri)
            .map_err(|e| Error::Config(format!("{what}: the destination run's {e}")))?;
        self.run_ids.insert(r.run_id.clone(), dst.clone());
        let (ops, rx) = RunOps::new(self.opts.jobs);
        let worker = tokio::spawn(run_worker(
            self.client.clone(),
            dst.clone(),
            root,
            rx,
            self.opts.progress.clone(),
            self.opts.replay.clone(),
        ));
        let head = kv(&r.params);
        self.open = Open::Run {
            src: r,
            dst,
            metrics: Vec::new(),
            head,
            head_tags: tags,
            ops,
            worker: AbortOnDrop(Some(worker)),
        };
        Ok(())
    }

    async fn chunk(&mut self, c: rec::MetricChunk) -> Result<()> {
        let linked_to = c
            .model_id
            .as_ref()
            .map(|src| (src.clone(), self.report.logged_models.get(src).cloned()));
        let Open::Run { dst, .. } = &self.open else {
            return Ok(());
        };
        if let Some((src_model, None)) = &linked_to {
            // Points linked to a logged model that is not on the destination yet (it follows its
            // source run in the archive): they are logged when it arrives, and the run is marked
            // complete only then.
            let points = c.points.iter().map(|p| Metric {
                key: c.key.clone(),
                value: p.value,
                timestamp: p.timestamp,
                step: p.step,
                model_id: None,
                dataset_name: c.dataset_name.clone(),
                dataset_digest: c.dataset_digest.clone(),
                run_id: None,
            });
            self.deferred_links
                .entry(src_model.clone())
                .or_default()
                .extend(points.map(|m| (dst.clone(), m)));
            return Ok(());
        }
        let dst_model = linked_to.and_then(|(_, d)| d);
        for p in &c.points {
            let Open::Run {
                metrics,
                head,
                head_tags,
                ..
            } = &mut self.open
            else {
                return Ok(());
            };
            metrics.push(Metric {
                key: c.key.clone(),
                value: p.value,
                timestamp: p.timestamp,
                step: p.step,
                model_id: dst_model.clone(),
                dataset_name: c.dataset_name.clone(),
                dataset_digest: c.dataset_digest.clone(),
                run_id: None,
            });
            // Full requests: the first batch leaves room for the params and tags it carries.
            let room = MAX_BATCH_TOTAL
                - head.len().min(MAX_BATCH_PARAMS)
                - head_tags.len().min(MAX_BATCH_TAGS);
            if metrics.len() >= room.min(MAX_BATCH_METRICS) {
                self.flush_metrics().await?;
            }
        }
        Ok(())
    }

    /// Queues the open run's buffered metrics, with its params and tags if not sent yet.
    async fn flush_metrics(&mut self) -> Result<()> {
        if let Open::Run {
            metrics,
            head,
            head_tags,
            ..
        } = &mut self.open
            && !(metrics.is_empty() && head.is_empty() && head_tags.is_empty())
        {
            let op = Op::Batch {
                metrics: std::mem::take(metrics),
                params: std::mem::take(head),
                tags: std::mem::take(head_tags),
            };
            self.run_op(op).await?;
        }
        Ok(())
    }

    /// The error that stopped the open run's worker.
    async fn run_op_error(&mut self) -> Result<()> {
        let Open::Run { worker, ops, .. } = &mut self.open else {
            return Ok(());
        };
        // Closed first, so a worker that is still taking writes ends.
        drop(std::mem::replace(ops, RunOps::closed()));
        Err(match worker.join("writing the run").await {
            Ok(Err(e)) | Err(e) => e,
            Ok(Ok(_)) => Error::Config("the run's writer stopped early".into()),
        })
    }

    /// Queues a write for the open run's worker; if the worker stopped, returns its error.
    async fn run_op(&mut self, op: Op) -> Result<()> {
        let Open::Run { ops, .. } = &mut self.open else {
            return Ok(());
        };
        if ops.send(op).await.is_ok() {
            return Ok(());
        }
        self.run_op_error().await
    }

    async fn artifact(&mut self, a: ArtifactEntry, source: &mut ArchiveSource) -> Result<()> {
        let path = a.path.clone();
        let about = |e: Error| e.about(format!("artifact {path:?}"));
        if let Open::Run { src, dst, .. } = &self.open {
            let is_mlmodel = a.path.rsplit('/').next() == Some("MLmodel");
            if a.size <= BUFFERED_FILE_MAX || (is_mlmodel && a.size <= MAX_PATCHED) {
                let (src_id, dst_id) = (src.run_id.clone(), dst.clone());
                let mut body = read_body(source, a.size).await.map_err(about)?;
                if is_mlmodel {
                    body = patch_mlmodel(&body, &src_id, &dst_id);
                }
                return self
                    .run_op(Op::UploadBytes {
                        path: a.path,
                        data: Bytes::from(body),
                    })
                    .await;
            }
            let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
            let owner = Owner::Run(src.run_id.clone());
            self.run_op(Op::Upload {
                path: a.path.clone(),
                size: a.size,
                body: rx,
                owner,
            })
            .await?;
            if !pump_body(source, &tx, &self.opts.progress)
                .await
                .map_err(about)?
                && self.opts.replay.is_none()
            {
                // The upload stopped early and cannot be sent again: the worker has the error.
                // (With a replay, the worker sends the body again from there.)
                drop(tx);
                return self.run_op_error().await;
            }
            return Ok(());
        }
        let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
        let Open::LoggedModel { root, src, .. } = &self.open else {
            // A unit imported earlier: the body is read (and checked), not written.
            drop(rx);
            pump_body(source, &tx, &None).await.map_err(about)?;
            return Ok(());
        };
        let client = self.client.clone();
        let (root, size) = (root.clone(), a.size);
        let owner = Owner::LoggedModel(src.model_id.clone());
        let replay = self.opts.replay.clone();
        let upload = AbortOnDrop(Some(tokio::spawn(async move {
            let replay = replay.as_ref().map(|r| (r, &owner));
            super::replay::upload(&client, &root, &a.path, size, tokio_stream(rx), replay).await
        })));
        tick(&self.opts.progress, Counter::Files, 1);
        let pumped = pump_body(source, &tx, &self.opts.progress)
            .await
            .map_err(about);
        drop(tx);
        let mut upload = upload;
        let uploaded = upload
            .join("uploading")
            .await
            .and_then(|r| r)
            .map_err(about);
        pumped?;
        uploaded?;
        self.report.artifacts += 1;
        self.report.artifact_bytes += size;
        Ok(())
    }

    async fn begin_logged_model(&mut self, m: rec::LoggedModel) -> Result<()> {
        let what = format!("logged model {}", m.model_id);
        let exp = self.dst_experiment(&m.experiment_id, &what)?;
        let existing = {
            use futures_util::TryStreamExt;
            let filter = format!("tags.`{LINEAGE_MODEL}` = '{}'", m.model_id);
            let found: Vec<_> = self
                .client
                .search_logged_models(&[&exp], Some(&filter))
                .try_collect()
                .await?;
            found.into_iter().next()
        };
        if let Some(found) = existing {
            if found
                .info
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == "complete")
            {
                let dst = found.info.model_id;
                self.report
                    .logged_models
                    .insert(m.model_id.clone(), dst.clone());
                self.release_links(&m.model_id, Some(&dst)).await?;
                tick(&self.opts.progress, Counter::LoggedModels, 1);
                self.open = Open::Skip;
                return Ok(());
            }
            self.client
                .delete_logged_model(&found.info.model_id)
                .await?;
        }
        let mut tags = archived_tags(&m.tags);
        tags.retain(|t| t.key != "mlflow.modelVersions");
        tags.push(KeyValue::new(LINEAGE_MODEL, m.model_id.clone()));
        tags.push(KeyValue::new(STATE, "in-progress"));
        let created = self
            .client
            .create_logged_model(&CreateLoggedModel {
                experiment_id: exp,
                name: Some(m.name.clone()),
                model_type: Some(m.model_type.clone()).filter(|s| !s.is_empty()),
                source_run_id: self.run_ids.get(&m.source_run_id).cloned(),
                params: kv(&m.params),
                tags,
                reconcile_tag: Some(LINEAGE_MODEL.into()),
            })
            .await?;
        let root = created
            .artifact_root()
            .map_err(|e| Error::Config(format!("{what}: the destination's {e}")))?;
        let dst = created.info.model_id;
        self.open = Open::LoggedModel { src: m, dst, root };
        Ok(())
    }

    async fn sealed(&mut self, unit: UnitId) -> Result<()> {
        self.flush_metrics().await?;
        if let Open::Run { src, dst, .. } = &self.open {
            let update = UpdateRun {
                run_id: dst.clone(),
                status: Some(src.status.clone()),
                end_time: src.end_time,
                run_name: None,
            };
            self.run_op(Op::Update(update)).await?;
        }
        match std::mem::replace(&mut self.open, Open::None) {
            Open::Run {
                src, dst, worker, ..
            } => {
                // Dropping `ops` tells the worker there is nothing more; it finishes in the
                // background while the next runs are read.
                self.sealed.push_back(Sealed { src, dst, worker });
                Ok(())
            }
            Open::LoggedModel { src, dst, .. } => {
                tick(&self.opts.progress, Counter::LoggedModels, 1);
                // Only a sealed, finalized model is in the report (and linked to by runs).
                self.report
                    .logged_models
                    .insert(src.model_id.clone(), dst.clone());
                let status = if src.status.is_empty() {
                    "LOGGED_MODEL_READY".to_string()
                } else {
                    src.status.clone()
                };
                self.client.finalize_logged_model(&dst, &status).await?;
                self.client
                    .set_logged_model_tags(&dst, &[KeyValue::new(STATE, "complete")])
                    .await?;
                self.release_links(&src.model_id, Some(&dst)).await?;
                let ready: Vec<(String, i64)> = self
                    .pending_outputs
                    .iter()
                    .filter(|(_, m, _)| *m == src.model_id)
                    .map(|(r, _, s)| (r.clone(), *s))
                    .collect();
                self.pending_outputs.retain(|(_, m, _)| *m != src.model_id);
                for (run, step) in ready {
                    self.client
                        .log_outputs(
                            &run,
                            &[ModelOutput {
                                model_id: dst.clone(),
                                step,
                            }],
                        )
                        .await?;
                }
                Ok(())
            }
            Open::Model { src, dst, numbers } => {
                for a in &src.aliases {
                    let Some(version) = numbers.get(&a.version) else {
                        continue; // the version it names is not in the archive
                    };
                    self.client
                        .set_registered_model_alias(&dst, &a.alias, version)
                        .await?;
                }
                Ok(())
            }
            Open::Skip | Open::None => {
                let _ = unit;
                Ok(())
            }
        }
    }

    async fn begin_model(&mut self, m: rec::RegisteredModel) -> Result<()> {
        let name = self
            .opts
            .model_name
            .clone()
            .unwrap_or_else(|| m.name.clone());
        if self.opts.delete_model {
            match self.client.delete_registered_model(&name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        match self.client.get_registered_model(&name).await {
            Ok(existing) => {
                if existing.description != m.description {
                    self.client
                        .update_registered_model(&name, &m.description)
                        .await?;
                }
                for t in &m.tags {
                    if !existing
                        .tags
                        .iter()
                        .any(|x| x.key == t.key && x.value == t.value)
                    {
                        self.client
                            .set_registered_model_tag(&name, &t.key, &t.value)
                            .await?;
                    }
                }
            }
            Err(e) if e.is_not_found() => {
                let desc = Some(m.description.as_str()).filter(|d| !d.is_empty());
                self.client
                    .create_registered_model(&name, desc, &kv(&m.tags))
                    .await?;
            }
            Err(e) => return Err(e),
        }
        self.report.models.insert(m.name.clone(), name.clone());
        self.open = Open::Model {
            src: m,
            dst: name,
            numbers: HashMap::new(),
        };
        Ok(())
    }

    /// `source` pointed at the destination's copy of the run or logged model it names.
    fn rewrite_source(
        &self,
        v: &rec::ModelVersion,
        dst_run: Option<&String>,
        dst_model: Option<&String>,
        dst_run_root: Option<&str>,
    ) -> String {
        let s = &v.source;
        if let (Some(rest), Some(run)) = (s.strip_prefix("runs:/"), dst_run) {
            if let Some((id, path)) = rest.split_once('/') {
                if id == v.run_id {
                    return format!("runs:/{run}/{path}");
                }
            } else if rest == v.run_id {
                return format!("runs:/{run}");
            }
        }
        if let (Some(rest), Some(model)) = (s.strip_prefix("models:/"), dst_model)
            && (rest == v.model_id || rest.starts_with("m-"))
        {
            return format!("models:/{model}");
        }
        // An address inside the run's artifact root (`mlflow-artifacts:`, or the `file:`, `s3:`,
        // ... of an older export): the same place under the new run's root, where the files are.
        if let Some(root) = dst_run_root
            && !v.run_id.is_empty()
            && let Some(i) = s.find(&format!("/{}/artifacts", v.run_id))
        {
            let tail = &s[i + v.run_id.len() + "/artifacts".len() + 1..];
            if tail.is_empty() || tail.starts_with('/') {
                return format!("{}{tail}", root.trim_end_matches('/'));
            }
        }
        s.clone()
    }

    async fn version(&mut self, v: rec::ModelVersion) -> Result<()> {
        let Open::Model { dst: name, .. } = &self.open else {
            return Ok(());
        };
        let name = name.clone();
        let existing = self.client.all_model_versions(&name).await?;
        let number = v.version.to_string();
        if let Some(done) = existing.iter().find(|x| {
            x.tags
                .iter()
                .any(|t| t.key == LINEAGE_VERSION && t.value == number)
        }) {
            self.record_number(v.version, done.version.clone());
            self.report.versions_skipped += 1;
            tick(&self.opts.progress, Counter::Versions, 1);
            return Ok(());
        }
        let dst_run = self.run_ids.get(&v.run_id).cloned();
        let src_model = if v.model_id.is_empty() {
            v.source
                .strip_prefix("models:/")
                .filter(|m| m.starts_with("m-"))
                .unwrap_or("")
                .to_string()
        } else {
            v.model_id.clone()
        };
        let dst_model = self.report.logged_models.get(&src_model).cloned();
        let inside_run = !v.run_id.is_empty()
            && !v.source.starts_with("runs:/")
            && v.source.contains(&format!("/{}/artifacts", v.run_id));
        let dst_run_root = match &dst_run {
            Some(run) if inside_run => Some(self.client.get_run(run).await?.info.artifact_uri),
            _ => None,
        };
        let source = self.rewrite_source(
            &v,
            dst_run.as_ref(),
            dst_model.as_ref(),
            dst_run_root.as_deref(),
        );
        let request =
            |tags: Vec<KeyValue>, description: Option<String>| crate::mlflow::CreateModelVersion {
                name: name.clone(),
                source: source.clone(),
                run_id: dst_run
                    .clone()
                    .or_else(|| Some(v.run_id.clone()).filter(|r| !r.is_empty())),
                description,
                tags,
                run_link: Some(v.run_link.clone()).filter(|l| !l.is_empty()),
                model_id: dst_model.clone(),
                reconcile_tag: Some(LINEAGE_VERSION.into()),
            };
        // Reproduce gaps: the server numbers versions max + 1, so create and delete placeholders
        // up to the source's number.
        let mut next = existing
            .iter()
            .map(|x| x.number())
            .filter(|n| *n != u64::MAX)
            .max()
            .unwrap_or(0)
            + 1;
        // A placeholder names no logged model: the server would list it in that model's
        // `mlflow.modelVersions` tag (and deleting it does not take it out). A `models:/` source
        // needs the model, so the placeholder points at the version's run instead; a version
        // with no run keeps the model (README lists that trace).
        let placeholder = |n: u64| {
            let mut tags = vec![
                KeyValue::new(PLACEHOLDER, "true"),
                KeyValue::new(LINEAGE_VERSION, format!("placeholder-{n}")),
            ];
            // A prompt's placeholder must be a prompt version too (its source is a placeholder
            // the server accepts only from prompts).
            tags.extend(
                v.tags
                    .iter()
                    .filter(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
                    .map(|t| KeyValue::new(t.key.clone(), t.value.clone())),
            );
            let mut req = request(tags, None);
            if req.source.starts_with("models:/") {
                if let Some(run) = &dst_run {
                    req.source = format!("runs:/{run}/{PLACEHOLDER_PATH}");
                    req.model_id = None;
                }
            } else {
                req.model_id = None;
            }
            req
        };
        while next < v.version {
            let p = self.client.create_model_version(&placeholder(next)).await?;
            self.client.delete_model_version(&name, &p.version).await?;
            next += 1;
        }
        let mut tags = archived_tags(&v.tags);
        tags.push(KeyValue::new(LINEAGE_VERSION, number.clone()));
        let desc = Some(v.description.clone()).filter(|d| !d.is_empty());
        let created = self
            .client
            .create_model_version(&request(tags, desc))
            .await?;
        self.client
            .wait_model_version_ready(&name, &created.version, std::time::Duration::from_secs(300))
            .await?;
        if created.version != number {
            self.report
                .renumbered_versions
                .push((name.clone(), v.version, created.number()));
        }
        if !v.current_stage.is_empty() && v.current_stage != "None" {
            self.client
                .transition_model_version_stage(&name, &created.version, &v.current_stage, false)
                .await?;
        }
        self.record_number(v.version, created.version);
        self.report.versions_imported += 1;
        tick(&self.opts.progress, Counter::Versions, 1);
        Ok(())
    }

    fn record_number(&mut self, src: u64, dst: String) {
        if let Open::Model { numbers, .. } = &mut self.open {
            numbers.insert(src, dst);
        }
    }

    async fn finish_run(&mut self, src: rec::Run, dst: String) -> Result<()> {
        let datasets: Vec<DatasetInput> = src
            .dataset_inputs
            .iter()
            .map(|d| DatasetInput {
                tags: kv(&d.tags),
                dataset: Dataset {
                    name: d.name.clone(),
                    digest: d.digest.clone(),
                    source_type: d.source_type.clone(),
                    source: d.source.clone(),
                    schema: d.schema.clone(),
                    profile: d.profile.clone(),
                },
            })
            .collect();
        let models: Vec<ModelInput> = src
            .model_inputs
            .iter()
            .filter_map(|m| self.report.logged_models.get(m))
            .map(|m| ModelInput {
                model_id: m.clone(),
            })
            .collect();
        if !datasets.is_empty() || !models.is_empty() {
            self.client.log_inputs(&dst, &datasets, &models).await?;
        }
        for o in &src.model_outputs {
            match self.report.logged_models.get(&o.model_id) {
                Some(m) => {
                    self.client
                        .log_outputs(
                            &dst,
                            &[ModelOutput {
                                model_id: m.clone(),
                                step: o.step,
                            }],
                        )
                        .await?
                }
                None => self
                    .pending_outputs
                    .push((dst.clone(), o.model_id.clone(), o.step)),
            }
        }
        // (Its status and end time were set by its worker, after its last write.)
        let exp = self.dst_experiment(&src.experiment_id, "run")?;
        self.touched.insert(exp.clone());
        let waiting = self
            .deferred_links
            .values()
            .flatten()
            .any(|(r, _)| *r == dst);
        let deleted = src.lifecycle_stage == "deleted";
        if waiting {
            self.waiting_runs.insert(dst, (exp, src.run_id, deleted));
        } else {
            self.complete_run(&exp, &src.run_id, &dst, deleted).await?;
        }
        Ok(())
    }

    /// Marks a half-imported run [`ABANDONED`] and deletes it (each step is safe to repeat
    /// after a kill: a marked run that is still active is deleted by the next import).
    async fn abandon(&self, old: &Prior) -> Result<()> {
        if old.deleted {
            return Ok(());
        }
        let id = &old.run_id;
        if !old.marked {
            self.client.set_run_tag(id, ABANDONED, "true").await?;
        }
        self.client.delete_run(id).await
    }

    /// Marks a run complete (then deletes it if it was deleted at the source); only now is it
    /// in the report. When a concurrent import completed the same source run first, this run is
    /// given up and the other stands for the source run.
    async fn complete_run(&mut self, exp: &str, src: &str, dst: &str, deleted: bool) -> Result<()> {
        let winner = self.settle(exp, src, dst).await?;
        self.leases.release(dst);
        if winner != dst {
            let own = Prior {
                run_id: dst.to_string(),
                complete: false,
                deleted: false,
                marked: false,
                held: true,
            };
            self.abandon(&own).await?;
            self.report.runs.insert(src.to_string(), winner);
            self.report.runs_skipped += 1;
            tick(&self.opts.progress, Counter::Runs, 1);
            return Ok(());
        }
        if deleted {
            self.client.delete_run(dst).await?;
        }
        self.report.runs.insert(src.to_string(), dst.to_string());
        self.report.runs_imported += 1;
        tick(&self.opts.progress, Counter::Runs, 1);
        Ok(())
    }

    /// Marks `dst` complete unless another run of the same source is (a concurrent import's);
    /// returns the run that stands for the source run. One run wins whatever the timing: a run
    /// stays complete only if no other was complete when it looked after marking itself, and
    /// when two marked themselves at once, both step back and try again after a random wait.
    async fn settle(&self, exp: &str, src: &str, dst: &str) -> Result<String> {
        let others = async || -> Result<Vec<String>> {
            let mut ids: Vec<String> = self
                .client
                .find_runs_by_tag(exp, LINEAGE_RUN, src)
                .await?
                .iter()
                .filter(|r| r.info.run_id != dst && is_complete(r))
                .map(|r| r.info.run_id.clone())
                .collect();
            ids.sort();
            Ok(ids)
        };
        for round in 0..SETTLE_ROUNDS {
            self.client.set_run_tag(dst, STATE, "complete").await?;
            if others().await?.is_empty() {
                return Ok(dst.to_string());
            }
            self.client.set_run_tag(dst, STATE, "in-progress").await?;
            if let Some(first) = others().await?.into_iter().next() {
                return Ok(first);
            }
            // Both stepped back: wait a while, longer each round, and try again.
            let jitter = crate::mlflow::retry::Backoff::new(&crate::mlflow::RetryConfig {
                max_retries: 1,
                initial_backoff: std::time::Duration::from_millis(50 * (u64::from(round) + 1)),
                max_backoff: std::time::Duration::from_secs(2),
                max_retry_after: std::time::Duration::ZERO,
            })
            .next_delay(None)
            .unwrap_or_default();
            tokio::time::sleep(jitter).await;
        }
        Err(Error::Config(format!(
            "run {src}: another import keeps completing the same run at the same moment ({SETTLE_ROUNDS} tries); run the import again"
        )))
    }

    /// Logs the points linked to a logged model now on the destination (`dst_model`, or none when
    /// it never came), then completes the runs that waited only for them.
    async fn release_links(&mut self, src_model: &str, dst_model: Option<&str>) -> Result<()> {
        let Some(points) = self.deferred_links.remove(src_model) else {
            return Ok(());
        };
        let mut by_run: HashMap<String, Vec<Metric>> = HashMap::new();
        for (run, mut m) in points {
            m.model_id = dst_model.map(str::to_string);
            by_run.entry(run).or_default().push(m);
        }
        for (run, batch) in by_run {
            self.client.log_batch(&run, &batch, &[], &[]).await?;
            self.report.metric_points += batch.len() as u64;
            tick(&self.opts.progress, Counter::Points, batch.len() as u64);
            let still = self
                .deferred_links
                .values()
                .flatten()
                .any(|(r, _)| *r == run);
            if !still && let Some((exp, src, deleted)) = self.waiting_runs.remove(&run) {
                self.complete_run(&exp, &src, &run, deleted).await?;
            }
        }
        Ok(())
    }
}

fn is_complete(r: &crate::mlflow::types::Run) -> bool {
    r.data
        .tags
        .iter()
        .any(|t| t.key == STATE && t.value == "complete")
}

/// An imported run (it has the lineage tag) that was half done and given up by a later import:
/// marked, or deleted without being complete (an import deletes a run before its state says
/// complete only when it abandons it).
pub fn is_abandoned(r: &crate::mlflow::types::Run) -> bool {
    let tag = |k: &str| r.data.tags.iter().any(|t| t.key == k);
    tag(LINEAGE_RUN) && (tag(ABANDONED) || (r.info.lifecycle_stage == "deleted" && !is_complete(r)))
}

/// What an earlier import left of one source run in a destination experiment.
#[derive(Debug, Clone)]
struct Prior {
    run_id: String,
    complete: bool,
    deleted: bool,
    /// Marked [`ABANDONED`] (a kill may have come before its deletion).
    marked: bool,
    /// Its lease is held by an import that is still writing it ([`lease`]).
    held: bool,
}

impl Prior {
    fn of(r: &crate::mlflow::types::Run) -> Self {
        Self {
            run_id: r.info.run_id.clone(),
            complete: is_complete(r),
            deleted: r.info.lifecycle_stage == "deleted",
            marked: r.data.tags.iter().any(|t| t.key == ABANDONED),
            held: lease::held(
                r.data
                    .tags
                    .iter()
                    .find(|t| t.key == LEASE)
                    .map(|t| t.value.as_str()),
            ),
        }
    }

    /// Half done by an interrupted import, and not yet given up.
    fn half_done(&self) -> bool {
        !self.complete && !self.deleted
    }

    /// Half done and no import is writing it any more (its lease is over), or marked abandoned:
    /// to be given up. (A half-done run under a live lease is another import's work.)
    fn left_over(&self) -> bool {
        self.half_done() && (self.marked || !self.held)
    }
}

/// Every run of a destination experiment that carries the lineage tag, by source run id: one
/// search (a page per 1000 runs) instead of one per run.
async fn lineage_index(client: &Client, exp: &str) -> Result<HashMap<String, Vec<Prior>>> {
    use futures_util::TryStreamExt;
    let filter = format!("tags.`{LINEAGE_RUN}` LIKE '%'");
    let mut runs = std::pin::pin!(client.search_runs(&[exp], Some(&filter), ViewType::All));
    let mut index: HashMap<String, Vec<Prior>> = HashMap::new();
    while let Some(r) = runs.try_next().await? {
        if let Some(t) = r.data.tags.iter().find(|t| t.key == LINEAGE_RUN) {
            index
                .entry(t.value.clone())
                .or_default()
                .push(Prior::of(&r));
        }
    }
    Ok(index)
}

/// Passes an artifact's body from the archive to an upload; false if the upload stopped taking
/// it (the rest of the body is still read, so the archive stays in step).
async fn pump_body(
    source: &mut ArchiveSource,
    tx: &mpsc::Sender<Result<Bytes>>,
    progress: &Option<Arc<Progress>>,
) -> Result<bool> {
    let mut taken = true;
    loop {
        match source.next().await {
            Some(Ok(Event::Body(b))) => {
                if taken {
                    tick(progress, Counter::Bytes, b.len() as u64);
                }
                if taken && tx.send(Ok(b)).await.is_err() {
                    taken = false;
                }
            }
            Some(Ok(Event::ArtifactEnd)) => return Ok(taken),
            Some(Ok(_)) => return Err(Error::Config("archive events out of order".into())),
            Some(Err(e)) => {
                let _ = tx
                    .send(Err(Error::Config(
                        "the archive failed while reading this artifact".into(),
                    )))
                    .await;
                return Err(e);
            }
            None => return Err(Error::Config("the archive ended inside an artifact".into())),
        }
    }
}

/// Reads a whole (small) artifact body from the archive.
async fn read_body(source: &mut ArchiveSource, size: u64) -> Result<Vec<u8>> {
    let mut body = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    loop {
        match source.next().await {
            Some(Ok(Event::Body(b))) => body.extend_from_slice(&b),
            Some(Ok(Event::ArtifactEnd)) => return Ok(body),
            Some(Ok(_)) => return Err(Error::Config("archive events out of order".into())),
            Some(Err(e)) => return Err(e),
            None => return Err(Error::Config("the archive ended inside an artifact".into())),
        }
    }
}

/// The largest `MLmodel` file whose `run_id` is rewritten (larger ones are copied as they are).
const MAX_PATCHED: u64 = 1 << 20;

/// An `MLmodel` file with its top-level `run_id: <source>` line pointing at the new run (what MLflow
/// itself reads to find a model's run); everything else is left byte for byte.
pub fn patch_mlmodel(body: &[u8], src_run: &str, dst_run: &str) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(body) else {
        return body.to_vec();
    };
    let mut out = String::with_capacity(text.len() + 8);
    for line in text.split_inclusive('\n') {
        let (content, end) = match line.strip_suffix('\n') {
            Some(c) => (c, "\n"),
            None => (line, ""),
        };
        let value = content.strip_prefix("run_id:").map(str::trim);
        if value.is_some_and(|v| v.trim_matches(|c| c == '\'' || c == '"') == src_run) {
            out.push_str("run_id: ");
            out.push_str(dst_run);
            out.push_str(end);
        } else {
            out.push_str(line);
        }
    }
    out.into_bytes()
}

/// A receiver as a stream.
fn tokio_stream(
    mut rx: mpsc::Receiver<Result<Bytes>>,
) -> impl futures_util::Stream<Item = Result<Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)).boxed()
}

#[cfg(test)]
mod tests {
    use super::patch_mlmodel;

    #[test]
    fn mlmodel_run_id_is_rewritten_and_nothing_else() {
        let src = "artifact_path: model\nflavors:\n  python_function: {}\nrun_id: abc\nutc_time_created: x\n";
        let out = String::from_utf8(patch_mlmodel(src.as_bytes(), "abc", "def")).unwrap();
        assert_eq!(out, src.replace("run_id: abc", "run_id: def"));
        let quoted = "run_id: 'abc'";
        assert_eq!(
            patch_mlmodel(quoted.as_bytes(), "abc", "def"),
            b"run_id: def"
        );
        let other = "run_id: zzz\n  run_id: abc\n";
        assert_eq!(
            patch_mlmodel(other.as_bytes(), "abc", "def"),
            other.as_bytes()
        );
        assert_eq!(patch_mlmodel(&[0xff, 0xfe], "a", "b"), vec![0xff, 0xfe]);
    }
}
