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
use tokio::sync::{mpsc, watch};

use super::archive_source::{ArchiveSource, Event};
use super::destination::Destination;
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
use crate::mlflow::api::workspace::NOTEBOOK_PATH;
use crate::mlflow::types::{DatasetInput, KeyValue, Metric, ModelInput, ModelOutput};
use crate::mlflow::{ArtifactRoot, CreateLoggedModel, CreateRun, UpdateRun};
use std::sync::Arc;

mod bodies;
mod datasets;
mod lineage;
mod links;
mod logged_models;
mod names;
pub(crate) mod notebooks;
mod permissions;
mod registry;
mod run_writer;
mod runs;
mod tags;
mod traces;
mod versions;
mod workspaces;

pub(crate) use bodies::ended_inside_an_artifact;
pub use bodies::patch_mlmodel;
use lineage::*;
pub use names::{ModelNames, uc_level};
pub use permissions::{MissingPrincipal, level_for, privileges_for};
pub(crate) use registry::inside;
pub use registry::{SOURCE_STAGE, StageTo};
use run_writer::*;
pub use runs::importing_user;
use tags::*;
pub use tags::{
    ABANDONED, ATTEMPT, COMPLETE, DATASET_UPDATED, LINEAGE_DATASET, LINEAGE_MODEL, LINEAGE_RUN,
    LINEAGE_SERVER, LINEAGE_SOURCE_MODEL, LINEAGE_VERSION, MISSING_PARENT, PARENT_RUN, PLACEHOLDER,
    PROMPT_TAG, STATE, is_abandoned,
};
use workspaces::Workspaces;

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
    /// Skip units of kinds a later format version defines (with a warning in the report)
    /// instead of refusing the archive (spec §10).
    pub skip_unknown_kinds: bool,
    /// Import everything into this MLflow workspace (made when missing) instead of the
    /// workspaces the archive names; the destination must have workspaces.
    pub dst_workspace: Option<String>,
    /// Into a Databricks workspace: import each run's exported notebook into this workspace
    /// directory and point the run's notebook tags at it.
    pub dst_notebook_dir: Option<String>,
    /// With `dst_notebook_dir`: one subdirectory per run (named by the new run id).
    pub notebook_dir_add_run_id: bool,
    /// Import the archive's traces (default true; `--no-traces` leaves them out).
    pub traces: bool,
    /// Import the archive's evaluation datasets (default true; `--no-datasets`).
    pub datasets: bool,
    /// Apply the archive's permissions to the experiments and registered models imported, on a
    /// destination that keeps permissions (a Databricks workspace; `--import-permissions`).
    pub permissions: bool,
    /// Destination names of registered models (`--model-name-map`, `--uc-schema`);
    /// [`ImportOptions::model_name`] wins for the one model it names.
    pub model_names: ModelNames,
    /// What becomes of a version's stage (`--stage-to`); `None`: stages where the registry has
    /// them, aliases and tags in Unity Catalog ([`StageTo::for_registry`]).
    pub stage_to: Option<StageTo>,
    /// Register versions into Unity Catalog without the signature check (MLflow's
    /// `MLFLOW_SKIP_SIGNATURE_CHECK_FOR_UC_REGISTRY_MIGRATION`).
    pub skip_signature_check: bool,
    /// Bring runs that an earlier import completed up to date with the archive in place (a
    /// sync): their status, end time, name, tags and params are set as the archive has them,
    /// tags the source no longer has are deleted, metric points and files the destination lacks
    /// are added, and a run deleted or restored at the source is deleted or restored. Without
    /// it, a complete run is skipped.
    pub update: bool,
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
            skip_unknown_kinds: false,
            dst_workspace: None,
            dst_notebook_dir: None,
            notebook_dir_add_run_id: false,
            traces: true,
            datasets: true,
            permissions: false,
            model_names: ModelNames::default(),
            stage_to: None,
            skip_signature_check: false,
            update: false,
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
    /// Logged models written by this call.
    pub logged_models_imported: u64,
    /// Runs imported by this call.
    pub runs_imported: u64,
    /// Runs found complete from an earlier import and skipped.
    pub runs_skipped: u64,
    /// Runs found half-imported and redone.
    pub runs_redone: u64,
    /// Runs an earlier import completed, brought up to date with the archive
    /// ([`ImportOptions::update`]).
    pub runs_updated: u64,
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
    /// Model versions an earlier import made whose stage, description or tags were brought up
    /// to date ([`ImportOptions::update`]).
    pub versions_updated: u64,
    /// Versions whose number could not be reproduced: (model, source number, destination number).
    pub renumbered_versions: Vec<(String, u64, u64)>,
    /// Traces written (ids are kept).
    pub traces_imported: u64,
    /// Traces found complete from an earlier import and skipped.
    pub traces_skipped: u64,
    /// Traces and evaluation datasets of the archive left out as asked (`--no-traces`,
    /// `--no-datasets`).
    pub left_out: u64,
    /// Assessments of traces written by this call.
    pub assessments: u64,
    /// Evaluation datasets: source id → destination id.
    pub datasets: HashMap<String, String>,
    /// Dataset records upserted.
    pub dataset_records: u64,
    /// Evaluation datasets written by this call.
    pub datasets_imported: u64,
    /// Units of kinds this version does not know, skipped when asked to: kind → count.
    pub skipped_units: std::collections::BTreeMap<String, u64>,
    /// Aliases (the source's, and those made from stages) not set because the destination's
    /// registry has none (a Databricks workspace registry).
    pub aliases_not_set: u64,
    /// Prompts left out because the destination's registry is Unity Catalog, which keeps
    /// prompts apart from registered models.
    pub prompts_left_out: Vec<String>,
    /// Versions registered into Unity Catalog without a signature check, as asked
    /// (`--skip-signature-check`): (model, source number).
    pub unchecked_signatures: Vec<(String, u64)>,
    /// Files uploaded into Unity Catalog's storage for new versions.
    pub version_files: u64,
    /// Times temporary credentials of Unity Catalog's storage were renewed during uploads.
    pub credential_renewals: u64,
    /// MLflow workspaces of the destination that objects were imported into.
    pub workspaces: std::collections::BTreeSet<String>,
    /// Workspaces the archive names that were merged into the one namespace of a destination
    /// without workspaces.
    pub workspaces_merged: std::collections::BTreeSet<String>,
    /// Permission entries applied (access control entries and grants, one principal each).
    pub permissions_applied: u64,
    /// Principals the destination does not know, object by object: their permissions were not
    /// applied.
    pub permissions_missing: Vec<MissingPrincipal>,
    /// Permission entries with no counterpart at the destination (a workspace level without Unity
    /// Catalog privileges, or the reverse), each said.
    pub permissions_unmapped: Vec<String>,
    /// Permission entries of the archive not applied because `--import-permissions` was not
    /// given.
    pub permissions_left_out: u64,
    /// Permission entries of the archive not applied because the destination keeps no
    /// permissions (it is not a Databricks workspace).
    pub permissions_not_kept: u64,
    /// Notebooks imported into the destination workspace's tree (`dst_notebook_dir`).
    pub notebooks_placed: u64,
    /// Runs whose notebook could not be placed, each with the cause (the run itself is whole).
    pub notebook_failures: Vec<String>,
    /// Notes on settings the destination makes moot (for the user, once each).
    pub notes: Vec<String>,
}

enum Open {
    None,
    /// A run or logged model that was imported before: its members are read (and checked) but
    /// not written.
    Skip,
    Run {
        src: rec::Run,
        /// Where its task stands (its destination run once made).
        stage: watch::Receiver<Stage>,
        metrics: Vec<Metric>,
        /// Params and tags not sent yet: they ride with the first metric batch.
        head: Vec<KeyValue>,
        head_tags: Vec<KeyValue>,
        /// Whether the first batch is still to be sent and its task adds the parent tag to it.
        parent_slot: bool,
        /// The run's writes (metric batches, uploads), done in order by its task.
        ops: RunOps,
        worker: AbortOnDrop<Result<Outcome>>,
        /// A complete run brought up to date ([`ImportOptions::update`]), not a new one.
        update: bool,
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
        /// Stage → the newest source version in it, for aliases made from stages.
        staged: std::collections::BTreeMap<String, u64>,
        /// The model's versions as this import knows them: those it had when its unit began
        /// (none when it was new) and those made since. `None` when it held a placeholder an
        /// interrupted import left: the registry is then asked again for each version.
        view: Option<Vec<crate::mlflow::types::ModelVersion>>,
        /// Versions made whose tasks may still be settling them ([`versions::VersionTail`]),
        /// oldest first.
        tails: std::collections::VecDeque<AbortOnDrop<Result<versions::Settled>>>,
    },
    Trace(Box<traces::OpenTrace>),
    Dataset {
        src: rec::Dataset,
        dst: String,
    },
}

/// A run read to its seal whose task may still be working.
struct Sealed {
    src: rec::Run,
    stage: watch::Receiver<Stage>,
    worker: AbortOnDrop<Result<Outcome>>,
}

/// A run and its destination run, for messages: "run X (destination run Y)" once Y is made.
fn run_and_copy(src: &str, stage: &watch::Receiver<Stage>) -> String {
    match stage.borrow().id() {
        Some(dst) => format!("run {src} (destination run {dst})"),
        None => format!("run {src}"),
    }
}

struct Importer<'a, D: Destination> {
    /// The destination, in the MLflow workspace of the objects being imported.
    client: D,
    /// The destination as given (for other workspaces).
    base: &'a D,
    /// Workspaces: whether the destination has them (asked when an object names one), the one
    /// `client` is in, and the source workspace of each archived experiment.
    workspaces: Workspaces,
    opts: &'a ImportOptions,
    report: ImportReport,
    open: Open,
    /// Source run id → destination run id, for every run created (once its task ended) or
    /// found (the report lists only finished ones).
    run_ids: HashMap<String, String>,
    /// Destination run id → its artifact root, for the runs this import wrote (for version
    /// sources inside them).
    run_roots: HashMap<String, String>,
    /// Source run id → where its task stands, for every run this import writes.
    pending: HashMap<String, watch::Receiver<Stage>>,
    /// Source logged model id → the destination model's artifact location (for version sources
    /// that point inside it).
    model_roots: HashMap<String, String>,
    /// Sealed runs whose workers are still writing, oldest first; finished in this order.
    sealed: std::collections::VecDeque<Sealed>,

    /// Points and outputs waiting for logged models later in the archive, and the runs waiting
    /// for them.
    deferred: links::Deferred,
    /// Source runs that failed or were left unfinished by a failure: their children are not
    /// finished either (they would point at a run the next import redoes).
    failed: std::collections::HashSet<String>,
    /// Lineage indexes of destination experiments ([`lineage_index`]), loaded on first use
    /// (empty for experiments this import created).
    priors: HashMap<String, HashMap<String, Vec<Prior>>>,
    /// Source run id → the complete destination run, for every run of the loaded lineage indexes
    /// (runs that are not in the archive: a parent or a version's run that a sync left as it
    /// was).
    complete_runs: HashMap<String, String>,
    /// Destination experiments where runs were finished: swept for late duplicates at the end.
    touched: std::collections::HashSet<String>,
    /// The importing user, for `mlflow.user` unless the source's is kept.
    user: String,
    /// The runs this import is writing, whose leases it renews.
    leases: Leases,
    /// The archive's format version (from its header).
    version: String,
    /// Complete runs are brought up to date ([`ImportOptions::update`], or an incremental
    /// archive written by `sync`, whose header's scope is `sync`).
    update: bool,
    /// The server the archive was exported from (its header's), for [`LINEAGE_SERVER`].
    source_server: Option<String>,
    /// Inputs and outputs of the runs being brought up to date.
    had: runs::Had,
    /// Source logged models looked for at the destination and not found there.
    unresolved_models: std::collections::HashSet<String>,
    /// Permissions held until their unit's seal.
    perms: permissions::Held,
    /// Unity Catalog name → the source model that went there (two may not).
    uc_names: std::collections::BTreeMap<String, String>,
}

/// Imports an archive read from `source` into the server.
///
/// When it fails, the runs read to their seal before the failure are still finished, and the
/// error comes with the report of what was done.
///
/// # Errors
///
/// [`Failed`], whose `error` says why, by kind ([`Error::root`] sees through the object it
/// names): the archive is not sound ([`Error::Format`], naming the member and the spec section);
/// the destination refused a write or could not be reached ([`Error::Api`],
/// [`Error::Transport`]), or the outcome of a create or metric batch is unknown
/// ([`Error::Ambiguous`]); a setting does not fit the archive ([`Error::Config`]: an archive of
/// several experiments with `experiment_name`, an experiment that exists but is deleted). A run
/// the failure interrupted stays unfinished: the same import run again finishes it.
pub async fn import_archive<D: Destination>(
    client: &D,
    source: ArchiveSource,
    opts: &ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    let mut imp = Importer {
        client: client.clone(),
        base: client,
        workspaces: Workspaces::default(),
        opts,
        report: ImportReport::default(),
        open: Open::None,
        run_ids: HashMap::new(),
        pending: HashMap::new(),
        run_roots: HashMap::new(),
        model_roots: HashMap::new(),
        sealed: std::collections::VecDeque::new(),
        deferred: links::Deferred::default(),
        failed: std::collections::HashSet::new(),
        priors: HashMap::new(),
        complete_runs: HashMap::new(),
        touched: std::collections::HashSet::new(),
        user: importing_user(client),
        leases: Leases::start(client),
        version: String::new(),
        update: opts.update,
        source_server: None,
        had: runs::Had::default(),
        unresolved_models: std::collections::HashSet::new(),
        perms: permissions::Held::default(),
        uc_names: std::collections::BTreeMap::new(),
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

/// The scope (`source.scope` in the header) of an incremental archive written by `sync`: its
/// runs are new or changed since the archives before it, and an import brings complete runs up
/// to date with them.
pub const SYNC_SCOPE: &str = "sync";

/// Experiment tags a Databricks workspace sets itself (its owner and kind): not sent to one.
const SERVER_EXPERIMENT_TAGS: [&str; 4] = [
    "mlflow.ownerId",
    "mlflow.ownerEmail",
    "mlflow.experimentType",
    "mlflow.experiment.sourceName",
];

/// Run tags a Databricks workspace keeps for itself (it refuses them): sent as
/// `mlflow_archive.source.<key>` instead.
pub(super) const SERVER_RUN_TAGS: [&str; 3] = [
    "mlflow.user",
    "mlflow.rootRunId",
    "mlflow.log-model.history",
];

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

impl<D: Destination> Importer<'_, D> {
    /// Reads and imports the whole archive; what was done stays in `self.report` either way.
    pub(super) async fn run(&mut self, mut source: ArchiveSource) -> Result<()> {
        if self.client.is_databricks() && self.opts.use_src_user_id {
            self.report.notes.push(format!(
                "--use-src-user-id is ignored: {} is a Databricks workspace, where the token decides every object's user; the source's user is kept in tag mlflow_archive.source.mlflow.user",
                self.client.server()
            ));
        }
        if self.opts.dst_notebook_dir.is_some() && !self.client.is_databricks() {
            self.report.notes.push(format!(
                "--dst-notebook-dir is ignored: {} is not a Databricks workspace; the notebooks stay the runs' artifacts",
                self.client.server()
            ));
        }
        if let Some(dir) = &self.opts.dst_notebook_dir
            && self.client.is_databricks()
        {
            notebooks::check_dir(dir)?;
        }
        self.enter_given_workspace().await?;
        let read = self.read_all(&mut source).await;
        // Runs read to their seal are finished even if the archive failed after them.
        self.open = Open::None;
        let finished = self.finish_sealed(0).await;
        read.and(finished)?;
        self.settle_all().await
    }

    /// Finishes what the objects imported so far left: late duplicates of their runs swept, and
    /// points linked to logged models that are not in the archive released without a link. Done
    /// at the end, and before moving to another workspace (whose client cannot see these).
    async fn settle_all(&mut self) -> Result<()> {
        self.finish_sealed(0).await?;
        self.sweep().await?;
        let leftover: Vec<String> = self.deferred.models();
        for m in leftover {
            self.release_links(&m, None).await?;
        }
        Ok(())
    }

    pub(super) async fn read_all(&mut self, source: &mut ArchiveSource) -> Result<()> {
        let imp = self;
        let mut ended = false;
        while let Some(event) = source.next().await {
            match event? {
                Event::Header(h) => {
                    imp.version = h.version;
                    let source = h.source.unwrap_or_default();
                    if source.scope.as_deref() == Some(SYNC_SCOPE) {
                        imp.update = true;
                    }
                    imp.source_server = source.tracking_uri.filter(|u| !u.is_empty());
                }
                Event::Record(Record::End(_)) => ended = true,
                Event::Record(r) => {
                    if matches!(
                        r,
                        Record::RegisteredModel(_) | Record::LoggedModel(_) | Record::Trace(_)
                    ) {
                        // Versions may name any run, and a logged model or a trace its source
                        // run: every run before them is finished first.
                        imp.finish_sealed(0).await?;
                    }
                    let sealed = matches!(r, Record::Sealed(_));
                    let what = imp.describe(Some(&r));
                    imp.enter_workspace_of(&r)
                        .await
                        .map_err(|e| e.within(what.clone()))?;
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
                    return Err(Error::Internal("archive events out of order".into()));
                }
            }
        }
        if !ended {
            return Err(Error::Format {
                offset: None,
                member: None,
                object: None,
                detail: "the archive ended before its trailer (§8.3)".into(),
            });
        }
        Ok(())
    }

    /// Finishes sealed runs, oldest first, until at most `keep` are left writing.
    pub(super) async fn finish_sealed(&mut self, keep: usize) -> Result<()> {
        while self.sealed.len() > keep {
            let Some(mut s) = self.sealed.pop_front() else {
                break;
            };
            if s.src
                .parent_run_id()
                .is_some_and(|p| self.failed.contains(p))
            {
                // Its parent failed: left in-progress, to be redone with it.
                self.failed.insert(s.src.run_id.clone());
                continue;
            }
            let src_id = s.src.run_id.clone();
            let outcome = s.worker.join(&src_id).await.and_then(|r| r);
            let what = run_and_copy(&src_id, &s.stage);
            let done = match outcome {
                Ok(o) => self.ended(s.src, o).await,
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

    /// The object being imported, for error messages: the record about to be applied, or the
    /// open unit.
    pub(super) fn describe(&self, next: Option<&Record>) -> String {
        match next {
            Some(Record::Experiment(e)) => {
                return format!("experiment {} {:?}", e.experiment_id, e.name);
            }
            Some(Record::Run(r)) => return format!("run {} {:?}", r.run_id, r.run_name),
            Some(Record::LoggedModel(m)) => return format!("logged model {}", m.model_id),
            Some(Record::RegisteredModel(m)) => return format!("registered model {:?}", m.name),
            Some(Record::Trace(t)) => return format!("trace {}", t.trace_id),
            Some(Record::Dataset(d)) => {
                return format!("evaluation dataset {} {:?}", d.dataset_id, d.name);
            }
            _ => {}
        }
        match &self.open {
            Open::Run { src, stage, .. } => run_and_copy(&src.run_id, stage),
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
            Open::Trace(t) => t.describe(),
            Open::Dataset { src, dst } => format!(
                "evaluation dataset {} {:?} (destination {dst})",
                src.dataset_id, src.name
            ),
            Open::Skip | Open::None => self
                .sealing_experiment(next)
                .unwrap_or_else(|| "the archive".into()),
        }
    }

    pub(super) async fn record(&mut self, r: Record) -> Result<()> {
        match r {
            Record::Experiment(e) => {
                self.note_experiment(&e);
                self.experiment(e).await
            }
            Record::Permissions(p) => {
                self.hold_permissions(p);
                Ok(())
            }
            Record::Run(r) => self.begin_run(r).await,
            Record::MetricChunk(c) => self.chunk(c).await,
            Record::LoggedModel(m) => self.begin_logged_model(m).await,
            Record::Sealed(s) => self.sealed(s.unit).await,
            Record::RegisteredModel(m) => self.begin_model(m).await,
            Record::ModelVersion(v) => self.version(v).await,
            Record::Trace(_) if !self.opts.traces => self.leave_out(),
            Record::Dataset(_) if !self.opts.datasets => self.leave_out(),
            Record::Trace(t) => self.begin_trace(t).await,
            Record::Dataset(d) => self.begin_dataset(d).await,
            Record::DatasetRecords(c) => self.dataset_records(c).await,
            Record::Artifact(_) | Record::End(_) => Ok(()),
        }
    }

    pub(super) async fn experiment(&mut self, e: rec::Experiment) -> Result<()> {
        /// The experiment every MLflow tracking server has (id 0).
        const DEFAULT_EXPERIMENT_NAME: &str = "Default";
        let name = match (
            &self.opts.experiment_name,
            &self.opts.experiment_name_prefix,
        ) {
            (Some(n), _) => n.clone(),
            (None, Some(prefix)) => format!("{prefix}{}", e.name),
            (None, None) => e.name.clone(),
        };
        if self.client.is_databricks() && !name.starts_with('/') {
            return Err(Error::Config(format!(
                "experiment {name:?}: an experiment name in a Databricks workspace is an absolute workspace path (/Users/<user>/{name} or /Shared/{name}); give one with --experiment-name, or --experiment-name-prefix /Shared/"
            )));
        }
        // A new experiment is the rule in an import, an existing one in a sync (and the server's
        // own "Default"): each asks first for what it likely finds, and for the other only when
        // the server says so (a round trip less per experiment, on the reader's path).
        let found = if self.update || name == DEFAULT_EXPERIMENT_NAME {
            self.client.experiment_by_name(&name).await?
        } else {
            None
        };
        let (id, found) = match found {
            Some(found) => (found.experiment_id.clone(), Some(found)),
            None => match async {
                self.client.ensure_experiment_dir(&name).await?;
                let tags: Vec<KeyValue> = kv(&e.tags)
                    .into_iter()
                    .filter(|t| {
                        !(self.client.is_databricks()
                            && SERVER_EXPERIMENT_TAGS.contains(&t.key.as_str()))
                    })
                    .collect();
                self.client.create_experiment(&name, &tags).await
            }
            .await
            {
                Ok(id) => {
                    // New: no run of any lineage is in it. (Were it another's that a lost
                    // answer's lookup found, settling still keeps one run per source run.)
                    self.priors.insert(id.clone(), HashMap::new());
                    (id, None)
                }
                // There already (an earlier or a concurrent import's, or another's): use it.
                Err(err) if err.is_already_exists() => {
                    match self.client.experiment_by_name(&name).await? {
                        Some(found) => (found.experiment_id.clone(), Some(found)),
                        None => return Err(err),
                    }
                }
                Err(err) => return Err(err),
            },
        };
        if let Some(found) = &found
            && found.lifecycle_stage == "deleted"
        {
            return Err(Error::Config(format!(
                "experiment {name:?} exists on {} but is deleted: restore it or choose another name",
                self.client.server()
            )));
        }
        // Runs get their roots under the experiment's: one this client cannot write (`hdfs:`,
        // `dbfs:`, ...) fails the import here, before any run is made.
        let location = match found {
            Some(f) => f.artifact_location,
            None => self
                .client
                .experiment_by_name(&name)
                .await?
                .map(|f| f.artifact_location)
                .unwrap_or_default(),
        };
        if !location.is_empty() {
            crate::mlflow::store::Location::check_experiment_root(&location).map_err(|err| {
                Error::Config(format!(
                    "destination experiment {id} {name:?}: its runs' artifacts cannot be written: {err}"
                ))
            })?;
        }
        self.report.experiments.insert(e.experiment_id, id);
        tick(&self.opts.progress, Counter::Experiments, 1);
        Ok(())
    }

    /// A unit the user asked to leave out: read (and checked), not written.
    fn leave_out(&mut self) -> Result<()> {
        self.report.left_out += 1;
        self.open = Open::Skip;
        Ok(())
    }

    /// A unit sealed without a record this import acted on: one of a kind a later format version
    /// defines is refused, or counted as skipped when asked (spec §10).
    fn other_unit(&mut self, unit: UnitId) -> Result<()> {
        if !matches!(unit, UnitId::Other { .. }) {
            return Ok(());
        }
        let kind = unit.kind().to_string();
        if !self.opts.skip_unknown_kinds {
            return Err(Error::Config(format!(
                "the archive holds units of kind {kind:?} ({:?}), which a later version of the format defines (the archive's is {}) and this mlflow-archive does not know: upgrade mlflow-archive, or give --skip-unknown-kinds to import the rest without them",
                unit.prefix(),
                self.version
            )));
        }
        *self.report.skipped_units.entry(kind).or_default() += 1;
        Ok(())
    }

    pub(super) fn dst_experiment(&self, src: &str, what: &str) -> Result<String> {
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
            "{what}: its experiment {src} is not in the archive (import-experiment --experiment-name NAME puts everything into one experiment)"
        )))
    }

    pub(super) async fn sealed(&mut self, unit: UnitId) -> Result<()> {
        self.flush_metrics().await?;
        if let Open::Run { src, update, .. } = &self.open {
            let (src, update) = (src.clone(), *update);
            let finish = self.finish_of(&src, update).await?;
            self.run_op(Op::Finish(Box::new(finish))).await?;
        }
        self.apply_permissions(&unit).await?;
        match std::mem::replace(&mut self.open, Open::None) {
            Open::Run {
                src, stage, worker, ..
            } => {
                // Dropping `ops` tells the task there is nothing more; it finishes in the
                // background while the next runs are read.
                self.sealed.push_back(Sealed { src, stage, worker });
                Ok(())
            }
            Open::LoggedModel { src, dst, .. } => {
                tick(&self.opts.progress, Counter::LoggedModels, 1);
                self.report.logged_models_imported += 1;
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
                    .set_logged_model_tags(&dst, &[KeyValue::new(STATE, COMPLETE)])
                    .await?;
                self.leases.release_model(&dst);
                self.release_links(&src.model_id, Some(&dst)).await
            }
            Open::Model {
                src,
                dst,
                mut numbers,
                staged,
                tails,
                ..
            } => {
                for tail in tails {
                    self.version_settled(&dst, &mut numbers, tail).await?;
                }
                self.set_aliases(&src, &dst, &numbers, staged).await
            }
            open @ Open::Trace(_) => {
                self.open = open;
                self.end_trace().await
            }
            open @ Open::Dataset { .. } => {
                self.open = open;
                self.end_dataset().await
            }
            Open::Skip | Open::None => self.other_unit(unit),
        }
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod uc_tests;
