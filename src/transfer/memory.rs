//! A tracking server in memory: a [`Destination`] that keeps MLflow's rules, for tests of what
//! writes to a server (the import's resume protocol, deferred links, version renumbering) that
//! run in milliseconds, without MLflow; and a [`Source`](super::source::Source)
//! (`memory/source.rs`), so that an export reads back what was written.
//!
//! The rules it keeps, as MLflow 3's REST API does: ids are assigned by the server; names of
//! experiments and registered models are unique; a run's param cannot change value; a deleted run
//! refuses writes; version numbers are one more than the highest ever given (a deleted version
//! leaves a gap); a create whose answer is lost is found again by its marker tag. Failures are
//! injected with [`MemoryServer::fail_from`]: from the n-th call on, every call fails as if the
//! server (or the importing process) had gone, which is how a kill at any point is tested.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};

use super::destination::Destination;
use crate::error::{Error, Result, TransportKind};
use crate::mlflow::api::registry::RegistryKind;
use crate::mlflow::databricks::uc::Uploaded;
use crate::mlflow::types::{
    Alias, DatasetInput, Experiment, KeyValue, LoggedModel, LoggedModelInfo, Metric, ModelInput,
    ModelOutput, ModelVersion, RegisteredModel, Run, RunInfo,
};
use crate::mlflow::{ArtifactRoot, CreateLoggedModel, CreateModelVersion, CreateRun, UpdateRun};

mod permissions;
mod source;
mod state;

use state::{api, has_tag, not_found, upsert};

/// An MLflow tracking server held in memory. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryServer {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    experiments: Vec<Experiment>,
    runs: BTreeMap<String, Run>,
    /// Every point ever logged, by run.
    histories: BTreeMap<String, Vec<Metric>>,
    logged_models: BTreeMap<String, LoggedModel>,
    models: BTreeMap<String, Registered>,
    /// Files by (artifact root URI, path).
    files: BTreeMap<(String, String), Bytes>,
    next_id: u64,
    calls: u64,
    /// The calls made, by name.
    log: Vec<&'static str>,
    /// Every version create is preceded by a twin ([`MemoryServer::twin_versions`]).
    twins: bool,
    fail_from: Option<u64>,
    /// Permissions, when the server keeps them ([`MemoryServer::keep_permissions`]).
    perms: Option<permissions::Perms>,
    /// The registry it behaves as (MLflow's when `None`).
    registry: Option<RegistryKind>,
    /// Each call's wait before it is served ([`MemoryServer::set_latency`]).
    latency: Option<std::time::Duration>,
    /// Calls waiting or served now, and the most at once, by name.
    in_flight: BTreeMap<&'static str, (usize, usize)>,
    /// Pairs of methods that had calls in flight at the same moment.
    overlapped: std::collections::BTreeSet<(&'static str, &'static str)>,
    /// The most items (metrics, params and tags) one `log_batch` call carried.
    largest_batch: usize,
}

#[derive(Debug, Default)]
struct Registered {
    model: RegisteredModel,
    /// Every version ever created, deleted ones included (they keep their number).
    versions: Vec<(ModelVersion, bool)>,
}

impl MemoryServer {
    /// Every call from the `n`-th on (counting from 1, from now) fails as an unreachable server
    /// would; `None` heals it.
    pub fn fail_from(&self, n: Option<u64>) {
        let mut s = self.lock();
        s.fail_from = n.map(|n| s.calls + n);
    }

    /// The calls made so far, by the name of the [`Destination`] method.
    pub fn log(&self) -> Vec<&'static str> {
        self.lock().log.clone()
    }

    /// Simulates another import creating the same version a moment earlier: from now on, each
    /// create of a model version is preceded by a twin (same source, tags and description).
    pub fn twin_versions(&self, on: bool) {
        self.lock().twins = on;
    }

    /// Makes its registry behave as one of `kind`: a Databricks workspace's (no aliases), or
    /// Unity Catalog's (three-level names, no stages, versions `PENDING_REGISTRATION` until
    /// their files are uploaded and they are finalized).
    pub fn set_registry(&self, kind: RegistryKind) {
        self.lock().registry = Some(kind);
    }

    /// A network between client and server: from now on, each call waits `latency` before it
    /// is served, and the most calls of each kind in flight at once are counted ([`MemoryServer::most_in_flight`]).
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.lock().latency = Some(latency);
    }

    /// The most items (metrics, params and tags together) one `log_batch` call carried: a real
    /// server takes 1,000 per request, and the HTTP client splits a larger call into requests.
    pub fn largest_batch(&self) -> usize {
        self.lock().largest_batch
    }

    /// The most calls of method `name` that were in flight at once (with a latency set).
    pub fn most_in_flight(&self, name: &str) -> usize {
        self.lock().in_flight.get(name).map_or(0, |(_, most)| *most)
    }

    /// Whether calls of methods `a` and `b` were ever in flight at the same moment (with a
    /// latency set).
    pub fn overlapped(&self, a: &str, b: &str) -> bool {
        let (a, b) = if a <= b { (a, b) } else { (b, a) };
        self.lock()
            .overlapped
            .iter()
            .any(|(x, y)| *x == a && *y == b)
    }

    /// The latency of a call of `name`, counted in flight meanwhile.
    async fn pause(&self, name: &'static str) {
        let Some(latency) = self.lock().latency else {
            return;
        };
        {
            let mut s = self.lock();
            let busy: Vec<&'static str> = s
                .in_flight
                .iter()
                .filter(|(_, (now, _))| *now > 0)
                .map(|(n, _)| *n)
                .collect();
            for other in busy {
                let pair = if name <= other {
                    (name, other)
                } else {
                    (other, name)
                };
                s.overlapped.insert(pair);
            }
            let (now, most) = s.in_flight.entry(name).or_default();
            *now += 1;
            *most = (*most).max(*now);
        }
        tokio::time::sleep(latency).await;
        let mut s = self.lock();
        if let Some((now, _)) = s.in_flight.get_mut(name) {
            *now = now.saturating_sub(1);
        }
    }

    /// How many calls were made so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Every run of the experiment named `experiment`, deleted ones included.
    pub fn runs_of(&self, experiment: &str) -> Vec<Run> {
        let s = self.lock();
        let Some(e) = s.experiments.iter().find(|e| e.name == experiment) else {
            return Vec::new();
        };
        s.runs
            .values()
            .filter(|r| r.info.experiment_id == e.experiment_id)
            .cloned()
            .collect()
    }

    /// Every point logged to a run, in the order logged.
    pub fn history(&self, run_id: &str) -> Vec<Metric> {
        self.lock()
            .histories
            .get(run_id)
            .cloned()
            .unwrap_or_default()
    }

    /// The files of an artifact root, by path.
    pub fn files(&self, root_uri: &str) -> BTreeMap<String, Bytes> {
        self.lock()
            .files
            .iter()
            .filter(|((r, _), _)| r == root_uri)
            .map(|((_, p), b)| (p.clone(), b.clone()))
            .collect()
    }

    /// Every logged model.
    pub fn logged_models(&self) -> Vec<LoggedModel> {
        self.lock().logged_models.values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts a call and fails it when failures were asked for.
    fn call(&self, name: &'static str) -> Result<MutexGuard<'_, State>> {
        let mut s = self.lock();
        s.calls += 1;
        s.log.push(name);
        if s.fail_from.is_some_and(|n| s.calls >= n) {
            return Err(Error::Transport {
                call: "memory".into(),
                server: "memory".into(),
                kind: TransportKind::Connect,
                cause: "the server is gone (injected)".into(),
            });
        }
        Ok(s)
    }
}

impl Destination for MemoryServer {
    fn server(&self) -> &str {
        "memory"
    }

    fn user(&self) -> Option<String> {
        Some("memory-user".into())
    }

    async fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        self.pause("experiment_by_name").await;
        let s = self.call("experiment_by_name")?;
        Ok(s.experiments.iter().find(|e| e.name == name).cloned())
    }

    async fn create_experiment(&self, name: &str, tags: &[KeyValue]) -> Result<String> {
        self.pause("create_experiment").await;
        let mut s = self.call("create_experiment")?;
        if s.experiments.iter().any(|e| e.name == name) {
            return Err(api(
                400,
                "RESOURCE_ALREADY_EXISTS",
                format!("experiment {name:?} exists"),
            ));
        }
        let id = (s.experiments.len() + 1).to_string();
        s.experiments.push(Experiment {
            experiment_id: id.clone(),
            name: name.to_string(),
            artifact_location: format!("mlflow-artifacts:/{id}"),
            lifecycle_stage: "active".into(),
            tags: tags.to_vec(),
            ..Experiment::default()
        });
        Ok(id)
    }

    async fn runs_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<Vec<Run>> {
        self.pause("runs_tagged").await;
        let s = self.call("runs_tagged")?;
        Ok(s.runs
            .values()
            .filter(|r| r.info.experiment_id == experiment && has_tag(&r.data.tags, key, value))
            .cloned()
            .collect())
    }

    async fn create_run(&self, req: &CreateRun) -> Result<Run> {
        self.pause("create_run").await;
        let mut s = self.call("create_run")?;
        if !s
            .experiments
            .iter()
            .any(|e| e.experiment_id == req.experiment_id)
        {
            return Err(not_found(format!("experiment {}", req.experiment_id)));
        }
        let id = s.id();
        let mut tags = req.tags.clone();
        if let Some(name) = &req.run_name {
            upsert(&mut tags, "mlflow.runName", name);
        }
        let mut run = Run {
            info: RunInfo {
                run_id: id.clone(),
                experiment_id: req.experiment_id.clone(),
                run_name: req.run_name.clone().unwrap_or_default(),
                status: "RUNNING".into(),
                start_time: req.start_time,
                artifact_uri: format!("mlflow-artifacts:/{}/{id}/artifacts", req.experiment_id),
                lifecycle_stage: "active".into(),
                ..RunInfo::default()
            },
            ..Run::default()
        };
        run.data.tags = tags;
        s.runs.insert(id.clone(), run.clone());
        s.histories.insert(id, Vec::new());
        Ok(run)
    }

    async fn get_run(&self, run_id: &str) -> Result<Run> {
        self.pause("get_run").await;
        let s = self.call("get_run")?;
        s.runs
            .get(run_id)
            .cloned()
            .ok_or_else(|| not_found(format!("run {run_id}")))
    }

    async fn update_run(&self, req: &UpdateRun) -> Result<()> {
        self.pause("update_run").await;
        let mut s = self.call("update_run")?;
        let run = s.active_run(&req.run_id)?;
        if let Some(status) = &req.status {
            run.info.status.clone_from(status);
        }
        if req.end_time.is_some() {
            run.info.end_time = req.end_time;
        }
        Ok(())
    }

    async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<()> {
        self.pause("log_batch").await;
        let mut s = self.call("log_batch")?;
        s.largest_batch = s
            .largest_batch
            .max(metrics.len() + params.len() + tags.len());
        let run = s.active_run(run_id)?;
        for p in params {
            match run.data.params.iter().find(|x| x.key == p.key) {
                Some(x) if x.value != p.value => {
                    return Err(api(
                        400,
                        "INVALID_PARAMETER_VALUE",
                        format!("Changing param values is not allowed (param {:?})", p.key),
                    ));
                }
                Some(_) => {}
                None => run.data.params.push(p.clone()),
            }
        }
        for t in tags {
            upsert(&mut run.data.tags, &t.key, &t.value);
        }
        // As MLflow's SQL store: a point identical to one the run has is kept once.
        let history = s.histories.entry(run_id.to_string()).or_default();
        let point = |m: &Metric| (m.key.clone(), m.timestamp, m.step, m.value.to_bits());
        let mut had: std::collections::HashSet<_> = history.iter().map(point).collect();
        for m in metrics {
            if had.insert(point(m)) {
                history.push(m.clone());
            }
        }
        Ok(())
    }

    async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()> {
        self.pause("log_inputs").await;
        let mut s = self.call("log_inputs")?;
        let run = s.active_run(run_id)?;
        run.inputs.dataset_inputs.extend(datasets.iter().cloned());
        run.inputs.model_inputs.extend(models.iter().cloned());
        Ok(())
    }

    async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        self.pause("log_outputs").await;
        let mut s = self.call("log_outputs")?;
        let run = s.active_run(run_id)?;
        run.outputs.model_outputs.extend(models.iter().cloned());
        Ok(())
    }

    async fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        self.pause("set_run_tag").await;
        let mut s = self.call("set_run_tag")?;
        let run = s.active_run(run_id)?;
        upsert(&mut run.data.tags, key, value);
        Ok(())
    }

    async fn delete_run(&self, run_id: &str) -> Result<()> {
        self.pause("delete_run").await;
        let mut s = self.call("delete_run")?;
        let run = s
            .runs
            .get_mut(run_id)
            .ok_or_else(|| not_found(format!("run {run_id}")))?;
        run.info.lifecycle_stage = "deleted".into();
        Ok(())
    }

    async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        self.pause("delete_run_tag").await;
        let mut s = self.call("delete_run_tag")?;
        let run = s.active_run(run_id)?;
        run.data.tags.retain(|t| t.key != key);
        Ok(())
    }

    async fn restore_run(&self, run_id: &str) -> Result<()> {
        self.pause("restore_run").await;
        let mut s = self.call("restore_run")?;
        let run = s
            .runs
            .get_mut(run_id)
            .ok_or_else(|| not_found(format!("run {run_id}")))?;
        run.info.lifecycle_stage = "active".into();
        Ok(())
    }

    async fn upload(
        &self,
        root: &ArtifactRoot,
        path: &str,
        size: u64,
        mut body: BoxStream<'static, Result<Bytes>>,
    ) -> Result<()> {
        self.pause("upload").await;
        drop(self.call("upload")?);
        let mut data = Vec::new();
        while let Some(chunk) = body.next().await {
            data.extend_from_slice(&chunk?);
        }
        if data.len() as u64 != size {
            return Err(Error::Input(format!(
                "upload of {path}: {} bytes, not {size}",
                data.len()
            )));
        }
        self.lock()
            .files
            .insert((root.uri().to_string(), path.to_string()), data.into());
        Ok(())
    }

    async fn upload_bytes(&self, root: &ArtifactRoot, path: &str, data: Bytes) -> Result<()> {
        self.pause("upload_bytes").await;
        let mut s = self.call("upload_bytes")?;
        s.files
            .insert((root.uri().to_string(), path.to_string()), data);
        Ok(())
    }

    async fn logged_models_tagged(
        &self,
        experiment: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<LoggedModel>> {
        self.pause("logged_models_tagged").await;
        let s = self.call("logged_models_tagged")?;
        Ok(s.logged_models
            .values()
            .filter(|m| {
                m.info.experiment_id == experiment && has_tag(&m.info.tags, key, Some(value))
            })
            .cloned()
            .collect())
    }

    async fn create_logged_model(&self, req: &CreateLoggedModel) -> Result<LoggedModel> {
        self.pause("create_logged_model").await;
        let mut s = self.call("create_logged_model")?;
        let id = format!("m-{}", s.id());
        let model = LoggedModel {
            info: LoggedModelInfo {
                model_id: id.clone(),
                experiment_id: req.experiment_id.clone(),
                name: req.name.clone().unwrap_or_default(),
                artifact_uri: format!(
                    "mlflow-artifacts:/{}/models/{id}/artifacts",
                    req.experiment_id
                ),
                status: "LOGGED_MODEL_PENDING".into(),
                model_type: req.model_type.clone().unwrap_or_default(),
                source_run_id: req.source_run_id.clone().unwrap_or_default(),
                tags: req.tags.clone(),
                ..LoggedModelInfo::default()
            },
            data: crate::mlflow::types::LoggedModelData {
                params: req.params.clone(),
                ..Default::default()
            },
        };
        s.logged_models.insert(id, model.clone());
        Ok(model)
    }

    async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<()> {
        self.pause("finalize_logged_model").await;
        let mut s = self.call("finalize_logged_model")?;
        s.logged_model(model_id)?.info.status = status.to_string();
        Ok(())
    }

    async fn set_logged_model_tags(&self, model_id: &str, tags: &[KeyValue]) -> Result<()> {
        self.pause("set_logged_model_tags").await;
        let mut s = self.call("set_logged_model_tags")?;
        let m = s.logged_model(model_id)?;
        for t in tags {
            upsert(&mut m.info.tags, &t.key, &t.value);
        }
        Ok(())
    }

    async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        self.pause("delete_logged_model").await;
        let mut s = self.call("delete_logged_model")?;
        s.logged_models
            .remove(model_id)
            .map(drop)
            .ok_or_else(|| not_found(format!("logged model {model_id}")))
    }

    async fn registered_model(&self, name: &str) -> Result<RegisteredModel> {
        self.pause("registered_model").await;
        let mut s = self.call("registered_model")?;
        Ok(s.registered(name)?.model.clone())
    }

    async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<()> {
        self.pause("create_registered_model").await;
        let mut s = self.call("create_registered_model")?;
        if s.registry == Some(RegistryKind::UnityCatalog)
            && (name.split('.').count() != 3 || name.to_lowercase() != name)
        {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                format!("Model name must specify all three levels (in lower case): {name:?}"),
            ));
        }
        if s.models.contains_key(name) {
            return Err(api(
                400,
                "RESOURCE_ALREADY_EXISTS",
                format!("registered model {name:?} exists"),
            ));
        }
        let model = RegisteredModel {
            name: name.to_string(),
            description: description.unwrap_or_default().to_string(),
            tags: tags.to_vec(),
            ..RegisteredModel::default()
        };
        s.models.insert(
            name.to_string(),
            Registered {
                model,
                versions: Vec::new(),
            },
        );
        Ok(())
    }

    async fn update_registered_model(&self, name: &str, description: &str) -> Result<()> {
        self.pause("update_registered_model").await;
        let mut s = self.call("update_registered_model")?;
        s.registered(name)?.model.description = description.to_string();
        Ok(())
    }

    async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        self.pause("set_registered_model_tag").await;
        let mut s = self.call("set_registered_model_tag")?;
        upsert(&mut s.registered(name)?.model.tags, key, value);
        Ok(())
    }

    async fn delete_registered_model(&self, name: &str) -> Result<()> {
        self.pause("delete_registered_model").await;
        let mut s = self.call("delete_registered_model")?;
        s.models
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found(format!("registered model {name:?}")))
    }

    async fn model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        self.pause("model_versions").await;
        let mut s = self.call("model_versions")?;
        let r = s.registered(name)?;
        let mut v: Vec<ModelVersion> = r
            .versions
            .iter()
            .filter(|(_, deleted)| !deleted)
            .map(|(v, _)| v.clone())
            .collect();
        v.sort_by_key(ModelVersion::number);
        Ok(v)
    }

    async fn create_model_version(&self, req: &CreateModelVersion) -> Result<ModelVersion> {
        self.pause("create_model_version").await;
        let mut s = self.call("create_model_version")?;
        let uc = s.registry == Some(RegistryKind::UnityCatalog);
        if let Some(run) = &req.run_id
            && (req.source.starts_with("runs:/") && !s.runs.contains_key(run))
        {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                format!("Invalid model version source: {:?}", req.source),
            ));
        }
        if req.source.starts_with("models:/")
            && !req
                .model_id
                .as_ref()
                .is_some_and(|m| s.logged_models.contains_key(m))
        {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                format!(
                    "Invalid model version source: {:?}: the model_id request parameter must identify the resource",
                    req.source
                ),
            ));
        }
        let twin = s.twins;
        let r = s.registered(&req.name)?;
        if twin {
            let n = r
                .versions
                .iter()
                .map(|(v, _)| v.number())
                .max()
                .unwrap_or(0)
                + 1;
            let version = ModelVersion {
                name: req.name.clone(),
                version: n.to_string(),
                source: req.source.clone(),
                tags: req.tags.clone(),
                current_stage: "None".into(),
                status: "READY".into(),
                ..ModelVersion::default()
            };
            r.versions.push((version, false));
        }
        let number = r
            .versions
            .iter()
            .map(|(v, _)| v.number())
            .max()
            .unwrap_or(0)
            + 1;
        let version = ModelVersion {
            name: req.name.clone(),
            version: number.to_string(),
            source: req.source.clone(),
            run_id: req.run_id.clone().unwrap_or_default(),
            description: req.description.clone().unwrap_or_default(),
            tags: req.tags.clone(),
            run_link: req.run_link.clone().unwrap_or_default(),
            current_stage: "None".into(),
            status: "READY".into(),
            ..ModelVersion::default()
        };
        let version = if uc {
            ModelVersion {
                current_stage: String::new(),
                run_link: String::new(),
                status: "PENDING_REGISTRATION".into(),
                storage_location: format!("mem-uc:/{}/{number}", req.name),
                run_tracking_server_id: req.run_tracking_server_id.clone().unwrap_or_default(),
                ..version
            }
        } else {
            version
        };
        r.versions.push((version.clone(), false));
        if let Some(m) = &req.model_id
            && let Some(lm) = s.logged_models.get_mut(m)
        {
            // What MLflow records on the logged model for every version made from it.
            let entry = format!(r#"{{"name": {:?}, "version": {number}}}"#, req.name);
            let tag = lm
                .info
                .tags
                .iter()
                .find(|t| t.key == "mlflow.modelVersions");
            let list = match tag.map(|t| t.value.trim_end_matches(']').to_string()) {
                Some(prefix) if prefix.len() > 1 => format!("{prefix}, {entry}]"),
                _ => format!("[{entry}]"),
            };
            upsert(&mut lm.info.tags, "mlflow.modelVersions", &list);
        }
        Ok(version)
    }

    async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        self.pause("delete_model_version").await;
        let mut s = self.call("delete_model_version")?;
        s.version(name, version)?.1 = true;
        s.registered(name)?
            .model
            .aliases
            .retain(|a| a.version != version);
        Ok(())
    }

    async fn wait_model_version_ready(&self, _name: &str, _version: &str) -> Result<()> {
        self.pause("wait_model_version_ready").await;
        drop(self.call("wait_model_version_ready")?);
        Ok(())
    }

    fn registry(&self) -> RegistryKind {
        self.lock().registry.unwrap_or(RegistryKind::Mlflow)
    }

    async fn read_artifact_head(
        &self,
        uri: &str,
        rel: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, bool)>> {
        self.pause("read_artifact_head").await;
        let s = self.call("read_artifact_head")?;
        let want = format!("{}/{rel}", uri.trim_end_matches('/'));
        Ok(s.files
            .iter()
            .find(|((root, path), _)| format!("{}/{path}", root.trim_end_matches('/')) == want)
            .map(|(_, b)| {
                let long = b.len() > limit;
                (b.slice(..b.len().min(limit)), long)
            }))
    }

    async fn upload_model_version_files(
        &self,
        name: &str,
        version: &str,
        storage_location: &str,
        files: &str,
    ) -> Result<Uploaded> {
        self.pause("upload_model_version_files").await;
        let mut s = self.call("upload_model_version_files")?;
        let under = format!("{}/", files.trim_end_matches('/'));
        let found: Vec<(String, Bytes)> = s
            .files
            .iter()
            .filter_map(|((root, path), b)| {
                let full = format!("{}/{path}", root.trim_end_matches('/'));
                full.strip_prefix(&under)
                    .map(|rel| (rel.to_string(), b.clone()))
            })
            .collect();
        let mut up = Uploaded::default();
        for (rel, b) in found {
            up.files += 1;
            up.bytes += b.len() as u64;
            s.files.insert((storage_location.to_string(), rel), b);
        }
        let v = &mut s.version(name, version)?.0;
        if v.status != "PENDING_REGISTRATION" {
            return Err(api(
                400,
                "INVALID_STATE",
                format!("model {name:?} version {version} is {}", v.status),
            ));
        }
        Ok(up)
    }

    async fn finalize_model_version(&self, name: &str, version: &str) -> Result<()> {
        self.pause("finalize_model_version").await;
        let mut s = self.call("finalize_model_version")?;
        s.version(name, version)?.0.status = "READY".into();
        Ok(())
    }

    async fn transition_stage(&self, name: &str, version: &str, stage: &str) -> Result<()> {
        self.pause("transition_stage").await;
        let mut s = self.call("transition_stage")?;
        if s.registry == Some(RegistryKind::UnityCatalog) {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                "stages are unsupported for models in the Unity Catalog".into(),
            ));
        }
        s.version(name, version)?.0.current_stage = stage.to_string();
        Ok(())
    }

    async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<()> {
        self.pause("set_alias").await;
        let mut s = self.call("set_alias")?;
        if s.registry == Some(RegistryKind::DatabricksWorkspace) {
            return Err(api(
                400,
                "INVALID_PARAMETER_VALUE",
                "aliases are not supported for models in the Workspace Model Registry".into(),
            ));
        }
        let r = s.registered(name)?;
        r.model.aliases.retain(|a| a.alias != alias);
        r.model.aliases.push(Alias {
            alias: alias.to_string(),
            version: version.to_string(),
        });
        Ok(())
    }

    fn permission_registry(&self) -> Option<crate::mlflow::databricks::Registry> {
        self.registry()
    }

    async fn model_acl_object(
        &self,
        name: &str,
    ) -> Result<crate::mlflow::databricks::permissions::AclObject> {
        self.model_object(name)
    }

    async fn patch_acl(
        &self,
        object: &crate::mlflow::databricks::permissions::AclObject,
        entry: &crate::mlflow::databricks::permissions::AccessControl,
    ) -> Result<()> {
        self.patch(object, entry)
    }

    async fn add_grant(
        &self,
        name: &str,
        grant: &crate::mlflow::databricks::permissions::PrivilegeAssignment,
    ) -> Result<()> {
        self.grant(name, grant)
    }
}
