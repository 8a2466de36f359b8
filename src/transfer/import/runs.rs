//! Experiments and runs: creating the destination run (its tags, its user), its metric
//! points, and finishing it.

use super::*;
use crate::mlflow::types::{RunInputs, RunOutputs};
use crate::transfer::sync::DIGEST;

/// Who imports: the basic-auth user name when there is one, else the local user (what MLflow's
/// client records as `mlflow.user`: `LOGNAME`, `USER`, `LNAME`, `USERNAME`, else the account of
/// this process).
pub fn importing_user(client: &impl Destination) -> String {
    if let Some(user) = client.user() {
        return user;
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

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_run(&mut self, r: rec::Run) -> Result<()> {
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
            if self.update {
                return self.begin_update(r, done).await;
            }
            if r.lifecycle_stage == "deleted" && !done.deleted {
                // Completed, but stopped before its deletion: finished now.
                self.client.delete_run(&done.run_id).await?;
            }
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
        let tags = self.run_tags(&r).await?;
        let digest = crate::transfer::sync::run_digest(&r);
        let mut own = vec![
            KeyValue::new(LINEAGE_RUN, r.run_id.clone()),
            KeyValue::new(STATE, IN_PROGRESS),
            KeyValue::new(ATTEMPT, attempt_id()),
            KeyValue::new(LEASE, self.leases.fresh()),
            KeyValue::new(DIGEST, digest),
        ];
        if let Some(server) = &self.source_server {
            own.push(KeyValue::new(LINEAGE_SERVER, server.clone()));
        }
        let created = self
            .client
            .create_run(&CreateRun {
                experiment_id: exp,
                run_name: Some(r.run_name.clone()),
                start_time: r.start_time,
                tags: own,
                user_id: None,
                // Not the lineage tag: abandoned runs of the same source carry it too.
                reconcile_tag: Some(ATTEMPT.into()),
            })
            .await?;
        let dst = created.info.run_id.clone();
        self.leases.hold(&dst);
        self.open_run(r, dst, &created.info.artifact_uri, tags, false)
    }

    /// Opens run `dst` for the writes of source run `r` (`update`: a complete run brought up
    /// to date).
    fn open_run(
        &mut self,
        r: rec::Run,
        dst: String,
        artifact_uri: &str,
        tags: Vec<KeyValue>,
        update: bool,
    ) -> Result<()> {
        let root = ArtifactRoot::parse(artifact_uri)
            .map_err(|e| Error::Config(format!("run {}: the destination run's {e}", r.run_id)))?;
        self.run_ids.insert(r.run_id.clone(), dst.clone());
        let (ops, rx) = RunOps::new(self.opts.jobs);
        let worker = tokio::spawn(run_worker(
            self.client.clone(),
            dst.clone(),
            root.clone(),
            rx,
            self.opts.progress.clone(),
            self.opts.replay.clone(),
        ));
        let head = kv(&r.params);
        self.open = Open::Run {
            src: r,
            dst,
            root,
            metrics: Vec::new(),
            head,
            head_tags: tags,
            ops,
            worker: AbortOnDrop(Some(worker)),
            update,
        };
        Ok(())
    }

    /// Brings `done`, the complete destination run of source run `r`, up to date with the
    /// archive ([`ImportOptions::update`]): its digest tag is emptied first (so a kill leaves it
    /// to be updated again), tags the source no longer has are deleted, a deleted run is
    /// restored to take the writes; the rest is the writes of a new run (the server keeps one
    /// copy of a metric point logged twice, and a file uploaded again replaces itself).
    async fn begin_update(&mut self, r: rec::Run, done: Prior) -> Result<()> {
        let current = self.client.get_run(&done.run_id).await?;
        let dst = done.run_id.clone();
        // (A deleted run takes no writes, its tags included.)
        if current.info.lifecycle_stage == "deleted" {
            self.client.restore_run(&dst).await?;
        }
        self.client.set_run_tag(&dst, DIGEST, "").await?;
        let mut tags = self.run_tags(&r).await?;
        let has = |k: &str| current.data.tags.iter().any(|t| t.key == k);
        for t in &current.data.tags {
            let stale_parent = t.key == MISSING_PARENT && tags.iter().any(|x| x.key == PARENT_RUN);
            if (self.carried_tag(&t.key) || stale_parent) && !tags.iter().any(|x| x.key == t.key) {
                self.client.delete_run_tag(&dst, &t.key).await?;
            }
        }
        if let Some(server) = self.source_server.clone().filter(|_| !has(LINEAGE_SERVER)) {
            tags.push(KeyValue::new(LINEAGE_SERVER, server));
        }
        // What the run logged already is not logged again (MLflow refuses a second identical
        // output).
        self.had
            .insert(dst.clone(), current.inputs.clone(), current.outputs.clone());
        self.open_run(r, dst, &current.info.artifact_uri, tags, true)
    }

    /// Whether a destination run's tag `key` is one an import writes from the source's tags
    /// (so one the source no longer has is deleted by an update): not this tool's own tags,
    /// not the user and name tags the import sets itself, not those the destination keeps.
    fn carried_tag(&self, key: &str) -> bool {
        if key.starts_with(OWN_PREFIX) && !key.starts_with(ORIGIN_PREFIX) {
            return false;
        }
        if matches!(key, "mlflow.user" | "mlflow.runName") {
            return false;
        }
        if self.client.is_databricks()
            && (super::SERVER_RUN_TAGS.contains(&key) || NOTEBOOK_TAGS.contains(&key))
        {
            return false;
        }
        if key.starts_with("mlflow.") && !self.opts.import_mlflow_tags {
            return false;
        }
        let metadata = key.starts_with("mlflow_tools.metadata.")
            || key.starts_with("mlflow_export_import.metadata.");
        !metadata || self.opts.import_metadata_tags
    }

    /// Finishes a run brought up to date: inputs and outputs, its lifecycle as the source's,
    /// and the new digest (the sign that it is up to date).
    pub(super) async fn finish_update(&mut self, src: rec::Run, dst: String) -> Result<()> {
        self.log_run_links(&src, &dst).await?;
        let digest = crate::transfer::sync::run_digest(&src);
        self.client.set_run_tag(&dst, DIGEST, &digest).await?;
        // Last: a kill before it leaves an active run that a sync compares as such.
        if src.lifecycle_stage == "deleted" {
            self.client.delete_run(&dst).await?;
        }
        self.report.runs.insert(src.run_id.clone(), dst);
        self.report.runs_updated += 1;
        tick(&self.opts.progress, Counter::Runs, 1);
        Ok(())
    }

    /// The destination tags of source run `r`'s tags: this tool's own left out (their history
    /// kept), `mlflow.*` and provenance tags as asked, the parent pointed at its destination
    /// run, the user as asked, the workspace's own tags kept beside.
    async fn run_tags(&mut self, r: &rec::Run) -> Result<Vec<KeyValue>> {
        let parent_dst = match r.parent_run_id() {
            Some(p) => self.resolve_run(p).await?,
            None => None,
        };
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
            let databricks = self.client.is_databricks();
            let notebook_moves = databricks
                && self.opts.dst_notebook_dir.is_some()
                && NOTEBOOK_TAGS.contains(&t.key.as_str());
            if (databricks && super::SERVER_RUN_TAGS.contains(&t.key.as_str())) || notebook_moves {
                // The workspace's own (or about to point at the imported notebook): the source's
                // value is kept beside.
                tags.push(KeyValue::new(
                    format!("{SOURCE_PREFIX}{}", t.key),
                    t.value.clone(),
                ));
                continue;
            }
            match t.key.as_str() {
                "mlflow.user" if !self.opts.use_src_user_id => continue,
                "mlflow.runName" => continue, // set through run_name
                PARENT_RUN => match &parent_dst {
                    Some(dst) => tags.push(KeyValue::new(PARENT_RUN, dst.clone())),
                    None => {
                        self.report.missing_parents.push(r.run_id.clone());
                        tags.push(KeyValue::new(MISSING_PARENT, t.value.clone()));
                    }
                },
                _ => tags.push(KeyValue::new(t.key.clone(), t.value.clone())),
            }
        }
        if !self.opts.use_src_user_id && !self.client.is_databricks() {
            tags.push(KeyValue::new("mlflow.user", self.user.clone()));
        }
        Ok(tags)
    }

    pub(super) async fn chunk(&mut self, c: rec::MetricChunk) -> Result<()> {
        let linked_to = match &c.model_id {
            // (Updating a run, its model may be one an earlier sync copied.)
            Some(src) if self.update => Some((src.clone(), self.resolve_logged_model(src).await?)),
            Some(src) => Some((src.clone(), self.report.logged_models.get(src).cloned())),
            None => None,
        };
        let Open::Run { dst, .. } = &self.open else {
            return Ok(());
        };
        if let Some((src_model, None)) = &linked_to {
            // Points linked to a logged model that is not on the destination yet (it follows its
            // source run in the archive): they are logged when it arrives, and the run is marked
            // complete only then.
            let points = crate::transfer::map::metrics(&c, None);
            self.deferred.defer_points(src_model, dst, points);
            return Ok(());
        }
        let dst_model = linked_to.and_then(|(_, d)| d);
        for point in crate::transfer::map::metrics(&c, dst_model.as_deref()) {
            let Open::Run {
                metrics,
                head,
                head_tags,
                ..
            } = &mut self.open
            else {
                return Ok(());
            };
            metrics.push(point);
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
    pub(super) async fn flush_metrics(&mut self) -> Result<()> {
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

    /// Logs a run's dataset and model inputs and its outputs (an output whose logged model is
    /// later in the archive waits for it).
    async fn log_run_links(&mut self, src: &rec::Run, dst: &str) -> Result<()> {
        let (had_in, had_out) = self.had.take(dst);
        for d in &src.dataset_inputs {
            if let Some(id) = d.evaluation_dataset_id() {
                self.resolve_dataset(&id, &d.name).await?;
            }
        }
        let datasets: Vec<DatasetInput> = src
            .dataset_inputs
            .iter()
            .map(|d| {
                let mut input = crate::transfer::map::dataset_input(d);
                // An evaluation dataset imported with the archive: the destination's.
                if let Some(dst) = d
                    .evaluation_dataset_id()
                    .and_then(|id| self.report.datasets.get(&id))
                    && let Ok(mut v) =
                        serde_json::from_str::<serde_json::Value>(&input.dataset.source)
                    && let Some(o) = v.as_object_mut()
                {
                    o.insert("dataset_id".into(), dst.clone().into());
                    input.dataset.source = v.to_string();
                }
                input
            })
            .filter(|d| {
                !had_in.dataset_inputs.iter().any(|x| {
                    x.dataset.name == d.dataset.name && x.dataset.digest == d.dataset.digest
                })
            })
            .collect();
        let mut models: Vec<ModelInput> = Vec::new();
        for m in &src.model_inputs {
            if let Some(model_id) = self.resolve_logged_model(m).await?
                && !had_in.model_inputs.iter().any(|x| x.model_id == model_id)
            {
                models.push(ModelInput { model_id });
            }
        }
        if !datasets.is_empty() || !models.is_empty() {
            self.client.log_inputs(dst, &datasets, &models).await?;
        }
        for o in &src.model_outputs {
            match self.resolve_logged_model(&o.model_id).await? {
                Some(m)
                    if had_out
                        .model_outputs
                        .iter()
                        .any(|x| x.model_id == m && x.step == o.step) => {}
                Some(m) => {
                    self.client
                        .log_outputs(
                            dst,
                            &[ModelOutput {
                                model_id: m,
                                step: o.step,
                            }],
                        )
                        .await?
                }
                None => self.deferred.defer_output(&o.model_id, dst, o.step),
            }
        }
        Ok(())
    }

    pub(super) async fn finish_run(&mut self, src: rec::Run, dst: String) -> Result<()> {
        self.log_run_links(&src, &dst).await?;
        if let Some(dir) = &self.opts.dst_notebook_dir
            && self.client.is_databricks()
            && src
                .tags
                .iter()
                .any(|t| t.key == NOTEBOOK_PATH && !t.value.is_empty())
        {
            let dir = if self.opts.notebook_dir_add_run_id {
                format!("{}/{dst}", dir.trim_end_matches('/'))
            } else {
                dir.clone()
            };
            let root = self.client.get_run(&dst).await?.info.artifact_uri;
            match self.client.place_notebook(&dst, &root, &dir).await {
                Ok(_) => self.report.notebooks_placed += 1,
                Err(e) => self
                    .report
                    .notebook_failures
                    .push(format!("run {} (now {dst}): {e}", src.run_id)),
            }
        }
        // (Its status and end time were set by its worker, after its last write.)
        let exp = self.dst_experiment(&src.experiment_id, "run")?;
        self.touched.insert(exp.clone());
        let deleted = src.lifecycle_stage == "deleted";
        // A run completes only after its parent: were the parent redone by a later import, a
        // complete child would point at the abandoned one.
        if let Some(parent) = src.parent_run_id()
            && !self.report.runs.contains_key(parent)
            && let Some(parent_dst) = self.run_ids.get(parent)
        {
            self.deferred.defer_on_parent(parent_dst, &dst);
        }
        if self.deferred.waits(&dst) {
            let parked = links::Parked {
                experiment: exp,
                src: src.run_id,
                deleted,
            };
            self.deferred.park(&dst, parked);
        } else {
            self.complete_run(&exp, &src.run_id, &dst, deleted).await?;
        }
        Ok(())
    }
}

/// What the runs a sync brings up to date had logged already (inputs and outputs), by
/// destination run, until their links are logged.
#[derive(Default)]
pub(super) struct Had(HashMap<String, (RunInputs, RunOutputs)>);

impl Had {
    pub(super) fn insert(&mut self, run: String, inputs: RunInputs, outputs: RunOutputs) {
        self.0.insert(run, (inputs, outputs));
    }

    /// What `run` had (nothing, for a new run).
    pub(super) fn take(&mut self, run: &str) -> (RunInputs, RunOutputs) {
        self.0.remove(run).unwrap_or_default()
    }
}
