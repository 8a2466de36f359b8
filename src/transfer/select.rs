//! Choosing part of an archive before a sink sees it: `import-run --run-id R` imports one run of
//! an input that holds several (an experiment's archive or tree), as the Python tool's
//! `import-run --run-id` does. The choice is a filter on the event stream, so the importer reads
//! a smaller archive and knows nothing of it.

use std::collections::HashMap;

use tokio::sync::mpsc;

use super::archive_source::{ArchiveSource, CHANNEL, Event};
use crate::error::{Error, Result};
use crate::format::Record;
use crate::format::path::UnitId;

/// Run ids named in the error for a run the input does not hold.
const LISTED: usize = 5;

/// The events of `source` that make up run `run_id`: the run with its metrics and artifacts, the
/// logged models it produced, and the experiments they belong to. Registered models and other
/// runs are left out. An input without that run ends with an error naming it (and the runs it
/// holds) before anything reaches the sink.
pub fn only_run(mut source: ArchiveSource, run_id: &str) -> ArchiveSource {
    let (tx, rx) = mpsc::channel(CHANNEL);
    let mut filter = RunFilter::new(run_id);
    tokio::spawn(async move {
        while let Some(event) = source.next().await {
            let out = match event {
                Ok(e) => filter.event(e),
                Err(e) => vec![Err(e)],
            };
            for e in out {
                if tx.send(e).await.is_err() {
                    return; // the sink stopped reading
                }
            }
        }
    });
    ArchiveSource::from_receiver(rx)
}

/// The filter, event by event (pure: no I/O).
pub struct RunFilter {
    run_id: String,
    /// Experiment units read (record and seal), held until a kept unit needs them.
    experiments: HashMap<String, Vec<Event>>,
    /// The experiment unit being read (held), until its seal.
    holding: Option<String>,
    /// Whether the unit being read is passed on.
    keep: bool,
    found: bool,
    /// Other runs of the input: how many, and the first few ids.
    others: usize,
    listed: Vec<String>,
}

impl RunFilter {
    /// A filter keeping run `run_id`.
    pub fn new(run_id: &str) -> Self {
        RunFilter {
            run_id: run_id.to_string(),
            experiments: HashMap::new(),
            holding: None,
            keep: false,
            found: false,
            others: 0,
            listed: Vec::new(),
        }
    }

    /// What to pass on for `event`.
    pub fn event(&mut self, event: Event) -> Vec<Result<Event>> {
        let record = match &event {
            Event::Header(_) => return vec![Ok(event)],
            Event::Artifact(_) | Event::Body(_) | Event::ArtifactEnd => {
                return self.pass_if_kept(event);
            }
            Event::Record(r) => r,
        };
        match record {
            Record::Experiment(e) => {
                self.keep = false;
                let id = e.experiment_id.clone();
                self.holding = Some(id.clone());
                self.experiments.insert(id, vec![event]);
                Vec::new()
            }
            // A unit of a later kind reaches the importer, which refuses or counts it.
            Record::Sealed(s) if matches!(s.unit, UnitId::Other { .. }) => vec![Ok(event)],
            Record::Sealed(s) => {
                self.holding = None;
                if let UnitId::Experiment(id) = &s.unit
                    && let Some(held) = self.experiments.get_mut(id)
                {
                    held.push(event);
                    return Vec::new();
                }
                let out = self.pass_if_kept(event);
                self.keep = false;
                out
            }
            Record::Run(r) if r.run_id == self.run_id => {
                self.found = true;
                self.keep = true;
                let exp = r.experiment_id.clone();
                self.with_experiment(&exp, event)
            }
            Record::Run(r) => {
                self.others += 1;
                if self.listed.len() < LISTED {
                    self.listed.push(r.run_id.clone());
                }
                self.keep = false;
                Vec::new()
            }
            Record::LoggedModel(m) if self.found && m.source_run_id == self.run_id => {
                self.keep = true;
                let exp = m.experiment_id.clone();
                self.with_experiment(&exp, event)
            }
            Record::Trace(t)
                if self.found
                    && t.metadata(crate::format::model::TRACE_SOURCE_RUN)
                        == Some(self.run_id.as_str()) =>
            {
                self.keep = true;
                let exp = t.experiment_id.clone();
                self.with_experiment(&exp, event)
            }
            Record::LoggedModel(_)
            | Record::RegisteredModel(_)
            | Record::Trace(_)
            | Record::Dataset(_) => {
                self.keep = false;
                Vec::new()
            }
            Record::End(_) if self.found => vec![Ok(event)],
            Record::End(_) => vec![Err(self.not_found())],
            Record::MetricChunk(_)
            | Record::ModelVersion(_)
            | Record::Artifact(_)
            | Record::DatasetRecords(_) => self.pass_if_kept(event),
            // An experiment's permissions are held with it; a registered model's go with it.
            Record::Permissions(_) => match self.holding.clone() {
                Some(id) => {
                    if let Some(held) = self.experiments.get_mut(&id) {
                        held.push(event);
                    }
                    Vec::new()
                }
                None => self.pass_if_kept(event),
            },
        }
    }

    fn pass_if_kept(&self, event: Event) -> Vec<Result<Event>> {
        if self.keep {
            vec![Ok(event)]
        } else {
            Vec::new()
        }
    }

    /// The held experiment `id` (if not passed on yet), then `event`.
    fn with_experiment(&mut self, id: &str, event: Event) -> Vec<Result<Event>> {
        let mut out: Vec<Result<Event>> = self
            .experiments
            .remove(id)
            .unwrap_or_default()
            .into_iter()
            .map(Ok)
            .collect();
        out.push(Ok(event));
        out
    }

    fn not_found(&self) -> Error {
        let holds = match self.others {
            0 => "it holds no run".to_string(),
            n => {
                let more = if n > self.listed.len() { ", …" } else { "" };
                format!(
                    "it holds {n} run{}: {}{more}",
                    if n == 1 { "" } else { "s" },
                    self.listed.join(", ")
                )
            }
        };
        Error::Config(format!(
            "run {}: not in the input ({holds}); give --run-id one of its runs, or leave it out to import every run",
            self.run_id
        ))
    }
}

/// The events of `source` that make up its prompts (registered models tagged as prompts, with
/// their versions); every other unit is read, checked and left out. `import-prompts` imports
/// these, as the Python tool's does.
pub fn only_prompts(mut source: ArchiveSource) -> ArchiveSource {
    let (tx, rx) = mpsc::channel(CHANNEL);
    tokio::spawn(async move {
        let mut keep = false;
        while let Some(event) = source.next().await {
            let pass = match &event {
                Ok(Event::Header(_) | Event::Record(Record::End(_))) | Err(_) => true,
                Ok(Event::Record(Record::RegisteredModel(m))) => {
                    keep = m.is_prompt();
                    keep
                }
                Ok(Event::Record(
                    Record::Experiment(_)
                    | Record::Run(_)
                    | Record::LoggedModel(_)
                    | Record::Trace(_)
                    | Record::Dataset(_),
                )) => {
                    keep = false;
                    false
                }
                // A unit of a later kind reaches the importer, which refuses or counts it.
                Ok(Event::Record(Record::Sealed(s))) => {
                    std::mem::take(&mut keep) || matches!(s.unit, UnitId::Other { .. })
                }
                Ok(_) => keep,
            };
            if pass && tx.send(event).await.is_err() {
                return; // the sink stopped reading
            }
        }
    });
    ArchiveSource::from_receiver(rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::model::{Experiment, LoggedModel, RegisteredModel, Run};
    use crate::format::validate::Sealed;

    fn rec(r: Record) -> Event {
        Event::Record(r)
    }

    fn seal(unit: UnitId) -> Event {
        rec(Record::Sealed(Sealed {
            unit,
            members: 1,
            bytes: 1,
        }))
    }

    fn experiment(id: &str) -> Vec<Event> {
        vec![
            rec(Record::Experiment(Experiment {
                experiment_id: id.into(),
                name: format!("e{id}"),
                ..Experiment::default()
            })),
            seal(UnitId::Experiment(id.into())),
        ]
    }

    fn run(id: &str, exp: &str) -> Vec<Event> {
        vec![
            rec(Record::Run(Run {
                run_id: id.into(),
                experiment_id: exp.into(),
                ..Run::default()
            })),
            Event::ArtifactEnd, // stands for the unit's contents
            seal(UnitId::Run(id.into())),
        ]
    }

    fn logged(id: &str, exp: &str, source: &str) -> Vec<Event> {
        vec![
            rec(Record::LoggedModel(LoggedModel {
                model_id: id.into(),
                experiment_id: exp.into(),
                source_run_id: source.into(),
                ..LoggedModel::default()
            })),
            seal(UnitId::LoggedModel(id.into())),
        ]
    }

    fn end() -> Event {
        rec(Record::End(crate::format::model::Trailer::default()))
    }

    /// What the filter passes on, as short names.
    fn passed(run_id: &str, input: Vec<Vec<Event>>) -> Vec<String> {
        let mut f = RunFilter::new(run_id);
        input
            .into_iter()
            .flatten()
            .flat_map(|e| f.event(e))
            .map(|e| match e {
                Err(e) => format!("error: {e}"),
                Ok(Event::Record(Record::Experiment(e))) => {
                    format!("experiment {}", e.experiment_id)
                }
                Ok(Event::Record(Record::Run(r))) => format!("run {}", r.run_id),
                Ok(Event::Record(Record::LoggedModel(m))) => format!("logged model {}", m.model_id),
                Ok(Event::Record(Record::Sealed(s))) => format!("sealed {}", s.unit.prefix()),
                Ok(Event::Record(Record::End(_))) => "end".into(),
                Ok(Event::ArtifactEnd) => "contents".into(),
                Ok(other) => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn one_run_with_its_experiment_and_logged_models_and_nothing_else() {
        let got = passed(
            "b",
            vec![
                experiment("1"),
                experiment("2"),
                run("a", "1"),
                logged("m-a", "1", "a"),
                run("b", "2"),
                logged("m-b", "1", "b"),
                run("c", "2"),
                vec![
                    rec(Record::RegisteredModel(RegisteredModel::default())),
                    seal(UnitId::Model(0)),
                ],
                vec![end()],
            ],
        );
        assert_eq!(
            got,
            [
                "experiment 2",
                "sealed experiments/2",
                "run b",
                "contents",
                "sealed runs/b",
                "experiment 1",
                "sealed experiments/1",
                "logged model m-b",
                "sealed logged-models/m-b",
                "end",
            ]
        );
    }

    #[test]
    fn an_experiments_permissions_go_with_it_and_only_with_it() {
        let perms = |n: usize| {
            rec(Record::Permissions(crate::format::model::Permissions {
                acl: vec![
                    crate::format::model::AclEntry {
                        principal_type: "user".into(),
                        principal: format!("u{n}"),
                        level: "CAN_READ".into(),
                    };
                    n
                ],
                grants: Vec::new(),
            }))
        };
        let mut one = experiment("1");
        one.insert(1, perms(1));
        let mut two = experiment("2");
        two.insert(1, perms(2));
        let got = passed("b", vec![one, two, run("b", "2"), vec![end()]]);
        assert_eq!(
            got,
            [
                "experiment 2".to_string(),
                format!("{:?}", perms(2)),
                "sealed experiments/2".into(),
                "run b".into(),
                "contents".into(),
                "sealed runs/b".into(),
                "end".into(),
            ]
        );
    }

    #[test]
    fn a_run_the_input_does_not_hold_is_an_error_naming_it_and_what_it_holds() {
        let got = passed(
            "zzz",
            vec![experiment("1"), run("a", "1"), run("b", "1"), vec![end()]],
        );
        assert_eq!(
            got,
            [
                "error: run zzz: not in the input (it holds 2 runs: a, b); give --run-id one of its runs, or leave it out to import every run"
            ]
        );
    }
}
