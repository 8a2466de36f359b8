//! The resume protocol: what earlier (or concurrent) imports left of a source run, giving up
//! half-done runs, and settling on one complete run per source run.

use super::*;

/// How many times two imports completing one source run at once step back before giving up.
pub(super) const SETTLE_ROUNDS: u32 = 20;

/// What an earlier import left of one source run in a destination experiment.
#[derive(Debug, Clone)]
pub(super) struct Prior {
    pub(super) run_id: String,
    pub(super) complete: bool,
    pub(super) deleted: bool,
    /// Marked [`ABANDONED`] (a kill may have come before its deletion).
    pub(super) marked: bool,
    /// Its lease is held by an import that is still writing it ([`lease`]).
    pub(super) held: bool,
}

impl Prior {
    pub(super) fn of(r: &crate::mlflow::types::Run) -> Self {
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
    pub(super) fn half_done(&self) -> bool {
        !self.complete && !self.deleted
    }

    /// Half done and no import is writing it any more (its lease is over), or marked abandoned:
    /// to be given up. (A half-done run under a live lease is another import's work.)
    pub(super) fn left_over(&self) -> bool {
        self.half_done() && (self.marked || !self.held)
    }
}

/// Every run of a destination experiment that carries the lineage tag, by source run id: one
/// search (a page per 1000 runs) instead of one per run.
pub(super) async fn lineage_index(
    client: &impl Destination,
    exp: &str,
) -> Result<HashMap<String, Vec<Prior>>> {
    let mut index: HashMap<String, Vec<Prior>> = HashMap::new();
    for r in client.runs_tagged(exp, LINEAGE_RUN, None).await? {
        if let Some(t) = r.data.tags.iter().find(|t| t.key == LINEAGE_RUN) {
            index
                .entry(t.value.clone())
                .or_default()
                .push(Prior::of(&r));
        }
    }
    Ok(index)
}

impl<D: Destination> Importer<'_, D> {
    /// The runs earlier imports left of source run `src` in destination experiment `exp`.
    pub(super) async fn priors(&mut self, exp: &str, src: &str) -> Result<Vec<Prior>> {
        self.load_index(exp).await?;
        Ok(self
            .priors
            .get_mut(exp)
            .and_then(|i| i.remove(src))
            .unwrap_or_default())
    }

    /// Loads the lineage index of destination experiment `exp` unless it is loaded.
    async fn load_index(&mut self, exp: &str) -> Result<()> {
        if self.priors.contains_key(exp) {
            return Ok(());
        }
        let index = lineage_index(&self.client, exp).await?;
        for (src, priors) in &index {
            if let Some(done) = priors.iter().find(|p| p.complete) {
                self.complete_runs
                    .entry(src.clone())
                    .or_insert_with(|| done.run_id.clone());
            }
        }
        self.priors.insert(exp.to_string(), index);
        Ok(())
    }

    /// The destination run that stands for source run `src`: the one this import made or
    /// found, else, when bringing runs up to date (a sync), a complete run of an earlier import
    /// in one of this import's experiments (a run the sync left as it was: a parent, a
    /// version's run); `None` when there is none.
    pub(super) async fn resolve_run(&mut self, src: &str) -> Result<Option<String>> {
        if let Some(dst) = self.run_ids.get(src) {
            return Ok(Some(dst.clone()));
        }
        if !self.update {
            // A plain import points only at runs of its archive (and a parent not in it is
            // named by a tag), as it always has.
            return Ok(None);
        }
        if let Some(dst) = self.complete_runs.get(src) {
            return Ok(Some(dst.clone()));
        }
        let mut experiments: Vec<String> = self.report.experiments.values().cloned().collect();
        experiments.sort();
        experiments.dedup();
        for exp in experiments {
            self.load_index(&exp).await?;
            if let Some(dst) = self.complete_runs.get(src) {
                return Ok(Some(dst.clone()));
            }
        }
        Ok(None)
    }

    /// The destination logged model that stands for source logged model `src`: the one this
    /// import made or found, else a complete one of an earlier import in one of this import's
    /// experiments; `None` when there is none.
    pub(super) async fn resolve_logged_model(&mut self, src: &str) -> Result<Option<String>> {
        if let Some(dst) = self.report.logged_models.get(src) {
            return Ok(Some(dst.clone()));
        }
        if !self.update || self.unresolved_models.contains(src) {
            return Ok(None);
        }
        let mut experiments: Vec<String> = self.report.experiments.values().cloned().collect();
        experiments.sort();
        experiments.dedup();
        for exp in experiments {
            let found = self
                .client
                .logged_models_tagged(&exp, LINEAGE_MODEL, src)
                .await?;
            if let Some(m) = found.into_iter().find(|m| {
                m.info
                    .tags
                    .iter()
                    .any(|t| t.key == STATE && t.value == COMPLETE)
            }) {
                self.model_roots
                    .insert(src.to_string(), m.info.artifact_uri.clone());
                self.report
                    .logged_models
                    .insert(src.to_string(), m.info.model_id.clone());
                return Ok(Some(m.info.model_id));
            }
        }
        self.unresolved_models.insert(src.to_string());
        Ok(None)
    }

    /// A killed import's create that reached the server only after this import looked for its
    /// lineage left a second, half-done run beside one this import completed: abandoned now.
    /// (One search per experiment, at the end; a kill before it leaves them to the next import,
    /// which abandons half-done runs as it meets them.)
    pub(super) async fn sweep(&mut self) -> Result<()> {
        for exp in std::mem::take(&mut self.touched) {
            for (src, priors) in lineage_index(&self.client, &exp).await? {
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

    /// Marks a half-imported run [`ABANDONED`] and deletes it (each step is safe to repeat
    /// after a kill: a marked run that is still active is deleted by the next import).
    pub(super) async fn abandon(&self, old: &Prior) -> Result<()> {
        abandon(&self.client, old).await
    }

    /// Marks a run that waited (for a logged model, or for its parent) complete, then deletes it
    /// if it was deleted at the source; only now is it in the report. When a concurrent import
    /// completed the same source run first, this run is given up and the other stands for the
    /// source run. (Runs that wait for nothing are completed by their own tasks:
    /// [`run_task`].)
    pub(super) async fn complete_run(
        &mut self,
        exp: &str,
        src: &str,
        dst: &str,
        deleted: bool,
    ) -> Result<()> {
        let winner = complete(&self.client, exp, src, dst, deleted).await?;
        self.leases.release(dst);
        self.completed(src, dst, &winner);
        // Its children that waited for it, now pointing at the run that stands for it.
        for (child, p) in self.deferred.parent_done(src) {
            if winner != dst {
                self.client.set_run_tag(&p.dst, PARENT_RUN, &winner).await?;
            }
            Box::pin(self.complete_run(&p.experiment, &child, &p.dst, p.deleted)).await?;
        }
        Ok(())
    }

    /// Counts source run `src` complete, `winner` standing for it (`dst` when this import's
    /// run won).
    pub(super) fn completed(&mut self, src: &str, dst: &str, winner: &str) {
        self.run_ids.insert(src.to_string(), winner.to_string());
        self.report.runs.insert(src.to_string(), winner.to_string());
        if winner == dst {
            self.report.runs_imported += 1;
        } else {
            self.report.runs_skipped += 1;
        }
        tick(&self.opts.progress, Counter::Runs, 1);
    }
}

/// Marks a half-imported run [`ABANDONED`] and deletes it (each step is safe to repeat after a
/// kill: a marked run that is still active is deleted by the next import).
pub(super) async fn abandon(client: &impl Destination, old: &Prior) -> Result<()> {
    if old.deleted {
        return Ok(());
    }
    let id = &old.run_id;
    if !old.marked {
        client.set_run_tag(id, ABANDONED, "true").await?;
    }
    client.delete_run(id).await
}

/// Marks run `dst` (of source run `src`, in destination experiment `exp`) complete and deletes
/// it if it was `deleted` at the source; returns the run that stands for the source run: `dst`,
/// or a concurrent import's, in which case `dst` is given up.
pub(super) async fn complete(
    client: &impl Destination,
    exp: &str,
    src: &str,
    dst: &str,
    deleted: bool,
) -> Result<String> {
    let winner = settle(client, exp, src, dst).await?;
    if winner != dst {
        let own = Prior {
            run_id: dst.to_string(),
            complete: false,
            deleted: false,
            marked: false,
            held: true,
        };
        abandon(client, &own).await?;
    } else if deleted {
        client.delete_run(dst).await?;
    }
    Ok(winner)
}

/// Marks `dst` complete unless another run of the same source is (a concurrent import's);
/// returns the run that stands for the source run. One run wins whatever the timing: a run
/// stays complete only if no other was complete when it looked after marking itself, and when
/// two marked themselves at once, both step back and try again after a random wait.
pub(super) async fn settle(
    client: &impl Destination,
    exp: &str,
    src: &str,
    dst: &str,
) -> Result<String> {
    let others = async || -> Result<Vec<String>> {
        let mut ids: Vec<String> = client
            .runs_tagged(exp, LINEAGE_RUN, Some(src))
            .await?
            .iter()
            .filter(|r| r.info.run_id != dst && is_complete(r))
            .map(|r| r.info.run_id.clone())
            .collect();
        ids.sort();
        Ok(ids)
    };
    for round in 0..SETTLE_ROUNDS {
        client.set_run_tag(dst, STATE, COMPLETE).await?;
        if others().await?.is_empty() {
            return Ok(dst.to_string());
        }
        client.set_run_tag(dst, STATE, IN_PROGRESS).await?;
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
    Err(Error::Ambiguous {
        call: format!("completing run {src}"),
        server: client.server().to_string(),
        cause: format!(
            "another import kept completing the same run at the same moment ({SETTLE_ROUNDS} tries); run the import again"
        ),
    })
}
