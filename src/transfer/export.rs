//! Tracking server → archive: experiments with their runs (parents first, deferred children held
//! until their parent is written), full metric histories page by page, artifacts streamed file by
//! file, and the experiments' logged models right after their source run.

use std::collections::{BTreeMap, HashMap, HashSet};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::TryStreamExt;

use super::archive_sink::{ArchiveSink, Cmd};
use super::map;
use super::ordered::{Scheduler, UnitTx, run_ordered};
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::api::workspace::{NOTEBOOK_PATH, NOTEBOOK_REVISION, NotebookFormat};
use crate::mlflow::types::{Experiment, LoggedModel, Run, ViewType};
use crate::mlflow::{ArtifactRoot, Client};

/// What to export.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ExportOptions {
    /// Units (runs, logged models) fetched at once; the archive is the same whatever it is.
    pub jobs: usize,
    /// Include deleted runs (`--export-deleted-runs`).
    pub export_deleted_runs: bool,
    /// Points per metric history page (default: the client's).
    pub history_page: Option<u32>,
    /// Add the Python tool's provenance tags to every run (`--export-metadata-tags`):
    /// `mlflow_tools.metadata.{timestamp, timestamp_nice, experiment_id, experiment-name,
    /// tracking_uri, run-id}`.
    pub metadata_tags: bool,
    /// Export the Databricks notebook each run was logged from, in these formats, as artifacts
    /// `notebooks/<name>.<format>` with `notebooks/manifest.json` (`--notebook-formats`).
    pub notebook_formats: Vec<NotebookFormat>,
}

/// What an export did besides writing its records (the archive's own counts are in its
/// [`WriteSummary`](crate::format::WriteSummary)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportReport {
    /// What became of the notebooks [`ExportOptions::notebook_formats`] asked for.
    pub notebooks: NotebookReport,
}

/// What `notebook_formats` found: runs logged from a notebook, notebooks exported, failures
/// (the run, the notebook, the cause); a failed notebook does not stop the export.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NotebookReport {
    /// Runs that name a Databricks notebook (counted only when formats were asked for).
    pub runs: u64,
    /// Notebook files written.
    pub exported: u64,
    /// Notebooks that could not be exported.
    pub failures: Vec<String>,
}

/// [`NotebookReport`] as the runs being exported at once fill it.
#[derive(Debug, Default)]
struct NotebookLog {
    runs: AtomicU64,
    exported: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl NotebookLog {
    fn report(&self) -> ExportReport {
        ExportReport {
            notebooks: NotebookReport {
                runs: self.runs.load(Ordering::Relaxed),
                exported: self.exported.load(Ordering::Relaxed),
                failures: self
                    .failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
        }
    }
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            jobs: DEFAULT_JOBS,
            export_deleted_runs: false,
            history_page: None,
            metadata_tags: false,
            notebook_formats: Vec::new(),
        }
    }
}

/// Runs transferred at once unless told otherwise: transfers wait on round trips far more than on
/// this machine's CPU. Eight keep a 2-worker server busy: on the bench's small set, an export took
/// 6.4 s with 4 and 5.3 s with 8 (README "Performance").
pub const DEFAULT_JOBS: usize = 8;

/// The prefix of the provenance tags `--export-metadata-tags` adds.
pub const METADATA_PREFIX: &str = "mlflow_tools.metadata.";

/// Exports `experiments` (already resolved) into `sink`.
///
/// # Errors
///
/// The first failure of a request to the server (see [`Client`]) or of the
/// sink (see [`ArchiveSink::send`](crate::transfer::archive_sink::ArchiveSink::send)); the sink
/// should then be dropped, not finished, so that no partial archive passes for a whole one.
pub async fn export_experiments(
    client: &Client,
    experiments: &[Experiment],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        experiments_into(client, experiments, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}

async fn experiments_into(
    client: &Client,
    experiments: &[Experiment],
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let view = if opts.export_deleted_runs {
        ViewType::All
    } else {
        ViewType::ActiveOnly
    };
    // First pass, light: which runs and logged models the export holds, so a dependency on an
    // object outside it is known to be satisfied and one inside it is waited for.
    let mut in_export: HashSet<String> = HashSet::new();
    let mut models_by_source: HashMap<String, Vec<LoggedModel>> = HashMap::new();
    let mut orphan_models: Vec<LoggedModel> = Vec::new();
    for e in experiments {
        let ids = std::slice::from_ref(&e.experiment_id);
        let mut runs = std::pin::pin!(client.search_runs(ids, None, view));
        while let Some(r) = runs.try_next().await? {
            in_export.insert(format!("run:{}", r.info.run_id));
        }
        let mut models = std::pin::pin!(client.search_logged_models(ids, None));
        while let Some(m) = models.try_next().await? {
            in_export.insert(format!("lm:{}", m.info.model_id));
            if m.info.source_run_id.is_empty() {
                orphan_models.push(m);
            } else {
                models_by_source
                    .entry(m.info.source_run_id.clone())
                    .or_default()
                    .push(m);
            }
        }
    }
    let mut st = State::new(
        client,
        opts,
        log,
        in_export,
        models_by_source,
        &orphan_models,
    );
    for e in experiments {
        st.write_experiment(sink, e).await?;
    }
    for m in orphan_models {
        st.write_logged_model(sink, &m).await?;
    }
    // Each run as `runs/get` has it: search answers leave out the logged models a run took as
    // inputs (MLflow 3.x), which the archive holds and its order depends on. A server without
    // logged models has no such inputs: the search answer is then the whole run.
    let whole = !server_has_logged_models(client).await?;
    for e in experiments {
        let ids = std::slice::from_ref(&e.experiment_id);
        let mut runs = std::pin::pin!(
            client
                .search_runs(ids, None, view)
                .map_ok(|r| async move {
                    if whole {
                        Ok(r)
                    } else {
                        client.get_run(&r.info.run_id).await
                    }
                })
                .try_buffered(opts.jobs.max(1))
        );
        while let Some(r) = runs.try_next().await? {
            st.offer(sink, r).await?;
        }
    }
    // Logged models whose source run is not in the export.
    let mut rest: Vec<LoggedModel> = st.models_by_source.drain().flat_map(|(_, v)| v).collect();
    rest.sort_by(|a, b| a.info.model_id.cmp(&b.info.model_id));
    for m in rest {
        st.write_logged_model(sink, &m).await?;
    }
    if let Some((dep, runs)) = st.deferred.iter().next() {
        return Err(Error::Config(format!(
            "run {} waits for {dep}, which never came (a cycle of parents?)",
            runs[0].info.run_id
        )));
    }
    Ok(())
}

/// Whether any experiment of the server, deleted ones too, holds a logged model (one page of a
/// search per 100 experiments, until one is found).
async fn server_has_logged_models(client: &Client) -> Result<bool> {
    let ids: Vec<String> = client
        .search_experiments(ViewType::All, None)
        .map_ok(|e| e.experiment_id)
        .try_collect()
        .await?;
    for chunk in ids.chunks(100) {
        let mut models = std::pin::pin!(client.search_logged_models(chunk, None));
        if models.try_next().await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Exports every active experiment of the server, then every registered model with every
/// version (their runs are in the archive already when their experiment is).
///
/// # Errors
///
/// As [`export_experiments`].
pub async fn export_all(
    client: &Client,
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    let experiments: Vec<Experiment> = client
        .search_experiments(ViewType::ActiveOnly, None)
        .try_collect()
        .await?;
    run_ordered(sink, opts.jobs, async |s| {
        experiments_into(client, &experiments, s, opts, &log).await?;
        // Prompts too: the registry's searches leave them out unless asked for by their tag.
        let mut models: Vec<crate::mlflow::types::RegisteredModel> =
            client.search_registered_models(None).try_collect().await?;
        let prompts: Vec<crate::mlflow::types::RegisteredModel> = client
            .search_registered_models(Some(crate::mlflow::api::registry::PROMPT_FILTER))
            .try_collect()
            .await?;
        for p in prompts {
            if !models.iter().any(|m| m.name == p.name) {
                models.push(p);
            }
        }
        for m in models {
            let versions = client.all_model_versions(&m.name).await?;
            write_model_unit(s, &m, &versions).await?;
        }
        Ok(())
    })
    .await?;
    Ok(log.report())
}

async fn write_model_unit(
    sink: &mut Scheduler,
    m: &crate::mlflow::types::RegisteredModel,
    versions: &[crate::mlflow::types::ModelVersion],
) -> Result<()> {
    sink.send(Cmd::BeginRegisteredModel(map::registered_model(m)))
        .await?;
    for v in versions {
        sink.send(Cmd::ModelVersion(map::model_version(v)?)).await?;
    }
    sink.send(Cmd::EndUnit).await
}

/// Exports registered models with every version, preceded by what the versions come from: the
/// versions' runs (and their experiments) and the logged models they register.
///
/// # Errors
///
/// As [`export_experiments`]; a registered model that does not exist is an
/// [`Error::Api`] not-found error.
pub async fn export_models(
    client: &Client,
    names: &[String],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        models_into(client, names, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}

async fn models_into(
    client: &Client,
    names: &[String],
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let mut models = Vec::new();
    let mut run_ids: Vec<String> = Vec::new();
    let mut model_ids: Vec<String> = Vec::new();
    for name in names {
        let m = client.get_registered_model(name).await?;
        let versions = client.all_model_versions(name).await?;
        for v in &versions {
            if !v.run_id.is_empty() && !run_ids.contains(&v.run_id) {
                run_ids.push(v.run_id.clone());
            }
            let mid = v.model_id.clone().or_else(|| {
                v.source
                    .strip_prefix("models:/")
                    .filter(|m| m.starts_with("m-"))
                    .map(str::to_string)
            });
            if let Some(mid) = mid.filter(|m| !model_ids.contains(m)) {
                model_ids.push(mid);
            }
        }
        models.push((m, versions));
    }
    let mut runs: Vec<Run> = Vec::new();
    for id in &run_ids {
        match client.get_run(id).await {
            Ok(r) => runs.push(r),
            // A version whose run is gone keeps its run id; there is nothing to export for it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let mut logged = Vec::new();
    for id in &model_ids {
        match client.get_logged_model(id).await {
            Ok(m) => logged.push(m),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    run_set_into(client, runs, logged, sink, opts, log).await?;
    for (m, versions) in models {
        write_model_unit(sink, &m, &versions).await?;
    }
    Ok(())
}

/// Writes a given set of runs and logged models, after the experiments they belong to, parents
/// and sources first.
async fn run_set_into(
    client: &Client,
    mut runs: Vec<Run>,
    logged: Vec<LoggedModel>,
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let mut experiment_ids: Vec<String> =
        runs.iter().map(|r| r.info.experiment_id.clone()).collect();
    experiment_ids.extend(logged.iter().map(|m| m.info.experiment_id.clone()));
    experiment_ids.sort();
    experiment_ids.dedup();
    let mut in_export: HashSet<String> = runs
        .iter()
        .map(|r| format!("run:{}", r.info.run_id))
        .collect();
    let mut models_by_source: HashMap<String, Vec<LoggedModel>> = HashMap::new();
    for m in logged {
        in_export.insert(format!("lm:{}", m.info.model_id));
        models_by_source
            .entry(m.info.source_run_id.clone())
            .or_default()
            .push(m);
    }
    let mut st = State::new(client, opts, log, in_export, models_by_source, &[]);
    for id in &experiment_ids {
        let e = client.get_experiment(id).await?;
        st.write_experiment(sink, &e).await?;
    }
    // Parents first among the versions' runs (by start time, then as dependencies allow).
    runs.sort_by_key(|r| (r.info.start_time, r.info.run_id.clone()));
    for r in runs {
        st.offer(sink, r).await?;
    }
    let mut rest: Vec<LoggedModel> = st.models_by_source.drain().flat_map(|(_, v)| v).collect();
    rest.sort_by(|a, b| a.info.model_id.cmp(&b.info.model_id));
    for m in rest {
        st.write_logged_model(sink, &m).await?;
    }
    for (_, waiting) in std::mem::take(&mut st.deferred) {
        for r in waiting {
            st.write_run(sink, &r).await?;
        }
    }
    Ok(())
}

/// Exports single runs (with their experiments, and the logged models they produced).
///
/// # Errors
///
/// As [`export_experiments`]; a run that does not exist is an [`Error::Api`]
/// not-found error.
pub async fn export_runs(
    client: &Client,
    run_ids: &[String],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        runs_into(client, run_ids, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}

async fn runs_into(
    client: &Client,
    run_ids: &[String],
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let mut runs = Vec::new();
    let mut logged = Vec::new();
    for id in run_ids {
        let r = client.get_run(id).await?;
        let mut models =
            std::pin::pin!(client.search_logged_models(&[&r.info.experiment_id], None));
        while let Some(m) = models.try_next().await? {
            if m.info.source_run_id == r.info.run_id {
                logged.push(m);
            }
        }
        runs.push(r);
    }
    run_set_into(client, runs, logged, sink, opts, log).await
}

struct State<'a> {
    client: &'a Client,
    opts: &'a ExportOptions,
    /// What becomes of the notebooks asked for.
    notebooks: Arc<NotebookLog>,
    written: HashSet<String>,
    /// Runs waiting for a dependency (`run:<id>` or `lm:<id>`), by that dependency.
    deferred: BTreeMap<String, Vec<Run>>,
    models_by_source: HashMap<String, Vec<LoggedModel>>,
    in_export: HashSet<String>,
    /// MLflow 3 links of metric points to logged models, by run (the history endpoint does not
    /// return them; the logged models' metrics do).
    links: HashMap<String, HashMap<PointKey, Links>>,
    /// Experiment names by id, for the metadata tags.
    experiment_names: HashMap<String, String>,
}

/// A metric point's place: key, step, timestamp.
type PointKey = (String, i64, i64);
/// A point's link: logged model, dataset name, dataset digest.
type Link = (Option<String>, Option<String>, Option<String>);
/// The links at one place, with the bits of the value each was reported with.
type Links = Vec<(u64, Link)>;

/// The link of a history point: the one reported with the same value; for a value that is not
/// finite (NaN, ±Infinity), which a logged model's metrics may report otherwise (the sqlite store
/// gives a NaN as 0.0 there, and stores +Infinity as the largest float), the one reported at the
/// same place with such a value or 0.0.
fn link_of(links: &Links, value: f64) -> Option<&Link> {
    let exact = links.iter().find(|(bits, _)| *bits == value.to_bits());
    if exact.is_some() || value.is_finite() {
        return exact.map(|(_, l)| l);
    }
    links
        .iter()
        .find(|(bits, _)| {
            let v = f64::from_bits(*bits);
            !v.is_finite() || v == 0.0 || v.abs() == f64::MAX
        })
        .map(|(_, l)| l)
}

/// The links of metric points to logged models, from the models' own metrics.
fn links_of<'a>(
    models: impl IntoIterator<Item = &'a LoggedModel>,
) -> HashMap<String, HashMap<PointKey, Links>> {
    let mut out: HashMap<String, HashMap<PointKey, Links>> = HashMap::new();
    for m in models {
        for p in &m.data.metrics {
            let Some(run) = p.run_id.clone() else {
                continue;
            };
            out.entry(run)
                .or_default()
                .entry((p.key.clone(), p.step, p.timestamp))
                .or_default()
                .push((
                    p.value.to_bits(),
                    (
                        Some(m.info.model_id.clone()),
                        p.dataset_name.clone(),
                        p.dataset_digest.clone(),
                    ),
                ));
        }
    }
    out
}

impl<'a> State<'a> {
    /// The state of an export of `in_export`: the logged models by source run (and those without
    /// one), whose metrics also give the links of runs' points to them.
    fn new(
        client: &'a Client,
        opts: &'a ExportOptions,
        notebooks: &Arc<NotebookLog>,
        in_export: HashSet<String>,
        models_by_source: HashMap<String, Vec<LoggedModel>>,
        orphans: &[LoggedModel],
    ) -> Self {
        let links = links_of(models_by_source.values().flatten().chain(orphans));
        State {
            client,
            opts,
            notebooks: Arc::clone(notebooks),
            written: HashSet::new(),
            deferred: BTreeMap::new(),
            models_by_source,
            in_export,
            links,
            experiment_names: HashMap::new(),
        }
    }

    /// Writes an experiment unit (and remembers its name for the runs' metadata tags).
    async fn write_experiment(&mut self, sink: &mut Scheduler, e: &Experiment) -> Result<()> {
        self.experiment_names
            .insert(e.experiment_id.clone(), e.name.clone());
        sink.send(Cmd::Experiment(map::experiment(e))).await
    }

    fn missing_dependency(&self, r: &Run) -> Option<String> {
        let parent = r
            .data
            .tags
            .iter()
            .find(|t| t.key == "mlflow.parentRunId" && !t.value.is_empty())
            .map(|t| format!("run:{}", t.value));
        parent
            .into_iter()
            .chain(
                r.inputs
                    .model_inputs
                    .iter()
                    .map(|m| format!("lm:{}", m.model_id)),
            )
            .find(|d| self.in_export.contains(d) && !self.written.contains(d))
    }

    /// Writes a run now if what it depends on is written, else holds it.
    async fn offer(&mut self, sink: &mut Scheduler, first: Run) -> Result<()> {
        let mut ready = vec![first];
        while let Some(r) = ready.pop() {
            if let Some(dep) = self.missing_dependency(&r) {
                self.deferred.entry(dep).or_default().push(r);
                continue;
            }
            let id = r.info.run_id.clone();
            self.write_run(sink, &r).await?;
            self.written.insert(format!("run:{id}"));
            let mut released: Vec<String> = vec![format!("run:{id}")];
            if let Some(models) = self.models_by_source.remove(&id) {
                for m in models {
                    self.write_logged_model(sink, &m).await?;
                    released.push(format!("lm:{}", m.info.model_id));
                }
            }
            for key in released {
                if let Some(waiting) = self.deferred.remove(&key) {
                    ready.extend(waiting.into_iter().rev());
                }
            }
        }
        Ok(())
    }

    /// Schedules a run unit; its content is fetched on its own task.
    async fn write_run(&mut self, sink: &mut Scheduler, r: &Run) -> Result<()> {
        let id = r.info.run_id.clone();
        let mut record = map::run(r);
        if self.opts.metadata_tags {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let exp_name = self
                .experiment_names
                .get(&r.info.experiment_id)
                .cloned()
                .unwrap_or_default();
            for (k, v) in [
                ("timestamp", now.to_string()),
                ("timestamp_nice", format_utc(now)),
                ("experiment_id", r.info.experiment_id.clone()),
                ("experiment-name", exp_name),
                ("tracking_uri", self.client.server().to_string()),
                ("run-id", id.clone()),
            ] {
                record
                    .tags
                    .push(rec::Tag::new(format!("{METADATA_PREFIX}{k}"), v));
            }
        }
        let mut keys: Vec<String> = r.data.metrics.iter().map(|m| m.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        let tag = |k: &str| {
            r.data
                .tags
                .iter()
                .find(|t| t.key == k && !t.value.is_empty())
                .map(|t| t.value.clone())
        };
        let notebook = match tag(NOTEBOOK_PATH) {
            Some(path) if !self.opts.notebook_formats.is_empty() => {
                self.notebooks.runs.fetch_add(1, Ordering::Relaxed);
                Some(NotebookJob {
                    path,
                    revision: tag(NOTEBOOK_REVISION),
                    formats: self.opts.notebook_formats.clone(),
                    log: Arc::clone(&self.notebooks),
                })
            }
            _ => None,
        };
        let job = RunJob {
            notebook,
            client: self.client.clone(),
            history_page: self.opts.history_page,
            links: self.links.remove(&id).unwrap_or_default(),
            record,
            keys,
            artifact_uri: r.info.artifact_uri.clone(),
        };
        sink.spawn(|unit| job.produce(unit)).await
    }

    /// Schedules a logged model unit.
    async fn write_logged_model(&mut self, sink: &mut Scheduler, m: &LoggedModel) -> Result<()> {
        let i = &m.info;
        let record = rec::LoggedModel {
            model_id: i.model_id.clone(),
            experiment_id: i.experiment_id.clone(),
            name: i.name.clone(),
            model_type: i.model_type.clone(),
            source_run_id: i.source_run_id.clone(),
            status: i.status.clone(),
            status_message: i.status_message.clone(),
            artifact_uri: i.artifact_uri.clone(),
            creation_timestamp: i.creation_timestamp_ms,
            last_updated_timestamp: i.last_updated_timestamp_ms,
            params: m
                .data
                .params
                .iter()
                .map(|p| rec::Tag::new(p.key.clone(), p.value.clone()))
                .collect(),
            tags: i
                .tags
                .iter()
                .map(|t| rec::Tag::new(t.key.clone(), t.value.clone()))
                .collect(),
        };
        let root = if i.artifact_uri.is_empty() {
            None
        } else {
            Some(
                m.artifact_root()
                    .map_err(|e| Error::Config(format!("logged model {}: {e}", i.model_id)))?,
            )
        };
        self.written.insert(format!("lm:{}", i.model_id));
        let client = self.client.clone();
        sink.spawn(|mut unit| async move {
            unit.send(Cmd::BeginLoggedModel(record)).await?;
            if let Some(root) = root {
                copy_artifacts(&client, &root, &mut unit).await?;
            }
            unit.send(Cmd::EndUnit).await
        })
        .await
    }
}

/// What a run unit's task needs: the run's record, its metric keys and artifact root.
struct RunJob {
    notebook: Option<NotebookJob>,
    client: Client,
    history_page: Option<u32>,
    links: HashMap<PointKey, Links>,
    record: rec::Run,
    keys: Vec<String>,
    artifact_uri: String,
}

impl RunJob {
    async fn produce(self, mut unit: UnitTx) -> Result<()> {
        let id = self.record.run_id.clone();
        unit.send(Cmd::BeginRun(self.record)).await?;
        for key in &self.keys {
            let mut pages = std::pin::pin!(self.client.metric_history(&id, key, self.history_page));
            while let Some(mut page) = pages.try_next().await? {
                if !self.links.is_empty() {
                    for p in &mut page {
                        let k = (p.key.clone(), p.step, p.timestamp);
                        let link = self.links.get(&k).and_then(|l| link_of(l, p.value));
                        if let Some((model, name, digest)) = link {
                            p.model_id.clone_from(model);
                            p.dataset_name.clone_from(name);
                            p.dataset_digest.clone_from(digest);
                        }
                    }
                }
                for chunk in map::metric_chunks(key, &page) {
                    unit.send(Cmd::Chunk(chunk)).await?;
                }
            }
        }
        let mut present = HashSet::new();
        if !self.artifact_uri.is_empty() {
            let root = ArtifactRoot::parse(&self.artifact_uri)
                .map_err(|e| Error::Config(format!("run {id}: {e}")))?;
            present = copy_artifacts(&self.client, &root, &mut unit).await?;
        }
        if let Some(nb) = &self.notebook {
            nb.write(&self.client, &id, &present, &unit).await?;
        }
        unit.send(Cmd::EndUnit).await
    }
}

/// The notebook a run was logged from, to export in some formats.
struct NotebookJob {
    path: String,
    revision: Option<String>,
    formats: Vec<NotebookFormat>,
    log: Arc<NotebookLog>,
}

impl NotebookJob {
    /// Adds `notebooks/<name>.<format>` for each format, and `notebooks/manifest.json`, unless the
    /// run's artifacts have them already (`present`: a run imported with its notebooks).
    async fn write(
        &self,
        client: &Client,
        run: &str,
        present: &HashSet<String>,
        unit: &UnitTx,
    ) -> Result<()> {
        let name = self.path.rsplit('/').next().unwrap_or("");
        let mut formats: Vec<&str> = Vec::new();
        for f in &self.formats {
            let rel = format!("notebooks/{name}.{}", f.extension());
            if let Err(why) = crate::format::path::check_relpath(&rel) {
                let mut failures = self.log.failures.lock().unwrap_or_else(|p| p.into_inner());
                failures.push(format!(
                    "run {run}: notebook {:?}: its name cannot be an artifact path: {why}",
                    self.path
                ));
                break;
            }
            if present.contains(&rel) {
                continue;
            }
            match client
                .export_notebook(&self.path, *f, self.revision.as_deref())
                .await
            {
                Ok(bytes) => {
                    unit.send(Cmd::BeginArtifact(rel, bytes.len() as u64))
                        .await?;
                    unit.send(Cmd::Body(bytes)).await?;
                    unit.send(Cmd::EndArtifact).await?;
                    self.log.exported.fetch_add(1, Ordering::Relaxed);
                    formats.push(f.api_name());
                }
                Err(e) => {
                    let mut failures = self.log.failures.lock().unwrap_or_else(|p| p.into_inner());
                    failures.push(format!("run {run}: notebook {:?} as {f}: {e}", self.path));
                }
            }
        }
        let manifest = "notebooks/manifest.json";
        if !formats.is_empty() && !present.contains(manifest) {
            let doc = serde_json::json!({
                NOTEBOOK_PATH: self.path,
                NOTEBOOK_REVISION: self.revision,
                "formats": formats,
            });
            let bytes = bytes::Bytes::from(serde_json::to_vec_pretty(&doc).unwrap_or_default());
            unit.send(Cmd::BeginArtifact(manifest.into(), bytes.len() as u64))
                .await?;
            unit.send(Cmd::Body(bytes)).await?;
            unit.send(Cmd::EndArtifact).await?;
        }
        Ok(())
    }
}

/// Files up to this size are fetched ahead of their turn; larger ones only when their unit is
/// being written, so a download never waits half-read behind another unit.
const PREFETCH_MAX: u64 = 1 << 20;

/// Streams every file under `root` into the open unit; returns the paths under `notebooks/`.
async fn copy_artifacts(
    client: &Client,
    root: &ArtifactRoot,
    unit: &mut UnitTx,
) -> Result<HashSet<String>> {
    let mut notebooks = HashSet::new();
    let mut files = std::pin::pin!(client.walk_artifacts(root));
    while let Some(f) = files.try_next().await? {
        if f.path.starts_with("notebooks/") {
            notebooks.insert(f.path.clone());
        }
        if f.size > PREFETCH_MAX {
            unit.wait_front().await;
        }
        let dl = client
            .download_artifact(root, &f.path, Some(f.size))
            .await?;
        unit.send(Cmd::BeginArtifact(f.path.clone(), f.size))
            .await?;
        let mut body = dl.body;
        while let Some(chunk) = body.try_next().await? {
            unit.send(Cmd::Body(chunk)).await?;
        }
        unit.send(Cmd::EndArtifact).await?;
    }
    Ok(notebooks)
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) for seconds since the epoch.
fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_points_keep_their_link() {
        let link = |m: &str| (Some(m.to_string()), None, None);
        let links = vec![
            (0.0f64.to_bits(), link("nan-as-zero")),
            (2.5f64.to_bits(), link("b")),
        ];
        assert_eq!(super::link_of(&links, 2.5), Some(&link("b")));
        assert_eq!(super::link_of(&links, f64::NAN), Some(&link("nan-as-zero")));
        assert_eq!(super::link_of(&links, 1.0), None);
        let max = vec![(f64::MAX.to_bits(), link("inf"))];
        assert_eq!(super::link_of(&max, f64::INFINITY), Some(&link("inf")));
        let nan = vec![(f64::NAN.to_bits(), link("nan"))];
        assert_eq!(super::link_of(&nan, f64::NAN), Some(&link("nan")));
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(super::format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(super::format_utc(1_684_688_346), "2023-05-21 16:59:06");
        assert_eq!(super::format_utc(951_782_400), "2000-02-29 00:00:00");
    }
}
