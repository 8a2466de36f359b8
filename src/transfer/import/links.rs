//! Metric points linked to logged models that arrive after their run.

use super::*;

impl<D: Destination> Importer<'_, D> {
    /// Logs the points linked to a logged model now on the destination (`dst_model`, or none when
    /// it never came), then completes the runs that waited only for them.
    pub(super) async fn release_links(
        &mut self,
        src_model: &str,
        dst_model: Option<&str>,
    ) -> Result<()> {
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
