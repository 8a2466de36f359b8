//! Server to server: [`sync`], its report, and `--delete-missing`.

use std::collections::HashMap;

use serde::Serialize;

use super::base::DstRun;
use super::{Base, Class};
use crate::error::{Error, Result};
use crate::mlflow::Client;
use crate::transfer::copy::copy_all;
use crate::transfer::export::ExportOptions;
use crate::transfer::import::{Failed, ImportOptions, ImportReport, MISSING_PARENT, PARENT_RUN};

/// What a server-to-server [`sync`] did, kind by kind, and what it cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncReport {
    /// Source runs not at the destination before, copied.
    pub runs_new: u64,
    /// Runs changed at the source since they were copied, brought up to date in place.
    pub runs_updated: u64,
    /// Runs the destination held as they are: not read.
    pub runs_unchanged: u64,
    /// Runs outside `--since`/`--until`.
    pub runs_outside: u64,
    /// Runs copied without their parent (outside the time window then) pointed at the parent's
    /// copy now that the destination holds it (also counted as unchanged or outside).
    pub runs_relinked: u64,
    /// Destination runs whose source run is gone, deleted (`--delete-missing`).
    pub runs_deleted: Vec<DeletedRun>,
    /// Logged models copied.
    pub logged_models_new: u64,
    /// Logged models complete at the destination, not read.
    pub logged_models_unchanged: u64,
    /// Traces copied.
    pub traces_new: u64,
    /// Traces complete at the destination, not read.
    pub traces_unchanged: u64,
    /// Model versions copied.
    pub versions_new: u64,
    /// Model versions whose stage, description or tags were brought up to date.
    pub versions_updated: u64,
    /// Model versions found at the destination as they are.
    pub versions_unchanged: u64,
    /// Experiments of the source (each one's runs compared).
    pub experiments: u64,
    /// Evaluation datasets copied (new, or changed since their copy).
    pub datasets_new: u64,
    /// Evaluation datasets whose copy is as the source's, not read.
    pub datasets_unchanged: u64,
    /// Evaluation dataset records upserted.
    pub dataset_records: u64,
    /// Metric points sent (points the destination had already are kept once by the server).
    pub metric_points: u64,
    /// Artifact files sent.
    pub artifacts: u64,
    /// Artifact bytes sent.
    pub artifact_bytes: u64,
    /// HTTP requests to the source (retries counted; not those of artifact stores reached
    /// directly).
    pub requests_source: u64,
    /// HTTP requests to the destination.
    pub requests_destination: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// The copy's own report (id maps, notes).
    pub import: ImportReport,
}

/// Options of a sync beyond those of its export and import.
#[derive(Debug, Clone, Default)]
pub struct SyncOptions {
    /// Delete destination runs whose source run is gone (purged from the source); never by
    /// default.
    pub delete_missing: bool,
}

/// Brings server `dst` up to date with server `src`: every active experiment, with the runs
/// new or changed since the last sync (or copy) and only those read (within the time window of
/// `export.base`, if any), logged models and traces
/// not yet there, every registered model. Deleted and restored runs follow the source; a run
/// the source no longer has is deleted only with [`SyncOptions::delete_missing`]. Safe to kill
/// at any point: the next sync finishes the job, copying nothing twice.
///
/// # Errors
///
/// As [`copy_all`](crate::transfer::copy::copy_all): a [`Failed`](crate::transfer::import::Failed)
/// with what was done before the failure.
pub async fn sync(
    src: &Client,
    dst: &Client,
    export: &ExportOptions,
    import: &ImportOptions,
    opts: &SyncOptions,
) -> std::result::Result<SyncReport, Failed> {
    let started = std::time::Instant::now();
    let (src_before, dst_before) = (src.requests_sent(), dst.requests_sent());
    let failed = |error: Error| Failed {
        error,
        done: Box::default(),
    };
    let base = Base::of_server(src, dst, import.dst_workspace.as_deref())
        .await
        .map_err(|e| failed(e.within(format!("reading what {} holds", dst.server()))))?
        .with_window(
            export
                .base
                .as_ref()
                .map(|b| b.window_of())
                .unwrap_or_default(),
        );
    let base = std::sync::Arc::new(base);
    let export = ExportOptions {
        base: Some(std::sync::Arc::clone(&base)),
        // Deleted runs too: a run deleted (or restored) at the source is so at the destination.
        export_deleted_runs: true,
        ..export.clone()
    };
    let import = ImportOptions {
        update: true,
        ..import.clone()
    };
    let done = copy_all(src, dst, &export, &import).await?;
    let relinked = relink(&base, &done.runs).await.map_err(|error| Failed {
        error,
        done: Box::new(done.clone()),
    })?;
    let mut deleted = Vec::new();
    if opts.delete_missing {
        delete_missing(&base, src.server(), &mut deleted)
            .await
            .map_err(|error| Failed {
                error,
                done: Box::new(done.clone()),
            })?;
    }
    let seen = base.seen();
    Ok(SyncReport {
        runs_new: done.runs_imported,
        runs_updated: done.runs_updated,
        runs_unchanged: seen.runs_unchanged + done.runs_skipped,
        runs_relinked: relinked,
        runs_outside: seen.runs_outside,
        runs_deleted: deleted,
        logged_models_new: done.logged_models_imported,
        logged_models_unchanged: seen.logged_models_unchanged,
        traces_new: done.traces_imported,
        traces_unchanged: seen.traces_unchanged + done.traces_skipped,
        versions_new: done.versions_imported,
        versions_updated: done.versions_updated,
        versions_unchanged: done.versions_skipped,
        experiments: done.experiments.len() as u64,
        datasets_new: done.datasets_imported,
        datasets_unchanged: seen.datasets_unchanged,
        dataset_records: done.dataset_records,
        metric_points: done.metric_points,
        artifacts: done.artifacts,
        artifact_bytes: done.artifact_bytes,
        requests_source: src.requests_sent() - src_before,
        requests_destination: dst.requests_sent() - dst_before,
        seconds: started.elapsed().as_secs_f64(),
        import: done,
    })
}

/// Points the destination copies of runs imported without their parent (outside the time
/// window then, or in an experiment not copied yet) at the parent's copy, once the destination
/// holds it: `mlflow.parentRunId` set, then the parent's source id tag deleted (a kill between
/// the two leaves the tag, and the next sync does it again). Only runs the sync did not bring up
/// to date (their update points them at it); deleted ones take no writes. Returns how many.
async fn relink(base: &Base, runs: &HashMap<String, String>) -> Result<u64> {
    let mut waiting: Vec<(&String, &DstRun, &String)> = base
        .dst
        .iter()
        .filter_map(|(src, d)| Some((src, d, d.missing_parent.as_ref()?)))
        .filter(|(src, _, _)| {
            matches!(base.class_of(src), Some(Class::Unchanged | Class::Outside))
                && !base.runs.get(*src).is_some_and(|k| k.deleted)
        })
        .collect();
    waiting.sort_by_key(|(src, _, _)| *src);
    let mut relinked = 0;
    for (src, d, parent) in waiting {
        let Some(parent_dst) = runs
            .get(parent)
            .or_else(|| base.dst.get(parent).map(|p| &p.run_id))
        else {
            continue;
        };
        let what = || format!("pointing run {} (source run {src}) at its parent", d.run_id);
        d.dst
            .set_run_tag(&d.run_id, PARENT_RUN, parent_dst)
            .await
            .map_err(|e| e.within(what()))?;
        d.dst
            .delete_run_tag(&d.run_id, MISSING_PARENT)
            .await
            .map_err(|e| e.within(what()))?;
        relinked += 1;
    }
    Ok(relinked)
}

/// Deletes the destination runs whose source run the source no longer has: copies of this
/// source (their server tag names it) that the sync did not list and that the source answers
/// "not found" for (asked once each: the cost follows the deletions).
async fn delete_missing(base: &Base, server: &str, deleted: &mut Vec<DeletedRun>) -> Result<()> {
    let mut gone: Vec<(&String, &DstRun)> = base
        .dst
        .iter()
        .filter(|(src, d)| {
            d.server.as_deref() == Some(server)
                && !base.listed(src)
                && !base.runs.get(*src).is_some_and(|k| k.deleted)
        })
        .collect();
    gone.sort_by_key(|(src, _)| *src);
    for (src, d) in gone {
        match d.src.get_run(src).await {
            Ok(_) => continue,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.within(format!("asking whether source run {src} is gone"))),
        }
        d.dst.delete_run(&d.run_id).await.map_err(|e| {
            e.within(format!(
                "deleting run {} (its source run {src} is gone)",
                d.run_id
            ))
        })?;
        deleted.push(DeletedRun {
            source: src.clone(),
            destination: d.run_id.clone(),
        });
    }
    Ok(())
}

/// A destination run deleted because its source run is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeletedRun {
    /// The source run's id.
    pub source: String,
    /// The destination run's id.
    pub destination: String,
}
