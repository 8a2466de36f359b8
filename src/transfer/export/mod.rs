//! Tracking server → archive: experiments with their runs (parents first, deferred children held
//! until their parent is written), full metric histories page by page, artifacts streamed file by
//! file, and the experiments' logged models right after their source run.
//!
//! The exporter reads through a [`Source`]; a [`Client`](crate::mlflow::Client) is one.

mod artifacts;
mod datasets;
mod experiments;
mod logged_models;
mod metadata;
mod notebooks;
mod registry;
mod runs;
#[cfg(test)]
mod tests;
mod traces;

use std::sync::Arc;

use futures_util::TryStreamExt;

use super::archive_sink::ArchiveSink;
use super::ordered::run_ordered;
use super::source::Source;
use crate::error::Result;
use crate::mlflow::api::workspace::NotebookFormat;
use crate::mlflow::types::{Experiment, ViewType};

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
    /// Export the experiments' traces (MLflow 3), with their spans, assessments and
    /// attachments (`--no-traces` turns it off).
    pub traces: bool,
    /// The MLflow workspace recorded on exported experiments, registered models and datasets
    /// (set by [`export_all`] for each workspace of a source with workspaces).
    pub record_workspace: Option<String>,
    /// Export the evaluation datasets linked to the experiments, every one of the server's with
    /// `export-all` (MLflow 3.4+; `--no-datasets` turns it off).
    pub datasets: bool,
    /// Export what was granted on each experiment and registered model itself (a Databricks
    /// workspace's access control lists, Unity Catalog grants; `--export-permissions`). A source
    /// that keeps no permissions has none to export.
    pub permissions: bool,
    /// What the destination already holds, and the time window of runs to export: runs it holds
    /// as they are, and logged models and traces complete there, are not read
    /// ([`Base`](crate::transfer::sync::Base)); `None`: everything.
    pub base: Option<Arc<crate::transfer::sync::Base>>,
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

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            jobs: DEFAULT_JOBS,
            export_deleted_runs: false,
            history_page: None,
            metadata_tags: false,
            notebook_formats: Vec::new(),
            traces: true,
            datasets: true,
            record_workspace: None,
            permissions: false,
            base: None,
        }
    }
}

/// Units (runs, logged models) in flight at once unless told otherwise. How many requests
/// actually go to a server at once is its client's concurrency limit's
/// ([`crate::mlflow::Concurrency`]: by default measured, up to 32): transfers wait on round trips
/// far more than on this machine's CPU, and across regions 8 at once left both servers idle most
/// of the time (README "Performance").
pub const DEFAULT_JOBS: usize = 32;

/// The prefix of the provenance tags `--export-metadata-tags` adds.
pub const METADATA_PREFIX: &str = "mlflow_tools.metadata.";

/// A failure to read an object's permissions, naming the object and what to do.
pub(super) fn permissions_unread(e: crate::Error, object: &str) -> crate::Error {
    let hint = if e.api().is_some_and(|a| a.status == 403) {
        " (reading permissions needs CAN_MANAGE on the object, or MANAGE in Unity Catalog)"
    } else {
        ""
    };
    crate::Error::About {
        object: format!(
            "{object}: reading its permissions{hint}; leave out --export-permissions to export without them"
        ),
        source: Box::new(e),
    }
}

/// Exports `experiments` (already resolved) into `sink`.
///
/// # Errors
///
/// The first failure of a read from the source (for a [`Client`](crate::mlflow::Client), see its
/// errors) or of the sink (see [`ArchiveSink::send`]); the sink should then be dropped, not
/// finished, so that no partial archive passes for a whole one.
pub async fn export_experiments<S: Source>(
    client: &S,
    experiments: &[Experiment],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        experiments::experiments_into(client, experiments, false, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}

/// Exports every active experiment of the server (with every evaluation dataset and the
/// experiments' traces), then every registered model and prompt with every version (their runs
/// are in the archive already when their experiment is).
///
/// # Errors
///
/// As [`export_experiments`].
pub async fn export_all<S: Source>(
    client: &S,
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    // On a server with workspaces, each in turn, its objects labelled with it.
    let scopes: Vec<(S, ExportOptions)> = match client.workspaces().await? {
        None => vec![(client.clone(), opts.clone())],
        Some(names) => names
            .into_iter()
            .map(|ws| {
                let mut o = opts.clone();
                let scoped = client.in_workspace(&ws);
                o.record_workspace = Some(ws);
                (scoped, o)
            })
            .collect(),
    };
    run_ordered(sink, opts.jobs, async |s| {
        for (client, opts) in &scopes {
            let experiments: Vec<Experiment> = client
                .experiments(ViewType::ActiveOnly)
                .try_collect()
                .await?;
            experiments::experiments_into(client, &experiments, true, s, opts, &log).await?;
            registry::all_models_into(client, s, opts).await?;
        }
        Ok(())
    })
    .await?;
    Ok(log.report())
}

/// Exports registered models with every version, preceded by what the versions come from: the
/// versions' runs (and their experiments) and the logged models they register.
///
/// # Errors
///
/// As [`export_experiments`]; a registered model that does not exist is an
/// [`Error::Api`](crate::Error::Api) not-found error.
pub async fn export_models<S: Source>(
    client: &S,
    names: &[String],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        registry::models_into(client, names, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}

/// Exports single runs (with their experiments, and the logged models they produced).
///
/// # Errors
///
/// As [`export_experiments`]; a run that does not exist is an [`Error::Api`](crate::Error::Api)
/// not-found error.
pub async fn export_runs<S: Source>(
    client: &S,
    run_ids: &[String],
    sink: &mut ArchiveSink,
    opts: &ExportOptions,
) -> Result<ExportReport> {
    let log = Arc::default();
    run_ordered(sink, opts.jobs, async |s| {
        experiments::runs_into(client, run_ids, s, opts, &log).await
    })
    .await?;
    Ok(log.report())
}
