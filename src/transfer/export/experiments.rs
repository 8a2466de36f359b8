//! Which runs and logged models an export holds, and in which order they are offered: whole
//! experiments, the runs and models registered versions come from, single runs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures_util::{StreamExt, TryStreamExt};

use super::ExportOptions;
use super::notebooks::NotebookLog;
use super::runs::State;
use crate::error::{Error, Result};
use crate::mlflow::types::{Experiment, LoggedModel, Run, ViewType};
use crate::transfer::ordered::Scheduler;
use crate::transfer::source::Source;
use crate::transfer::sync::Class;

/// Writes whole experiments: the evaluation datasets linked to them (every one of the server's
/// when `all_datasets`), their runs (deleted ones when asked), parents first, their logged models
/// right after their source run, and then their traces.
pub(super) async fn experiments_into<S: Source>(
    client: &S,
    experiments: &[Experiment],
    all_datasets: bool,
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
    // object outside it is known to be satisfied and one inside it is waited for. All
    // experiments at once (a search per [`SEARCH_EXPERIMENTS`]), runs, logged models, whether the
    // server has logged models at all and the first page of datasets side by side: its round
    // trips do not grow with the experiments, and at 100 ms each way they are what a small
    // export waits for before its first run.
    let ids: Vec<String> = experiments
        .iter()
        .map(|e| e.experiment_id.clone())
        .collect();
    let runs_pass = async {
        let mut in_export: HashSet<String> = HashSet::new();
        let mut with_runs: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(SEARCH_EXPERIMENTS) {
            let mut runs = std::pin::pin!(client.runs(chunk, view));
            while let Some(r) = runs.try_next().await? {
                let class = opts.base.as_ref().map_or(Class::New, |b| b.classify(&r));
                if matches!(class, Class::New | Class::Changed) {
                    in_export.insert(format!("run:{}", r.info.run_id));
                    with_runs.insert(r.info.experiment_id.clone());
                }
            }
        }
        Ok::<_, Error>((in_export, with_runs))
    };
    let models_pass = async {
        let mut found: Vec<LoggedModel> = Vec::new();
        for chunk in ids.chunks(SEARCH_EXPERIMENTS) {
            let mut models = std::pin::pin!(client.logged_models(chunk));
            while let Some(m) = models.try_next().await? {
                // Complete at the destination (a sync): not read again.
                if !opts.base.as_ref().is_some_and(|b| b.has_logged_model(&m)) {
                    found.push(m);
                }
            }
        }
        Ok::<_, Error>(found)
    };
    // (None of them when the export has no experiment and is not of the whole server.)
    let mut datasets = (opts.datasets && (all_datasets || !ids.is_empty())).then(|| {
        let scope: &[String] = if all_datasets { &[] } else { &ids };
        client.datasets(scope).peekable()
    });
    let datasets_ahead = async {
        if let Some(d) = datasets.as_mut() {
            // Its first page arrives with the rest of the first pass; errors come when it is read.
            std::pin::Pin::new(d).peek().await;
        }
        Ok::<_, Error>(())
    };
    // Every part to its end, and a failure reported in this order whichever came first: the
    // runs' listing's (as when it ran alone) before the others'.
    let (runs, found, has_models, ahead) = tokio::join!(
        runs_pass,
        models_pass,
        server_has_logged_models(client),
        datasets_ahead
    );
    let (mut in_export, with_runs) = runs?;
    let (mut found, has_models, ()) = (found?, has_models?, ahead?);
    // In the experiments' order, each experiment's in the server's (as one search each gave).
    let place: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    found.sort_by_key(|m| place.get(m.info.experiment_id.as_str()).copied());
    let mut models_by_source: HashMap<String, Vec<LoggedModel>> = HashMap::new();
    let mut orphan_models: Vec<LoggedModel> = Vec::new();
    for m in found {
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
    if let Some(datasets) = datasets {
        // Before the runs: a run's dataset input may name one (spec §9).
        let ws = opts.record_workspace.as_deref();
        let base = opts.base.as_deref();
        super::datasets::datasets_into(client, datasets, ws, base, sink).await?;
    }
    for m in orphan_models {
        st.write_logged_model(sink, &m).await?;
    }
    // Each run as `runs/get` has it: search answers leave out the logged models a run took as
    // inputs (MLflow 3.x), which the archive holds and its order depends on. A server without
    // logged models has no such inputs: the search answer is then the whole run.
    let whole = !has_models;
    // Experiments with no run to export in the first pass are not listed again.
    for e in experiments
        .iter()
        .filter(|e| with_runs.contains(&e.experiment_id))
    {
        let ids = std::slice::from_ref(&e.experiment_id);
        let wanted = |r: &Run| {
            opts.base
                .as_ref()
                .is_none_or(|b| matches!(b.classify(r), Class::New | Class::Changed))
        };
        let mut runs = std::pin::pin!(
            client
                .runs(ids, view)
                .try_filter(|r| std::future::ready(wanted(r)))
                .map_ok(|r| async move {
                    if whole {
                        Ok(r)
                    } else {
                        client.run(&r.info.run_id).await
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
        return Err(Error::Input(format!(
            "run {} waits for {dep}, which never came (a cycle of parents?)",
            runs[0].info.run_id
        )));
    }
    if opts.traces {
        // After every run and logged model: a trace may name either (spec §9).
        super::traces::traces_into(client, experiments, opts.base.as_deref(), sink).await?;
    }
    Ok(())
}

/// How many experiments one search of runs or logged models names.
const SEARCH_EXPERIMENTS: usize = 100;

/// Whether any experiment of the server, deleted ones too, holds a logged model (one page of a
/// search per 100 experiments, until one is found).
async fn server_has_logged_models<S: Source>(client: &S) -> Result<bool> {
    let ids: Vec<String> = client
        .experiments(ViewType::All)
        .map_ok(|e| e.experiment_id)
        .try_collect()
        .await?;
    for chunk in ids.chunks(SEARCH_EXPERIMENTS) {
        let mut models = std::pin::pin!(client.logged_models(chunk));
        if models.try_next().await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Writes a given set of runs and logged models, after the experiments they belong to, parents
/// and sources first.
pub(super) async fn run_set_into<S: Source>(
    client: &S,
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
        let e = client.experiment(id).await?;
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

/// Writes single runs, with their experiments and the logged models they produced.
pub(super) async fn runs_into<S: Source>(
    client: &S,
    run_ids: &[String],
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let mut runs = Vec::new();
    let mut logged = Vec::new();
    for id in run_ids {
        let r = client.run(id).await?;
        let ids = std::slice::from_ref(&r.info.experiment_id);
        let mut models = std::pin::pin!(client.logged_models(ids));
        while let Some(m) = models.try_next().await? {
            if m.info.source_run_id == r.info.run_id {
                logged.push(m);
            }
        }
        runs.push(r);
    }
    run_set_into(client, runs, logged, sink, opts, log).await
}
