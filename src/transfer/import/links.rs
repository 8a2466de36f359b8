//! What waits for a logged model that comes later in the archive than the runs that name it:
//! metric points linked to it and run outputs naming it; and the runs finished but for those, or
//! for their parent run's completion. A run is marked complete only once nothing of it waits, so
//! an import stopped before the model arrived redoes the run rather than leaving it without its
//! links, and a complete run's parent is always complete (never redone by a later import).

use std::collections::HashSet;

use super::*;

/// A run finished but for what waits for logged models (runs are named by their source ids
/// here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Parked {
    /// Its destination experiment.
    pub(super) experiment: String,
    /// Its destination run id.
    pub(super) dst: String,
    /// Deleted at the source (deleted once complete).
    pub(super) deleted: bool,
}

/// What one logged model's arrival releases.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Released {
    /// Points to log, by source run (their model id not set yet).
    pub(super) points: Vec<(String, Vec<Metric>)>,
    /// Outputs to log: (source run, step).
    pub(super) outputs: Vec<(String, i64)>,
    /// Runs that now wait for nothing: to complete once the points and outputs are written.
    pub(super) ready: Vec<(String, Parked)>,
}

/// What a run waits for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Awaited {
    /// A source logged model.
    Model(String),
    /// The completion of a run (its parent), by source id.
    Run(String),
}

/// The bookkeeping of deferred points and outputs, by source logged model.
#[derive(Debug, Default)]
pub(super) struct Deferred {
    points: HashMap<String, Vec<(String, Metric)>>,
    outputs: HashMap<String, Vec<(String, i64)>>,
    /// For each run (source id), what it waits for.
    waits: HashMap<String, HashSet<Awaited>>,
    parked: HashMap<String, Parked>,
}

impl Deferred {
    /// Holds `points` of run `run` (source id) until logged model `model` arrives.
    pub(super) fn defer_points(
        &mut self,
        model: &str,
        run: &str,
        points: impl IntoIterator<Item = Metric>,
    ) {
        let list = self.points.entry(model.to_string()).or_default();
        list.extend(points.into_iter().map(|p| (run.to_string(), p)));
        self.wait(run, Awaited::Model(model.to_string()));
    }

    fn wait(&mut self, run: &str, on: Awaited) {
        self.waits.entry(run.to_string()).or_default().insert(on);
    }

    /// Makes run `run` wait for the completion of run `parent` (both source ids).
    pub(super) fn defer_on_parent(&mut self, parent: &str, run: &str) {
        self.wait(run, Awaited::Run(parent.to_string()));
    }

    /// Run `parent` is complete: the parked runs that then wait for nothing.
    pub(super) fn parent_done(&mut self, parent: &str) -> Vec<(String, Parked)> {
        let runs: Vec<String> = self
            .waits
            .iter()
            .filter(|(_, on)| on.contains(&Awaited::Run(parent.to_string())))
            .map(|(r, _)| r.clone())
            .collect();
        self.release(&runs, &Awaited::Run(parent.to_string()))
    }

    /// Takes `on` off the waits of `runs`; returns the parked ones that wait for nothing now.
    fn release(&mut self, runs: &[String], on: &Awaited) -> Vec<(String, Parked)> {
        let mut ready = Vec::new();
        for run in runs {
            if let Some(waits) = self.waits.get_mut(run) {
                waits.remove(on);
                if waits.is_empty() {
                    self.waits.remove(run);
                    if let Some(p) = self.parked.remove(run) {
                        ready.push((run.clone(), p));
                    }
                }
            }
        }
        ready
    }

    /// Holds run `run`'s output naming `model` (at `step`) until the model arrives.
    pub(super) fn defer_output(&mut self, model: &str, run: &str, step: i64) {
        self.outputs
            .entry(model.to_string())
            .or_default()
            .push((run.to_string(), step));
        self.wait(run, Awaited::Model(model.to_string()));
    }

    /// Whether anything of run `run` waits.
    pub(super) fn waits(&self, run: &str) -> bool {
        self.waits.get(run).is_some_and(|m| !m.is_empty())
    }

    /// Parks a finished run that still waits.
    pub(super) fn park(&mut self, run: &str, parked: Parked) {
        self.parked.insert(run.to_string(), parked);
    }

    /// Everything waiting for `model`, and the parked runs that then wait for nothing.
    pub(super) fn take(&mut self, model: &str) -> Released {
        let mut by_run: Vec<(String, Vec<Metric>)> = Vec::new();
        for (run, p) in self.points.remove(model).unwrap_or_default() {
            match by_run.iter_mut().find(|(r, _)| *r == run) {
                Some((_, list)) => list.push(p),
                None => by_run.push((run, vec![p])),
            }
        }
        let outputs = self.outputs.remove(model).unwrap_or_default();
        let mut touched: Vec<String> = by_run
            .iter()
            .map(|(r, _)| r.clone())
            .chain(outputs.iter().map(|(r, _)| r.clone()))
            .collect();
        touched.dedup();
        let ready = self.release(&touched, &Awaited::Model(model.to_string()));
        Released {
            points: by_run,
            outputs,
            ready,
        }
    }

    /// The logged models still awaited.
    pub(super) fn models(&self) -> Vec<String> {
        let mut m: Vec<String> = self
            .points
            .keys()
            .chain(self.outputs.keys())
            .cloned()
            .collect();
        m.sort();
        m.dedup();
        m
    }
}

impl<D: Destination> Importer<'_, D> {
    /// Logs what waited for a logged model now on the destination (`dst_model`, or none when it
    /// never came: points are then logged without a link, outputs cannot be), then completes the
    /// runs that waited only for it.
    pub(super) async fn release_links(
        &mut self,
        src_model: &str,
        dst_model: Option<&str>,
    ) -> Result<()> {
        let released = self.deferred.take(src_model);
        for (run, mut batch) in released.points {
            // (Every run was made before a logged model is read: its task has ended.)
            let Some(run) = self.run_ids.get(&run).cloned() else {
                continue;
            };
            for m in &mut batch {
                m.model_id = dst_model.map(str::to_string);
            }
            self.client.log_batch(&run, &batch, &[], &[]).await?;
            self.report.metric_points += batch.len() as u64;
            tick(&self.opts.progress, Counter::Points, batch.len() as u64);
        }
        if let Some(model) = dst_model {
            for (run, step) in released.outputs {
                let Some(run) = self.run_ids.get(&run).cloned() else {
                    continue;
                };
                let output = ModelOutput {
                    model_id: model.to_string(),
                    step,
                };
                self.client.log_outputs(&run, &[output]).await?;
            }
        }
        for (run, p) in released.ready {
            self.complete_run(&p.experiment, &run, &p.dst, p.deleted)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(v: f64) -> Metric {
        Metric {
            key: "m".into(),
            value: v,
            ..Metric::default()
        }
    }

    fn parked(dst: &str) -> Parked {
        Parked {
            experiment: "1".into(),
            dst: dst.into(),
            deleted: false,
        }
    }

    #[test]
    fn a_run_is_ready_when_every_model_it_waits_for_arrived() {
        let mut d = Deferred::default();
        d.defer_points("m1", "r1", [point(1.0), point(2.0)]);
        d.defer_output("m2", "r1", 3);
        d.defer_points("m1", "r2", [point(3.0)]);
        assert!(d.waits("r1") && d.waits("r2") && !d.waits("r3"));
        d.park("r1", parked("s1"));
        d.park("r2", parked("s2"));
        assert_eq!(d.models(), ["m1", "m2"]);

        let first = d.take("m1");
        assert_eq!(first.points.len(), 2);
        assert_eq!(first.points[0].0, "r1");
        assert_eq!(first.points[0].1.len(), 2);
        assert!(first.outputs.is_empty());
        assert_eq!(first.ready, [("r2".to_string(), parked("s2"))]);
        assert!(d.waits("r1") && !d.waits("r2"));

        let second = d.take("m2");
        assert_eq!(second.outputs, [("r1".to_string(), 3)]);
        assert_eq!(second.ready, [("r1".to_string(), parked("s1"))]);
        assert!(d.models().is_empty());
        assert_eq!(d.take("m1"), Released::default());
    }

    #[test]
    fn a_child_waits_for_its_parent_and_what_the_parent_waits_for() {
        let mut d = Deferred::default();
        d.defer_output("m1", "parent", 0);
        d.park("parent", parked("p"));
        d.defer_on_parent("parent", "child");
        d.park("child", parked("c"));
        assert!(d.waits("child"));
        let r = d.take("m1");
        assert_eq!(r.ready, [("parent".to_string(), parked("p"))]);
        assert!(d.waits("child"), "until the parent is complete");
        assert_eq!(
            d.parent_done("parent"),
            [("child".to_string(), parked("c"))]
        );
        assert!(!d.waits("child"));
    }

    #[test]
    fn a_run_not_yet_parked_is_not_released_early() {
        let mut d = Deferred::default();
        d.defer_points("m1", "r1", [point(1.0)]);
        let r = d.take("m1");
        assert!(
            r.ready.is_empty(),
            "still being read: it completes when it is finished"
        );
        assert!(!d.waits("r1"));
    }
}
