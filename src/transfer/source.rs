//! The end an export reads from: the narrow set of reads the exporter needs (experiments, runs,
//! metric history pages, artifact listings and bodies, logged models, registered models and their
//! versions, notebooks).
//!
//! [`Client`] implements it over the MLflow REST API. Listings, metric histories and artifact
//! bodies are streams: nothing here collects a whole history, listing or file. The object stores
//! of later steps plug in here too.

use std::future::Future;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;

use crate::error::Result;
use crate::mlflow::api::datasets::EvaluationDataset;
use crate::mlflow::api::registry::PROMPT_FILTER;
use crate::mlflow::api::workspace::NotebookFormat;
use crate::mlflow::databricks::permissions::ObjectPermissions;
use crate::mlflow::types::TraceInfo;
use crate::mlflow::types::{
    Experiment, LoggedModel, Metric, ModelVersion, RegisteredModel, Run, ViewType,
};
use crate::mlflow::{ArtifactDownload, ArtifactFile, ArtifactRoot, Client};

/// A tracking server an export reads from. Every method may fail with the server's
/// [`crate::Error`]; a missing object is a not-found error
/// ([`Error::is_not_found`](crate::Error::is_not_found)).
pub trait Source: Clone + Send + Sync + 'static {
    /// The server's address, without credentials, for messages and provenance tags.
    fn server(&self) -> &str;

    /// Every experiment in `view`, in id order.
    fn experiments(&self, view: ViewType) -> BoxStream<'static, Result<Experiment>>;

    /// One experiment, by id.
    fn experiment(&self, id: &str) -> impl Future<Output = Result<Experiment>> + Send;

    /// The runs of some experiments in `view`, oldest first.
    fn runs(&self, experiment_ids: &[String], view: ViewType) -> BoxStream<'static, Result<Run>>;

    /// One run, whole (with the logged models it took as inputs).
    fn run(&self, run_id: &str) -> impl Future<Output = Result<Run>> + Send;

    /// The full history of one metric of a run, as pages of at most `page_size` points (the
    /// source's default when `None`), in the server's order.
    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        page_size: Option<u32>,
    ) -> BoxStream<'static, Result<Vec<Metric>>>;

    /// Every file under `root`, depth first in name order.
    fn artifact_files(&self, root: &ArtifactRoot) -> BoxStream<'static, Result<ArtifactFile>>;

    /// Starts downloading one file under `root`; its body is an error when shorter or longer than
    /// `expected_size`.
    fn download(
        &self,
        root: &ArtifactRoot,
        path: &str,
        expected_size: Option<u64>,
    ) -> impl Future<Output = Result<ArtifactDownload>> + Send;

    /// The logged models of some experiments.
    fn logged_models(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<LoggedModel>>;

    /// One logged model, by id.
    fn logged_model(&self, model_id: &str) -> impl Future<Output = Result<LoggedModel>> + Send;

    /// The registered models by name: the prompts when `prompts`, else the others (MLflow 3's
    /// searches leave prompts out unless asked for by their tag).
    fn registered_models(&self, prompts: bool) -> BoxStream<'static, Result<RegisteredModel>>;

    /// The registered model (or prompt) named `name`.
    fn registered_model(&self, name: &str) -> impl Future<Output = Result<RegisteredModel>> + Send;

    /// Every version of a registered model (prompts too), in numeric order.
    fn model_versions(&self, name: &str) -> impl Future<Output = Result<Vec<ModelVersion>>> + Send;

    /// The traces of some experiments, oldest first (MLflow 3); none on a source without
    /// traces.
    fn traces(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<TraceInfo>> {
        let _ = experiment_ids;
        futures_util::stream::empty().boxed()
    }

    /// Starts downloading a trace's stored span document (its attachments are files under its
    /// artifact location); `None` when the trace has no span data.
    fn trace_spans(
        &self,
        trace_id: &str,
    ) -> impl Future<Output = Result<Option<ArtifactDownload>>> + Send {
        let _ = trace_id;
        async { Ok(None) }
    }

    /// The evaluation datasets linked to some experiments, or every one of the server's when
    /// `experiment_ids` is empty (MLflow 3.4+); none on a source without them.
    fn datasets(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<EvaluationDataset>> {
        let _ = experiment_ids;
        futures_util::stream::empty().boxed()
    }

    /// The experiments a dataset is linked to.
    fn dataset_experiment_ids(
        &self,
        dataset_id: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let _ = dataset_id;
        async { Ok(Vec::new()) }
    }

    /// A dataset's records, as pages in the server's order.
    fn dataset_records(
        &self,
        dataset_id: &str,
    ) -> BoxStream<'static, Result<Vec<serde_json::Value>>> {
        let _ = dataset_id;
        futures_util::stream::empty().boxed()
    }

    /// The MLflow workspaces to export, on a server started with `--enable-workspaces`: every
    /// one of the server's, or the one this source names; `None` on a server without them.
    fn workspaces(&self) -> impl Future<Output = Result<Option<Vec<String>>>> + Send {
        async { Ok(None) }
    }

    /// The same source, reading MLflow workspace `name`.
    fn in_workspace(&self, name: &str) -> Self {
        let _ = name;
        self.clone()
    }

    /// What was granted on experiment `id` itself (a Databricks workspace's access control
    /// entries); `None` on a source that keeps no permissions.
    fn experiment_permissions(
        &self,
        id: &str,
    ) -> impl Future<Output = Result<Option<ObjectPermissions>>> + Send {
        let _ = id;
        async { Ok(None) }
    }

    /// What was granted on registered model `name` itself (access control entries in a
    /// Databricks workspace registry, grants in Unity Catalog); `None` on a source that keeps no
    /// permissions.
    fn model_permissions(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ObjectPermissions>>> + Send {
        let _ = name;
        async { Ok(None) }
    }

    /// A workspace notebook in `format`, at `revision` when given (Databricks).
    fn notebook(
        &self,
        path: &str,
        format: NotebookFormat,
        revision: Option<&str>,
    ) -> impl Future<Output = Result<Bytes>> + Send;
}

impl Source for Client {
    fn server(&self) -> &str {
        Client::server(self)
    }

    fn experiments(&self, view: ViewType) -> BoxStream<'static, Result<Experiment>> {
        self.search_experiments(view, None).boxed()
    }

    async fn experiment(&self, id: &str) -> Result<Experiment> {
        self.get_experiment(id).await
    }

    fn runs(&self, experiment_ids: &[String], view: ViewType) -> BoxStream<'static, Result<Run>> {
        self.search_runs(experiment_ids, None, view).boxed()
    }

    async fn run(&self, run_id: &str) -> Result<Run> {
        self.get_run(run_id).await
    }

    fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        page_size: Option<u32>,
    ) -> BoxStream<'static, Result<Vec<Metric>>> {
        Client::metric_history(self, run_id, key, page_size).boxed()
    }

    fn artifact_files(&self, root: &ArtifactRoot) -> BoxStream<'static, Result<ArtifactFile>> {
        self.walk_artifacts(root).boxed()
    }

    async fn download(
        &self,
        root: &ArtifactRoot,
        path: &str,
        expected_size: Option<u64>,
    ) -> Result<ArtifactDownload> {
        self.download_artifact(root, path, expected_size).await
    }

    fn logged_models(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<LoggedModel>> {
        self.search_logged_models(experiment_ids, None).boxed()
    }

    async fn logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        self.get_logged_model(model_id).await
    }

    fn registered_models(&self, prompts: bool) -> BoxStream<'static, Result<RegisteredModel>> {
        let filter = prompts.then_some(PROMPT_FILTER);
        self.search_registered_models(filter).boxed()
    }

    async fn registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.get_registered_model(name).await
    }

    async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.all_model_versions(name).await
    }

    fn traces(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<TraceInfo>> {
        self.search_traces(experiment_ids, None).boxed()
    }

    async fn trace_spans(&self, trace_id: &str) -> Result<Option<ArtifactDownload>> {
        self.download_trace_data(trace_id, None).await
    }

    fn datasets(&self, experiment_ids: &[String]) -> BoxStream<'static, Result<EvaluationDataset>> {
        self.search_datasets(experiment_ids).boxed()
    }

    async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        Client::dataset_experiment_ids(self, dataset_id).await
    }

    fn dataset_records(
        &self,
        dataset_id: &str,
    ) -> BoxStream<'static, Result<Vec<serde_json::Value>>> {
        Client::dataset_records(self, dataset_id, None).boxed()
    }

    async fn workspaces(&self) -> Result<Option<Vec<String>>> {
        if !self.workspaces_enabled().await? {
            if let Some(ws) = self.workspace() {
                return Err(crate::Error::Config(format!(
                    "{} has no workspaces (it was not started with --enable-workspaces): leave out the workspace {ws:?}",
                    self.server()
                )));
            }
            return Ok(None);
        }
        if let Some(ws) = self.workspace() {
            return Ok(Some(vec![ws.to_string()]));
        }
        Ok(Some(
            self.list_workspaces()
                .await?
                .into_iter()
                .map(|w| w.name)
                .collect(),
        ))
    }

    fn in_workspace(&self, name: &str) -> Self {
        Client::in_workspace(self, name)
    }

    async fn notebook(
        &self,
        path: &str,
        format: NotebookFormat,
        revision: Option<&str>,
    ) -> Result<Bytes> {
        self.export_notebook(path, format, revision).await
    }

    async fn experiment_permissions(&self, id: &str) -> Result<Option<ObjectPermissions>> {
        Client::experiment_permissions(self, id).await
    }

    async fn model_permissions(&self, name: &str) -> Result<Option<ObjectPermissions>> {
        Client::model_permissions(self, name).await
    }
}
