//! Experiments and runs: creating the destination run (its tags, its user), its metric
//! points, and finishing it.

use super::*;
use crate::mlflow::http::with_priority;
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
        let (tags, parent) = self.run_tags(&r).await?;
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
        let create = CreateRun {
            experiment_id: exp,
            run_name: Some(r.run_name.clone()),
            start_time: r.start_time,
            tags: own,
            user_id: None,
            // Not the lineage tag: abandoned runs of the same source carry it too.
            reconcile_tag: Some(ATTEMPT.into()),
        };
        self.open_run(r, Start::Create(create), tags, parent, false);
        Ok(())
    }

    /// Opens source run `r` for its writes, done by a task of its own that begins with `start`
    /// (`update`: a complete run brought up to date). `parent`: the parent's stage when the
    /// parent is a run of this import that is not complete (`Some(true)` when the parent tag
    /// is the task's to add).
    fn open_run(
        &mut self,
        r: rec::Run,
        start: Start,
        tags: Vec<KeyValue>,
        parent: ParentWait,
        update: bool,
    ) {
        let first = match &start {
            Start::Create(_) => Stage::Pending,
            Start::Existing { id, artifact_uri } => {
                self.run_ids.insert(r.run_id.clone(), id.clone());
                Stage::Made {
                    id: id.clone(),
                    artifact_uri: artifact_uri.clone(),
                }
            }
        };
        let (stage_tx, stage) = watch::channel(first);
        self.pending.insert(r.run_id.clone(), stage.clone());
        let (ops, rx) = RunOps::new(self.opts.jobs);
        let (parent, parent_tag) = match parent {
            Some((rx, tag)) => (Some(rx), tag),
            None => (None, false),
        };
        let task = RunTask {
            client: self.client.clone(),
            src: r.run_id.clone(),
            start,
            parent,
            parent_tag,
            leases: self.leases.handle(),
            progress: self.opts.progress.clone(),
            replay: self.opts.replay.clone(),
        };
        // Runs' tasks are served in archive order (the reader's own requests go first): the
        // oldest run finishes first and gives its memory back first.
        let order = self.pending.len() as u64;
        let worker = tokio::spawn(with_priority(order, run_task(task, stage_tx, rx)));
        let head = kv(&r.params);
        self.open = Open::Run {
            src: r,
            stage,
            metrics: Vec::new(),
            head,
            head_tags: tags,
            parent_slot: parent_tag,
            ops,
            worker: AbortOnDrop(Some(worker)),
            update,
        };
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
        let (mut tags, parent) = self.run_tags(&r).await?;
        // The parent tag comes from the task (its parent is being made).
        let parent_later = parent.as_ref().is_some_and(|(_, later)| *later);
        let has = |k: &str| current.data.tags.iter().any(|t| t.key == k);
        for t in &current.data.tags {
            let kept = tags.iter().any(|x| x.key == t.key) || (parent_later && t.key == PARENT_RUN);
            let stale_parent = t.key == MISSING_PARENT
                && (parent_later || tags.iter().any(|x| x.key == PARENT_RUN));
            if (self.carried_tag(&t.key) || stale_parent) && !kept {
                self.client.delete_run_tag(&dst, &t.key).await?;
            }
        }
        if let Some(server) = self.source_server.clone().filter(|_| !has(LINEAGE_SERVER)) {
            tags.push(KeyValue::new(LINEAGE_SERVER, server));
        }
        // What the run logged already is not logged again (MLflow refuses a second identical
        // output).
        self.had.insert(
            r.run_id.clone(),
            current.inputs.clone(),
            current.outputs.clone(),
        );
        let start = Start::Existing {
            id: dst,
            artifact_uri: current.info.artifact_uri,
        };
        self.open_run(r, start, tags, parent, true);
        Ok(())
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

    /// The destination tags of source run `r`'s tags: this tool's own left out (their history
    /// kept), `mlflow.*` and provenance tags as asked, the parent pointed at its destination
    /// run, the user as asked, the workspace's own tags kept beside.
    ///
    /// With them, the parent's stage when the parent is a run of this import that is not
    /// complete (the run's task waits for it), and whether the parent tag is left to the task
    /// (the parent's run is not made yet).
    async fn run_tags(&mut self, r: &rec::Run) -> Result<(Vec<KeyValue>, ParentWait)> {
        let mut wait: ParentWait = None;
        let parent_dst = match r.parent_run_id() {
            Some(p) if self.report.runs.contains_key(p) => self.resolve_run(p).await?,
            Some(p) if self.pending.contains_key(p) => {
                let rx = self.pending[p].clone();
                let now = rx.borrow().clone();
                match now {
                    Stage::Complete { winner, .. } => Some(winner),
                    other => {
                        let id = other.id().map(str::to_string);
                        wait = Some((rx, id.is_none()));
                        id
                    }
                }
            }
            Some(p) => self.resolve_run(p).await?,
            None => None,
        };
        let later = wait.as_ref().is_some_and(|(_, later)| *later);
        let mut tag_later = false;
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
                    None if later => tag_later = true,
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
        Ok((tags, wait.map(|(rx, _)| (rx, tag_later))))
    }

    pub(super) async fn chunk(&mut self, c: rec::MetricChunk) -> Result<()> {
        let linked_to = match &c.model_id {
            // (Updating a run, its model may be one an earlier sync copied.)
            Some(src) if self.update => Some((src.clone(), self.resolve_logged_model(src).await?)),
            Some(src) => Some((src.clone(), self.report.logged_models.get(src).cloned())),
            None => None,
        };
        let Open::Run { src, .. } = &self.open else {
            return Ok(());
        };
        if let Some((src_model, None)) = &linked_to {
            // Points linked to a logged model that is not on the destination yet (it follows its
            // source run in the archive): they are logged when it arrives, and the run is marked
            // complete only then.
            let points = crate::transfer::map::metrics(&c, None);
            self.deferred.defer_points(src_model, &src.run_id, points);
            return Ok(());
        }
        let dst_model = linked_to.and_then(|(_, d)| d);
        for point in crate::transfer::map::metrics(&c, dst_model.as_deref()) {
            let Open::Run {
                metrics,
                head,
                head_tags,
                parent_slot,
                ..
            } = &mut self.open
            else {
                return Ok(());
            };
            metrics.push(point);
            // Full requests: the first batch leaves room for the params and tags it carries,
            // the parent tag its task adds included (else the client splits off a request of
            // one metric).
            let room = MAX_BATCH_TOTAL
                - head.len().min(MAX_BATCH_PARAMS)
                - (head_tags.len() + usize::from(*parent_slot)).min(MAX_BATCH_TAGS);
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
            parent_slot,
            ..
        } = &mut self.open
            && !(metrics.is_empty() && head.is_empty() && head_tags.is_empty())
        {
            // The task adds the parent tag to the first batch only.
            *parent_slot = false;
            let op = Op::Batch {
                metrics: std::mem::take(metrics),
                params: std::mem::take(head),
                tags: std::mem::take(head_tags),
            };
            self.run_op(op).await?;
        }
        Ok(())
    }

    /// The end of source run `src` as its task does it: its status, its dataset and model
    /// inputs and its outputs (an output whose logged model is later in the archive waits for
    /// it), then its completion or, brought up to date, its digest.
    pub(super) async fn finish_of(&mut self, src: &rec::Run, update: bool) -> Result<Finish> {
        let (had_in, had_out) = self.had.take(&src.run_id);
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
        let mut outputs = Vec::new();
        for o in &src.model_outputs {
            match self.resolve_logged_model(&o.model_id).await? {
                Some(m)
                    if had_out
                        .model_outputs
                        .iter()
                        .any(|x| x.model_id == m && x.step == o.step) => {}
                Some(m) => outputs.push(ModelOutput {
                    model_id: m,
                    step: o.step,
                }),
                None => self.deferred.defer_output(&o.model_id, &src.run_id, o.step),
            }
        }
        let deleted = src.lifecycle_stage == "deleted";
        let then = if update {
            Then::Update {
                digest: crate::transfer::sync::run_digest(src),
                deleted,
            }
        } else {
            let notebook_dir = self.opts.dst_notebook_dir.clone().filter(|_| {
                self.client.is_databricks()
                    && src
                        .tags
                        .iter()
                        .any(|t| t.key == NOTEBOOK_PATH && !t.value.is_empty())
            });
            Then::Complete {
                experiment: self.dst_experiment(&src.experiment_id, "run")?,
                deleted,
                waits: self.deferred.waits(&src.run_id),
                notebook_dir,
            }
        };
        Ok(Finish {
            status: src.status.clone(),
            end_time: src.end_time,
            // A new run got its name when it was made.
            run_name: Some(src.run_name.clone()).filter(|n| update && !n.is_empty()),
            datasets,
            models,
            outputs,
            then,
        })
    }

    /// Takes the outcome of source run `src`'s task into the report; a run its task left
    /// waiting is parked (or completed now, when what it waited for came meanwhile).
    pub(super) async fn ended(&mut self, src: rec::Run, o: Outcome) -> Result<()> {
        self.report.metric_points += o.written.metric_points;
        self.report.artifacts += o.written.artifacts;
        self.report.artifact_bytes += o.written.artifact_bytes;
        match o.notebook {
            Some(Ok(())) => self.report.notebooks_placed += 1,
            Some(Err(e)) => self
                .report
                .notebook_failures
                .push(format!("run {} (now {}): {e}", src.run_id, o.dst)),
            None => {}
        }
        let dst = o.dst;
        self.run_ids.insert(src.run_id.clone(), dst.clone());
        self.run_roots.insert(dst.clone(), o.artifact_uri);
        if matches!(o.end, End::Updated) {
            self.report.runs.insert(src.run_id.clone(), dst);
            self.report.runs_updated += 1;
            tick(&self.opts.progress, Counter::Runs, 1);
            return Ok(());
        }
        let exp = self.dst_experiment(&src.experiment_id, "run")?;
        self.touched.insert(exp.clone());
        if let End::Complete { winner } = o.end {
            self.completed(&src.run_id, &dst, &winner);
            return Ok(());
        }
        // A run completes only after its parent: were the parent redone by a later import, a
        // complete child would point at the abandoned one.
        if let Some(parent) = src.parent_run_id()
            && !self.report.runs.contains_key(parent)
            && self.run_ids.contains_key(parent)
        {
            self.deferred.defer_on_parent(parent, &src.run_id);
        }
        let deleted = src.lifecycle_stage == "deleted";
        if self.deferred.waits(&src.run_id) {
            let parked = links::Parked {
                experiment: exp,
                dst,
                deleted,
            };
            self.deferred.park(&src.run_id, parked);
            Ok(())
        } else {
            self.complete_run(&exp, &src.run_id, &dst, deleted).await
        }
    }
}

/// A run's parent being written by this import: its stage, and whether the parent tag is left
/// to the run's task.
pub(super) type ParentWait = Option<(watch::Receiver<Stage>, bool)>;

/// What the runs a sync brings up to date had logged already (inputs and outputs), by
/// source run, until their links are logged.
#[derive(Default)]
pub(super) struct Had(HashMap<String, (RunInputs, RunOutputs)>);

impl Had {
    pub(super) fn insert(&mut self, run: String, inputs: RunInputs, outputs: RunOutputs) {
        self.0.insert(run, (inputs, outputs));
    }

    /// What source run `run` had (nothing, for a new run).
    pub(super) fn take(&mut self, run: &str) -> (RunInputs, RunOutputs) {
        self.0.remove(run).unwrap_or_default()
    }
}
