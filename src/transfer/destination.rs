//! The end an import writes to: the narrow set of operations the importer needs (experiments,
//! runs, metric batches, uploads, tags, lineage searches, logged models, registry writes).
//!
//! [`Client`] implements it over the MLflow REST API; [`super::memory::MemoryServer`] implements
//! it in memory, with MLflow's rules (ids, version numbering, immutable params, deleted runs that
//! refuse writes) and injectable failures, so the import's protocols (resume after a kill,
//! deferred links, renumbering) are tested in milliseconds. The object stores of later steps plug
//! in here too.

use std::collections::BTreeMap;
use std::future::Future;

use bytes::Bytes;
use futures_util::stream::BoxStream;

use crate::error::Result;
use crate::mlflow::api::datasets::EvaluationDataset;
use crate::mlflow::api::registry::RegistryKind;
use crate::mlflow::databricks::Registry;
use crate::mlflow::databricks::permissions::{AccessControl, AclObject, PrivilegeAssignment};
use crate::mlflow::databricks::uc::Uploaded;
use crate::mlflow::types::TraceInfo;
use crate::mlflow::types::{
    DatasetInput, Experiment, KeyValue, LoggedModel, Metric, ModelInput, ModelOutput, ModelVersion,
    RegisteredModel, Run, ViewType,
};
use crate::mlflow::{
    ArtifactRoot, Auth, Client, CreateLoggedModel, CreateModelVersion, CreateRun, RetryConfig,
    UpdateRun,
};

/// A tracking server an import writes to. Every method may fail with the server's
/// [`crate::Error`]; creates settle an unknown outcome themselves (by their marker tag), as
/// [`Client`] does.
pub trait Destination: Clone + Send + Sync + 'static {
    /// The server's address, without credentials, for messages.
    fn server(&self) -> &str;

    /// The user the server knows this client as, when the client can tell (basic auth).
    fn user(&self) -> Option<String>;

    /// How failed requests are retried (uploads sent again from a replay follow it too).
    fn retry_config(&self) -> RetryConfig {
        RetryConfig::default()
    }

    /// The experiment named `name`, active or deleted.
    fn experiment_by_name(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<Experiment>>> + Send;

    /// Creates an experiment; returns its id.
    fn create_experiment(
        &self,
        name: &str,
        tags: &[KeyValue],
    ) -> impl Future<Output = Result<String>> + Send;

    /// Every run of `experiment` (deleted ones too) that has tag `key`, with value `value` when
    /// given.
    fn runs_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: Option<&str>,
    ) -> impl Future<Output = Result<Vec<Run>>> + Send;

    /// Creates a run (reconciled by `req.reconcile_tag` when the answer is lost).
    fn create_run(&self, req: &CreateRun) -> impl Future<Output = Result<Run>> + Send;

    /// One run.
    fn get_run(&self, run_id: &str) -> impl Future<Output = Result<Run>> + Send;

    /// Sets a run's status, end time or name.
    fn update_run(&self, req: &UpdateRun) -> impl Future<Output = Result<()>> + Send;

    /// Logs metrics, params and tags (in as many requests as the server's limits need).
    fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Logs dataset and model inputs.
    fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Logs model outputs.
    fn log_outputs(
        &self,
        run_id: &str,
        models: &[ModelOutput],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets a run's tag.
    fn set_run_tag(
        &self,
        run_id: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Marks a run deleted.
    fn delete_run(&self, run_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a run's tag (a sync that brings a run up to date with its source).
    fn delete_run_tag(&self, run_id: &str, key: &str) -> impl Future<Output = Result<()>> + Send;

    /// Makes a deleted run active again (its source run was restored).
    fn restore_run(&self, run_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// Uploads a file of exactly `size` bytes from a stream (not repeated on failure).
    fn upload(
        &self,
        root: &ArtifactRoot,
        path: &str,
        size: u64,
        body: BoxStream<'static, Result<Bytes>>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Uploads a small file held in memory (repeated on transient failures).
    fn upload_bytes(
        &self,
        root: &ArtifactRoot,
        path: &str,
        data: Bytes,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The logged models of `experiment` whose tag `key` is `value`.
    fn logged_models_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<Vec<LoggedModel>>> + Send;

    /// Creates a logged model (reconciled by `req.reconcile_tag`).
    fn create_logged_model(
        &self,
        req: &CreateLoggedModel,
    ) -> impl Future<Output = Result<LoggedModel>> + Send;

    /// Sets a logged model's status (`LOGGED_MODEL_READY`, ...).
    fn finalize_logged_model(
        &self,
        model_id: &str,
        status: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets tags of a logged model.
    fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &[KeyValue],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a logged model.
    fn delete_logged_model(&self, model_id: &str) -> impl Future<Output = Result<()>> + Send;

    /// The registered model named `name` (a not-found error when there is none).
    fn registered_model(&self, name: &str) -> impl Future<Output = Result<RegisteredModel>> + Send;

    /// Creates a registered model.
    fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets a registered model's description.
    fn update_registered_model(
        &self,
        name: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Sets a registered model's tag.
    fn set_registered_model_tag(
        &self,
        name: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a registered model and its versions (a not-found error when there is none).
    fn delete_registered_model(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// Deletes a registered model's tag (a sync: the source no longer has it).
    fn delete_registered_model_tag(
        &self,
        name: &str,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, key);
        async { Err(unsupported(self.server(), "deleting registered model tags")) }
    }

    /// Deletes an alias of a registered model (a sync: the source no longer has it).
    fn delete_alias(&self, name: &str, alias: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, alias);
        async { Err(unsupported(self.server(), "deleting aliases")) }
    }

    /// Sets a model version's description (a sync: changed at the source).
    fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, version, description);
        async { Err(unsupported(self.server(), "updating model versions")) }
    }

    /// Sets a model version's tag (a sync: set or changed at the source).
    fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, version, key, value);
        async { Err(unsupported(self.server(), "model version tags")) }
    }

    /// Deletes a model version's tag (a sync: the source no longer has it).
    fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, version, key);
        async { Err(unsupported(self.server(), "model version tags")) }
    }

    /// Every version of a registered model (prompts too), in numeric order.
    fn model_versions(&self, name: &str) -> impl Future<Output = Result<Vec<ModelVersion>>> + Send;

    /// Creates a model version (reconciled by `req.reconcile_tag`).
    fn create_model_version(
        &self,
        req: &CreateModelVersion,
    ) -> impl Future<Output = Result<ModelVersion>> + Send;

    /// Deletes a model version.
    fn delete_model_version(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Waits until a new version is ready (registration may copy files).
    fn wait_model_version_ready(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Moves a version to `stage`.
    fn transition_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// Points `alias` at `version`.
    fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The kind of model registry it has (MLflow's, by default).
    fn registry(&self) -> RegistryKind {
        RegistryKind::Mlflow
    }

    /// The id of the tracking server that holds `run_id`, as Unity Catalog records it
    /// (`run_tracking_server_id`); `None` when the server does not say.
    fn tracking_server_id(
        &self,
        run_id: &str,
    ) -> impl Future<Output = Result<Option<String>>> + Send {
        let _ = run_id;
        async { Ok(None) }
    }

    /// The first `limit` bytes at most of file `rel` of the artifact tree at location `uri`, and
    /// whether it is longer; `None` when there is no such file.
    fn read_artifact_head(
        &self,
        uri: &str,
        rel: &str,
        limit: usize,
    ) -> impl Future<Output = Result<Option<(Bytes, bool)>>> + Send;

    /// Uploads the files of the artifact tree at location `files` into the storage of the new
    /// Unity Catalog version `name`/`version` (at `storage_location`).
    fn upload_model_version_files(
        &self,
        name: &str,
        version: &str,
        storage_location: &str,
        files: &str,
    ) -> impl Future<Output = Result<Uploaded>> + Send {
        let _ = (name, version, storage_location, files);
        async { Err(unsupported(self.server(), "Unity Catalog model versions")) }
    }

    /// Marks a Unity Catalog version whose files are uploaded `READY`.
    fn finalize_model_version(
        &self,
        name: &str,
        version: &str,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, version);
        async { Err(unsupported(self.server(), "Unity Catalog model versions")) }
    }

    /// Whether the server is a Databricks workspace: the token decides every object's user,
    /// some `mlflow.*` tags are the server's own, and runs' notebooks can be placed in its tree.
    fn is_databricks(&self) -> bool {
        false
    }

    /// Makes experiment `name`'s parent directory (a Databricks experiment is a node of the
    /// workspace tree, and its parent must exist).
    fn ensure_experiment_dir(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = name;
        async { Ok(()) }
    }

    /// Imports the notebook exported with run `run_id` (its artifacts `notebooks/manifest.json`
    /// and `notebooks/<name>.<format>`, under `artifact_uri`) into workspace directory `dir`,
    /// and points the run's notebook tags at it; returns the notebook's new path.
    fn place_notebook(
        &self,
        run_id: &str,
        artifact_uri: &str,
        dir: &str,
    ) -> impl Future<Output = Result<String>> + Send {
        let _ = (run_id, artifact_uri, dir);
        async { Err(unsupported(self.server(), "workspace notebooks")) }
    }

    /// Whether the server has MLflow workspaces (`--enable-workspaces`).
    fn workspaces_enabled(&self) -> impl Future<Output = Result<bool>> + Send {
        async { Ok(false) }
    }

    /// The same destination, writing into MLflow workspace `name`.
    fn in_workspace(&self, name: &str) -> Self {
        let _ = name;
        self.clone()
    }

    /// Makes MLflow workspace `name` (one that exists is left as it is).
    fn create_workspace(&self, name: &str) -> impl Future<Output = Result<()>> + Send {
        let _ = name;
        async { Err(unsupported(self.server(), "workspaces")) }
    }

    /// A trace's info (MLflow 3), if the server has that trace.
    fn trace_info(&self, trace_id: &str) -> impl Future<Output = Result<Option<TraceInfo>>> + Send {
        let _ = trace_id;
        async { Err(unsupported(self.server(), "traces")) }
    }

    /// Writes a trace's info (an upsert); the answer holds its artifact location.
    fn start_trace(&self, info: &TraceInfo) -> impl Future<Output = Result<TraceInfo>> + Send {
        let _ = info;
        async { Err(unsupported(self.server(), "traces")) }
    }

    /// Writes a trace's spans from its stored span document; `Ok(Err(why))` when the document
    /// cannot travel that way (nothing was sent).
    fn log_spans(
        &self,
        experiment_id: &str,
        trace_id: &str,
        document: &[u8],
    ) -> impl Future<Output = Result<std::result::Result<(), String>>> + Send {
        let _ = (experiment_id, trace_id, document);
        async { Err(unsupported(self.server(), "traces")) }
    }

    /// Creates one assessment on a trace.
    fn create_assessment(
        &self,
        trace_id: &str,
        assessment: &serde_json::Value,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (trace_id, assessment);
        async { Err(unsupported(self.server(), "traces")) }
    }

    /// Links a trace to prompt versions (name, version).
    fn link_prompts_to_trace(
        &self,
        trace_id: &str,
        versions: &[(String, String)],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (trace_id, versions);
        async { Err(unsupported(self.server(), "traces")) }
    }

    /// The evaluation datasets named `name`.
    fn datasets_named(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<EvaluationDataset>>> + Send {
        let _ = name;
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// Creates an evaluation dataset.
    fn create_dataset(
        &self,
        name: &str,
        experiment_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<EvaluationDataset>> + Send {
        let _ = (name, experiment_ids, tags);
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// The experiments a dataset is linked to.
    fn dataset_experiment_ids(
        &self,
        dataset_id: &str,
    ) -> impl Future<Output = Result<Vec<String>>> + Send {
        let _ = dataset_id;
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// Links a dataset to more experiments.
    fn add_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (dataset_id, experiment_ids);
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// Sets tags of a dataset (merged with its others).
    fn set_dataset_tags(
        &self,
        dataset_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (dataset_id, tags);
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// Upserts records into a dataset (one per distinct `inputs`).
    fn upsert_dataset_records(
        &self,
        dataset_id: &str,
        records: &[serde_json::Value],
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (dataset_id, records);
        async { Err(unsupported(self.server(), "evaluation datasets")) }
    }

    /// Where the destination keeps permissions: `None` on a server that keeps none (MLflow's
    /// own), else the Databricks registry its models are in (a model's permissions are an access
    /// control list in the workspace registry, grants in Unity Catalog; an experiment's are an
    /// access control list).
    fn permission_registry(&self) -> Option<Registry> {
        None
    }

    /// The access control list object of workspace-registry model `name`.
    fn model_acl_object(&self, name: &str) -> impl Future<Output = Result<AclObject>> + Send {
        let _ = name;
        async { Err(unsupported(self.server(), "permissions")) }
    }

    /// Adds one entry to an object's access control list, or sets its principal's level.
    fn patch_acl(
        &self,
        object: &AclObject,
        entry: &AccessControl,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (object, entry);
        async { Err(unsupported(self.server(), "permissions")) }
    }

    /// Grants one principal privileges on Unity Catalog model `name`.
    fn add_grant(
        &self,
        name: &str,
        grant: &PrivilegeAssignment,
    ) -> impl Future<Output = Result<()>> + Send {
        let _ = (name, grant);
        async { Err(unsupported(self.server(), "permissions")) }
    }
}

/// The error of a destination that keeps no objects of a kind (the in-memory server keeps no
/// traces or datasets).
fn unsupported(server: &str, what: &str) -> crate::Error {
    crate::Error::Config(format!("{server} keeps no {what}"))
}

impl Destination for Client {
    fn server(&self) -> &str {
        Client::server(self)
    }

    fn retry_config(&self) -> RetryConfig {
        self.inner.retry.clone()
    }

    fn user(&self) -> Option<String> {
        match &self.config().auth {
            Auth::Basic { username, .. } => Some(username.clone()),
            _ => None,
        }
    }

    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        self.get_experiment_by_name(name).await
    }

    async fn create_experiment(&self, name: &str, tags: &[KeyValue]) -> Result<String> {
        Client::create_experiment(self, name, None, tags).await
    }

    fn is_databricks(&self) -> bool {
        self.config().is_databricks()
    }

    async fn ensure_experiment_dir(&self, name: &str) -> Result<()> {
        if !self.config().is_databricks() {
            return Ok(());
        }
        match name.rsplit_once('/') {
            Some((parent, _)) if parent.starts_with('/') && parent.len() > 1 => {
                self.workspace_mkdirs(parent).await
            }
            _ => Ok(()),
        }
    }

    async fn place_notebook(&self, run_id: &str, artifact_uri: &str, dir: &str) -> Result<String> {
        crate::transfer::import::notebooks::place(self, run_id, artifact_uri, dir).await
    }

    async fn runs_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<Run>> {
        use futures_util::TryStreamExt;
        match value {
            Some(v) => self.find_runs_by_tag(experiment, key, v).await,
            None => {
                let filter = format!("tags.`{}` LIKE '%'", key.replace('`', ""));
                self.search_runs(&[experiment], Some(&filter), ViewType::All)
                    .try_collect()
                    .await
            }
        }
    }

    async fn create_run(&self, req: &CreateRun) -> Result<Run> {
        Client::create_run(self, req).await
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        Client::get_run(self, run_id).await
    }

    async fn update_run(&self, req: &UpdateRun) -> Result<()> {
        Client::update_run(self, req).await.map(drop)
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<()> {
        Client::log_batch(self, run_id, metrics, params, tags).await
    }

    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()> {
        Client::log_inputs(self, run_id, datasets, models).await
    }

    async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        Client::log_outputs(self, run_id, models).await
    }

    async fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        Client::set_run_tag(self, run_id, key, value).await
    }

    async fn delete_run(&self, run_id: &str) -> Result<()> {
        Client::delete_run(self, run_id).await
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        gone_is_done(Client::delete_run_tag(self, run_id, key).await)
    }

    async fn restore_run(&self, run_id: &str) -> Result<()> {
        Client::restore_run(self, run_id).await
    }

    async fn upload(
        &self,
        root: &ArtifactRoot,
        path: &str,
        size: u64,
        body: BoxStream<'static, Result<Bytes>>,
    ) -> Result<()> {
        self.upload_artifact(root, path, size, body).await
    }

    async fn upload_bytes(&self, root: &ArtifactRoot, path: &str, data: Bytes) -> Result<()> {
        self.upload_artifact_bytes(root, path, data).await
    }

    async fn logged_models_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<LoggedModel>> {
        use futures_util::TryStreamExt;
        let filter = format!(
            "tags.`{}` = {}",
            key.replace('`', ""),
            crate::mlflow::api::registry::filter_quote(value)
        );
        self.search_logged_models(&[experiment], Some(&filter))
            .try_collect()
            .await
    }

    async fn create_logged_model(&self, req: &CreateLoggedModel) -> Result<LoggedModel> {
        Client::create_logged_model(self, req).await
    }

    async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<()> {
        Client::finalize_logged_model(self, model_id, status)
            .await
            .map(drop)
    }

    async fn set_logged_model_tags(&self, model_id: &str, tags: &[KeyValue]) -> Result<()> {
        Client::set_logged_model_tags(self, model_id, tags).await
    }

    async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        Client::delete_logged_model(self, model_id).await
    }

    async fn registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.get_registered_model(name).await
    }

    async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<()> {
        Client::create_registered_model(self, name, description, tags)
            .await
            .map(drop)
    }

    async fn update_registered_model(&self, name: &str, description: &str) -> Result<()> {
        Client::update_registered_model(self, name, description).await
    }

    async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        Client::set_registered_model_tag(self, name, key, value).await
    }

    async fn delete_registered_model(&self, name: &str) -> Result<()> {
        Client::delete_registered_model(self, name).await
    }

    async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        gone_is_done(Client::delete_registered_model_tag(self, name, key).await)
    }

    async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        gone_is_done(self.delete_registered_model_alias(name, alias).await)
    }

    async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<()> {
        Client::update_model_version(self, name, version, description).await
    }

    async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        Client::set_model_version_tag(self, name, version, key, value).await
    }

    async fn delete_model_version_tag(&self, name: &str, version: &str, key: &str) -> Result<()> {
        gone_is_done(Client::delete_model_version_tag(self, name, version, key).await)
    }

    async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.all_model_versions(name).await
    }

    async fn create_model_version(&self, req: &CreateModelVersion) -> Result<ModelVersion> {
        Client::create_model_version(self, req).await
    }

    async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        Client::delete_model_version(self, name, version).await
    }

    async fn wait_model_version_ready(&self, name: &str, version: &str) -> Result<()> {
        Client::wait_model_version_ready(self, name, version, std::time::Duration::from_secs(300))
            .await
            .map(drop)
    }

    async fn transition_stage(&self, name: &str, version: &str, stage: &str) -> Result<()> {
        self.transition_model_version_stage(name, version, stage, false)
            .await
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.set_registered_model_alias(name, alias, version).await
    }

    fn registry(&self) -> RegistryKind {
        self.registry_kind()
    }

    async fn tracking_server_id(&self, run_id: &str) -> Result<Option<String>> {
        Client::tracking_server_id(self, run_id).await
    }

    async fn read_artifact_head(
        &self,
        uri: &str,
        rel: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, bool)>> {
        let root = ArtifactRoot::parse(uri)?;
        Client::read_artifact_head(self, &root, rel, limit).await
    }

    async fn upload_model_version_files(
        &self,
        name: &str,
        version: &str,
        storage_location: &str,
        files: &str,
    ) -> Result<Uploaded> {
        let root = ArtifactRoot::parse(files)?;
        Client::upload_model_version_files(self, name, version, storage_location, &root).await
    }

    async fn finalize_model_version(&self, name: &str, version: &str) -> Result<()> {
        Client::finalize_model_version(self, name, version)
            .await
            .map(drop)
    }

    async fn workspaces_enabled(&self) -> Result<bool> {
        Client::workspaces_enabled(self).await
    }

    fn in_workspace(&self, name: &str) -> Self {
        Client::in_workspace(self, name)
    }

    async fn create_workspace(&self, name: &str) -> Result<()> {
        Client::create_workspace(self, name, "").await
    }

    async fn trace_info(&self, trace_id: &str) -> Result<Option<TraceInfo>> {
        self.get_trace_info(trace_id).await
    }

    async fn start_trace(&self, info: &TraceInfo) -> Result<TraceInfo> {
        Client::start_trace(self, info).await
    }

    async fn log_spans(
        &self,
        experiment_id: &str,
        trace_id: &str,
        document: &[u8],
    ) -> Result<std::result::Result<(), String>> {
        Client::log_spans(self, experiment_id, trace_id, document).await
    }

    async fn create_assessment(
        &self,
        trace_id: &str,
        assessment: &serde_json::Value,
    ) -> Result<()> {
        Client::create_assessment(self, trace_id, assessment).await
    }

    async fn link_prompts_to_trace(
        &self,
        trace_id: &str,
        versions: &[(String, String)],
    ) -> Result<()> {
        Client::link_prompts_to_trace(self, trace_id, versions).await
    }

    async fn datasets_named(&self, name: &str) -> Result<Vec<EvaluationDataset>> {
        self.find_datasets_by_name(name).await
    }

    async fn create_dataset(
        &self,
        name: &str,
        experiment_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<EvaluationDataset> {
        Client::create_dataset(self, name, experiment_ids, tags).await
    }

    async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        Client::dataset_experiment_ids(self, dataset_id).await
    }

    async fn add_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
    ) -> Result<()> {
        Client::add_dataset_experiments(self, dataset_id, experiment_ids).await
    }

    async fn set_dataset_tags(
        &self,
        dataset_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        Client::set_dataset_tags(self, dataset_id, tags).await
    }

    async fn upsert_dataset_records(
        &self,
        dataset_id: &str,
        records: &[serde_json::Value],
    ) -> Result<()> {
        Client::upsert_dataset_records(self, dataset_id, records)
            .await
            .map(drop)
    }

    fn permission_registry(&self) -> Option<Registry> {
        self.config().databricks.as_ref().map(|d| d.registry)
    }

    async fn model_acl_object(&self, name: &str) -> Result<AclObject> {
        self.registered_model_acl_object(name).await
    }

    async fn patch_acl(&self, object: &AclObject, entry: &AccessControl) -> Result<()> {
        Client::patch_acl(self, object, entry).await
    }

    async fn add_grant(&self, name: &str, grant: &PrivilegeAssignment) -> Result<()> {
        self.add_uc_grant(name, grant).await
    }
}

/// A deletion whose object is gone already (a sync killed after deleting it, or another sync
/// at the same time) is done.
fn gone_is_done(r: Result<()>) -> Result<()> {
    match r {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}
