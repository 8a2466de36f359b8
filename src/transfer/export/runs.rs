//! The export's ordering state (parents and sources first, runs held until what they depend on
//! is written) and the run unit's task (metadata, metric histories page by page, artifacts,
//! notebooks).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use futures_util::TryStreamExt;

use super::ExportOptions;
use super::artifacts::copy_artifacts;
use super::logged_models::{Links, PointKey, link_page, links_of};
use super::metadata::metadata_tags;
use super::notebooks::{NotebookJob, NotebookLog};
use super::permissions_unread;
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::ArtifactRoot;
use crate::mlflow::types::{Experiment, LoggedModel, Run};
use crate::transfer::archive_sink::Cmd;
use crate::transfer::map;
use crate::transfer::ordered::{Scheduler, UnitTx};
use crate::transfer::source::Source;

/// What an export has written and what waits: the runs and logged models it holds, those
/// written, runs held for a dependency, logged models by source run.
pub(super) struct State<'a, S> {
    pub(super) client: &'a S,
    opts: &'a ExportOptions,
    /// What becomes of the notebooks asked for.
    notebooks: Arc<NotebookLog>,
    pub(super) written: HashSet<String>,
    /// Runs waiting for a dependency (`run:<id>` or `lm:<id>`), by that dependency.
    pub(super) deferred: BTreeMap<String, Vec<Run>>,
    pub(super) models_by_source: HashMap<String, Vec<LoggedModel>>,
    in_export: HashSet<String>,
    /// MLflow 3 links of metric points to logged models, by run (the history endpoint does not
    /// return them; the logged models' metrics do).
    links: HashMap<String, HashMap<PointKey, Links>>,
    /// Experiment names by id, for the metadata tags.
    experiment_names: HashMap<String, String>,
}

impl<'a, S: Source> State<'a, S> {
    /// The state of an export of `in_export`: the logged models by source run (and those without
    /// one), whose metrics also give the links of runs' points to them.
    pub(super) fn new(
        client: &'a S,
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
    pub(super) async fn write_experiment(
        &mut self,
        sink: &mut Scheduler,
        e: &Experiment,
    ) -> Result<()> {
        self.experiment_names
            .insert(e.experiment_id.clone(), e.name.clone());
        let mut record = map::experiment(e);
        record.workspace = self.opts.record_workspace.clone().unwrap_or_default();
        let permissions = if self.opts.permissions {
            self.client
                .experiment_permissions(&e.experiment_id)
                .await
                .map_err(|err| {
                    permissions_unread(err, &format!("experiment {} {:?}", e.experiment_id, e.name))
                })?
        } else {
            None
        };
        match permissions.filter(|p| !p.acl.is_empty() || !p.grants.is_empty()) {
            Some(p) => {
                sink.send(Cmd::BeginExperiment(record)).await?;
                sink.send(Cmd::Permissions(map::permissions(&p))).await?;
                sink.send(Cmd::EndUnit).await
            }
            None => sink.send(Cmd::Experiment(record)).await,
        }
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
    pub(super) async fn offer(&mut self, sink: &mut Scheduler, first: Run) -> Result<()> {
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
    pub(super) async fn write_run(&mut self, sink: &mut Scheduler, r: &Run) -> Result<()> {
        let id = r.info.run_id.clone();
        let mut record = map::run(r);
        if self.opts.metadata_tags {
            let experiment = self.experiment_names.get(&r.info.experiment_id);
            record
                .tags
                .extend(metadata_tags(r, experiment, self.client.server()));
        }
        let mut keys: Vec<String> = r.data.metrics.iter().map(|m| m.key.clone()).collect();
        keys.sort_unstable();
        keys.dedup();
        // A run a sync brings up to date: only the histories whose latest value moved.
        if let Some(send) = self.opts.base.as_ref().and_then(|b| b.keys_to_send(r)) {
            keys.retain(|k| send.contains(k));
        }
        let notebook = NotebookJob::of_run(r, &self.opts.notebook_formats, &self.notebooks);
        let job = RunJob {
            notebook,
            client: self.client.clone(),
            history_page: self.opts.history_page,
            links: self.links.remove(&id).unwrap_or_default(),
            record,
            keys,
            artifact_uri: r.info.artifact_uri.clone(),
            base: self.opts.base.clone(),
        };
        sink.spawn(|unit| job.produce(unit)).await
    }
}

/// What a run unit's task needs: the run's record, its metric keys and artifact root.
struct RunJob<S> {
    notebook: Option<NotebookJob>,
    client: S,
    history_page: Option<u32>,
    links: HashMap<PointKey, Links>,
    record: rec::Run,
    keys: Vec<String>,
    artifact_uri: String,
    /// What the destination holds (a sync).
    base: Option<Arc<crate::transfer::sync::Base>>,
}

impl<S: Source> RunJob<S> {
    async fn produce(self, mut unit: UnitTx) -> Result<()> {
        let id = self.record.run_id.clone();
        // A root this client cannot read fails the run before anything of it is written.
        let root = match self.artifact_uri.as_str() {
            "" => None,
            uri => Some(
                ArtifactRoot::parse(uri).map_err(|e| Error::Config(format!("run {id}: {e}")))?,
            ),
        };
        unit.send(Cmd::BeginRun(self.record)).await?;
        for key in &self.keys {
            let mut pages = std::pin::pin!(self.client.metric_history(&id, key, self.history_page));
            while let Some(mut page) = pages.try_next().await? {
                link_page(&self.links, &mut page);
                for chunk in map::metric_chunks(key, &page) {
                    unit.send(Cmd::Chunk(chunk)).await?;
                }
            }
        }
        let mut present = HashSet::new();
        if let Some(root) = &root {
            // A run a sync brings up to date: the files the destination has are not read.
            let have = match &self.base {
                Some(b) => b.dst_files(&id).await?,
                None => HashMap::new(),
            };
            present = copy_artifacts(&self.client, root, &mut unit, &have).await?;
        }
        if let Some(nb) = &self.notebook {
            nb.write(&self.client, &id, &present, &unit).await?;
        }
        unit.send(Cmd::EndUnit).await
    }
}
