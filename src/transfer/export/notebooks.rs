//! The Databricks notebooks runs were logged from, exported as run artifacts.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{ExportReport, NotebookReport};
use crate::error::Result;
use crate::mlflow::api::workspace::{NOTEBOOK_PATH, NOTEBOOK_REVISION, NotebookFormat};
use crate::mlflow::types::Run;
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::UnitTx;
use crate::transfer::source::Source;

/// [`NotebookReport`] as the runs being exported at once fill it.
#[derive(Debug, Default)]
pub(super) struct NotebookLog {
    runs: AtomicU64,
    exported: AtomicU64,
    failures: Mutex<Vec<String>>,
}

impl NotebookLog {
    pub(super) fn report(&self) -> ExportReport {
        ExportReport {
            notebooks: NotebookReport {
                runs: self.runs.load(Ordering::Relaxed),
                exported: self.exported.load(Ordering::Relaxed),
                failures: self
                    .failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            },
        }
    }
}

/// The notebook a run was logged from, to export in some formats.
pub(super) struct NotebookJob {
    path: String,
    revision: Option<String>,
    formats: Vec<NotebookFormat>,
    log: Arc<NotebookLog>,
}

impl NotebookJob {
    /// The notebook `r` was logged from, when it names one and `formats` are asked for (counted
    /// in `log`).
    pub(super) fn of_run(
        r: &Run,
        formats: &[NotebookFormat],
        log: &Arc<NotebookLog>,
    ) -> Option<NotebookJob> {
        let tag = |k: &str| {
            r.data
                .tags
                .iter()
                .find(|t| t.key == k && !t.value.is_empty())
                .map(|t| t.value.clone())
        };
        match tag(NOTEBOOK_PATH) {
            Some(path) if !formats.is_empty() => {
                log.runs.fetch_add(1, Ordering::Relaxed);
                Some(NotebookJob {
                    path,
                    revision: tag(NOTEBOOK_REVISION),
                    formats: formats.to_vec(),
                    log: Arc::clone(log),
                })
            }
            _ => None,
        }
    }

    /// Adds `notebooks/<name>.<format>` for each format, and `notebooks/manifest.json`, unless the
    /// run's artifacts have them already (`present`: a run imported with its notebooks).
    pub(super) async fn write<S: Source>(
        &self,
        client: &S,
        run: &str,
        present: &HashSet<String>,
        unit: &UnitTx,
    ) -> Result<()> {
        let name = self.path.rsplit('/').next().unwrap_or("");
        let mut formats: Vec<&str> = Vec::new();
        for f in &self.formats {
            let rel = format!("notebooks/{name}.{}", f.extension());
            if let Err(why) = crate::format::path::check_relpath(&rel) {
                let mut failures = self.log.failures.lock().unwrap_or_else(|p| p.into_inner());
                failures.push(format!(
                    "run {run}: notebook {:?}: its name cannot be an artifact path: {why}",
                    self.path
                ));
                break;
            }
            if present.contains(&rel) {
                continue;
            }
            match client
                .notebook(&self.path, *f, self.revision.as_deref())
                .await
            {
                Ok(bytes) => {
                    unit.send(Cmd::BeginArtifact(rel, bytes.len() as u64))
                        .await?;
                    unit.send(Cmd::Body(bytes)).await?;
                    unit.send(Cmd::EndArtifact).await?;
                    self.log.exported.fetch_add(1, Ordering::Relaxed);
                    formats.push(f.api_name());
                }
                Err(e) => {
                    let mut failures = self.log.failures.lock().unwrap_or_else(|p| p.into_inner());
                    failures.push(format!("run {run}: notebook {:?} as {f}: {e}", self.path));
                }
            }
        }
        let manifest = "notebooks/manifest.json";
        if !formats.is_empty() && !present.contains(manifest) {
            let doc = serde_json::json!({
                NOTEBOOK_PATH: self.path,
                NOTEBOOK_REVISION: self.revision,
                "formats": formats,
            });
            let bytes = bytes::Bytes::from(serde_json::to_vec_pretty(&doc).unwrap_or_default());
            unit.send(Cmd::BeginArtifact(manifest.into(), bytes.len() as u64))
                .await?;
            unit.send(Cmd::Body(bytes)).await?;
            unit.send(Cmd::EndArtifact).await?;
        }
        Ok(())
    }
}
