//! The in-memory server as a [`Source`]: what was written to it, read back as an export reads
//! a tracking server (runs with the latest value of each metric, histories in pages, files).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};

use super::{MemoryServer, State, api, has_tag, not_found};
use crate::error::Result;
use crate::mlflow::api::workspace::NotebookFormat;
use crate::mlflow::types::{
    Experiment, LoggedModel, Metric, ModelVersion, RegisteredModel, Run, ViewType,
};
use crate::mlflow::{ArtifactDownload, ArtifactFile, ArtifactRoot};
use crate::transfer::destination::Destination;
use crate::transfer::source::Source;

/// A listing as a stream (the in-memory server answers it at once).
fn listed<T: Send + 'static>(items: Result<Vec<T>>) -> BoxStream<'static, Result<T>> {
    match items {
        Ok(items) => stream::iter(items.into_iter().map(Ok)).boxed(),
        Err(e) => stream::once(async move { Err(e) }).boxed(),
    }
}

fn in_view(lifecycle_stage: &str, view: ViewType) -> bool {
    match view {
        ViewType::ActiveOnly => lifecycle_stage != "deleted",
        ViewType::DeletedOnly => lifecycle_stage == "deleted",
        ViewType::All => true,
    }
}

impl State {
    /// A run as the server answers it: with the latest value of each of its metrics.
    fn answered_run(&self, run: &Run) -> Run {
        let mut run = run.clone();
        let mut latest: BTreeMap<&str, &Metric> = BTreeMap::new();
        for p in self.histories.get(&run.info.run_id).into_iter().flatten() {
            let newer = latest
                .get(p.key.as_str())
                .is_none_or(|q| (p.step, p.timestamp) >= (q.step, q.timestamp));
            if newer {
                latest.insert(&p.key, p);
            }
        }
        run.data.metrics = latest.into_values().cloned().collect();
        run
    }
}

impl Source for MemoryServer {
    fn server(&self) -> &str {
        "memory"
    }

    fn experiments(&self, view: ViewType) -> BoxStream<'static, Result<Experiment>> {
        listed(self.call("experiments").map(|s| {
            s.experiments
                .iter()
                .filter(|e| in_view(&e.lifecycle_stage, view))
                .cloned()
                .collect()
        }))
    }

    async fn experiment(&self, id: &str) -> Result<Experiment> {
        let s = self.call("experiment")?;
        s.experiments
            .iter()
            .find(|e| e.experiment_id == id)
            .cloned()
            .ok_or_else(|| not_found(format!("experiment {id}")))
    }

    fn runs(&self, experiment_ids: &[String], view: ViewType) -> BoxStream<'static, Result<Run>> {
        listed(self.call("runs").map(|s| {
            let mut runs: Vec<Run> = s
                .runs
                .values()
                .filter(|r| {
                    experiment_ids.contains(&r.info.experiment_id)
                        && in_view(&r.info.lifecycle_stage, view)
                })
                .map(|r| s.answered_run(r))
                .collect();
            runs.sort_by(|a, b| {
                (a.info.start_time, &a.info.run_id).cmp(&(b.info.start_time, &b.info.run_id))
            });
            runs
        }))
    }

    async fn run(&self, run_id: &str) -> Result<Run> {
        let s = self.call("run")?;
        let run = s
            .runs
            .get(run_id)
            .ok_or_else(|| not_found(format!("run {run_id}")))?;
        Ok(s.answered_run(run))
    }

    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        page_size: Option<u32>,
    ) -> BoxStream<'static, Result<Vec<Metric>>> {
        let page = page_size
            .unwrap_or(crate::mlflow::api::runs::HISTORY_PAGE)
            .max(1) as usize;
        listed(self.call("metric_history").map(|s| {
            let points: Vec<Metric> = s
                .histories
                .get(run_id)
                .into_iter()
                .flatten()
                .filter(|p| p.key == key)
                .cloned()
                .collect();
            points.chunks(page).map(<[Metric]>::to_vec).collect()
        }))
    }

    fn artifact_files(&self, root: &ArtifactRoot) -> BoxStream<'static, Result<ArtifactFile>> {
        listed(self.call("artifact_files").map(|s| {
            s.files
                .iter()
                .filter(|((r, _), _)| r == root.uri())
                .map(|((_, path), b)| ArtifactFile {
                    path: path.clone(),
                    size: b.len() as u64,
                })
                .collect()
        }))
    }

    async fn download(
        &self,
        root: &ArtifactRoot,
        path: &str,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        let s = self.call("download")?;
        let data = s
            .files
            .get(&(root.uri().to_string(), path.to_string()))
            .cloned()
            .ok_or_else(|| not_found(format!("artifact {path}")))?;
        let size = data.len() as u64;
        if expected_size.is_some_and(|e| e != size) {
            return Err(api(
                500,
                "INTERNAL_ERROR",
                format!("artifact {path}: {size} bytes, not {expected_size:?}"),
            ));
        }
        Ok(ArtifactDownload {
            size: Some(size),
            body: stream::once(async move { Ok(data) }).boxed(),
        })
    }

    fn logged_models(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<LoggedModel>> {
        listed(self.call("logged_models").map(|s| {
            s.logged_models
                .values()
                .filter(|m| experiment_ids.contains(&m.info.experiment_id))
                .cloned()
                .collect()
        }))
    }

    async fn logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        let s = self.call("logged_model")?;
        s.logged_models
            .get(model_id)
            .cloned()
            .ok_or_else(|| not_found(format!("logged model {model_id}")))
    }

    fn registered_models(&self, prompts: bool) -> BoxStream<'static, Result<RegisteredModel>> {
        listed(self.call("registered_models").map(|s| {
            s.models
                .values()
                .filter(|r| {
                    has_tag(&r.model.tags, "mlflow.prompt.is_prompt", Some("true")) == prompts
                })
                .map(|r| r.model.clone())
                .collect()
        }))
    }

    async fn registered_model(&self, name: &str) -> Result<RegisteredModel> {
        Destination::registered_model(self, name).await
    }

    async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        Destination::model_versions(self, name).await
    }

    async fn notebook(
        &self,
        path: &str,
        _format: NotebookFormat,
        _revision: Option<&str>,
    ) -> Result<Bytes> {
        drop(self.call("notebook")?);
        Err(not_found(format!("notebook {path}")))
    }

    async fn experiment_permissions(
        &self,
        id: &str,
    ) -> Result<Option<crate::mlflow::databricks::permissions::ObjectPermissions>> {
        self.experiment_acl(id)
    }

    async fn model_permissions(
        &self,
        name: &str,
    ) -> Result<Option<crate::mlflow::databricks::permissions::ObjectPermissions>> {
        self.model_perms(name)
    }
}
