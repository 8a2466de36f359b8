//! The model registry: registered models, their tags and aliases, and model versions.
//!
//! One client for every registry a server may have: MLflow's own (`api/2.0/mlflow/...`), the
//! Databricks workspace registry (the same paths on a workspace), and Unity Catalog
//! (`api/2.0/mlflow/unity-catalog/...`, chosen by a `databricks-uc` URI), whose differences are
//! handled here: three-level names, no stages, searches without filters or ordering (versions by
//! `name = '…'` only), `run_tracking_server_id` instead of `run_link`, versions created
//! `PENDING_REGISTRATION` until their files are uploaded and the version finalized (see
//! [`crate::mlflow::databricks`]).

use std::time::{Duration, Instant};

use futures_util::Stream;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use url::Url;

use crate::error::{Error, Result};
use crate::mlflow::config::{DatabricksWorkspace, Registry};
use crate::mlflow::http::set_query;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::types::{KeyValue, ModelVersion, RegisteredModel};
use crate::mlflow::{Client, paginate};

/// The kind of model registry a client writes to and reads from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RegistryKind {
    /// MLflow's own registry: stages and aliases.
    #[default]
    Mlflow,
    /// A Databricks workspace's model registry: stages, no aliases.
    DatabricksWorkspace,
    /// Unity Catalog: aliases, no stages, three-level names, files uploaded by the client.
    UnityCatalog,
}

impl RegistryKind {
    /// Whether versions have stages (`None`, `Staging`, `Production`, `Archived`).
    pub fn has_stages(self) -> bool {
        self != RegistryKind::UnityCatalog
    }

    /// Whether registered models have aliases.
    pub fn has_aliases(self) -> bool {
        self != RegistryKind::DatabricksWorkspace
    }
}

/// What a new model version is made from.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateModelVersion {
    /// The registered model.
    pub name: String,
    /// Where the model's files are; must name a run or logged model on this server (see
    /// ../shared/MLFLOW-REST.md, "source validation").
    pub source: String,
    /// The run that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// A description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tags set at creation.
    pub tags: Vec<KeyValue>,
    /// A link to the run elsewhere (not sent to Unity Catalog, which has no such field).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_link: Option<String>,
    /// The Databricks workspace whose tracking server holds `run_id` (sent to Unity Catalog
    /// only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_tracking_server_id: Option<String>,
    /// The logged model it registers (MLflow 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// A tag among `tags` whose value is unique to this version: when the answer to the create is
    /// lost, a version of the model carrying it counts as created. Without it a lost answer is an
    /// [`crate::Error::Ambiguous`].
    #[serde(skip)]
    pub reconcile_tag: Option<String>,
}

#[derive(Deserialize)]
struct ModelAnswer {
    registered_model: RegisteredModel,
}

#[derive(Deserialize)]
struct VersionAnswer {
    model_version: ModelVersion,
}

#[derive(Deserialize, Default)]
struct ModelSearch {
    #[serde(default)]
    registered_models: Vec<RegisteredModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct VersionSearch {
    #[serde(default)]
    model_versions: Vec<ModelVersion>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// The filter that finds prompts (MLflow 3 stores a prompt as a registered model with this tag,
/// and its searches leave prompts out unless the filter names it).
pub const PROMPT_FILTER: &str = "tags.`mlflow.prompt.is_prompt` = 'true'";

/// Quotes a value for MLflow's search filters.
pub fn filter_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

impl Client {
    /// The kind of registry this client's registry calls go to: Unity Catalog for a
    /// `databricks-uc` URI, the workspace registry for a `databricks` one, else MLflow's.
    pub fn registry_kind(&self) -> RegistryKind {
        match &self.config().databricks {
            None => RegistryKind::Mlflow,
            Some(DatabricksWorkspace {
                registry: Registry::UnityCatalog,
                ..
            }) => RegistryKind::UnityCatalog,
            Some(_) => RegistryKind::DatabricksWorkspace,
        }
    }

    fn is_uc(&self) -> bool {
        self.registry_kind() == RegistryKind::UnityCatalog
    }

    /// The address of a registry endpoint (`registered-models/create`, ...): under
    /// `api/2.0/mlflow/unity-catalog/` for Unity Catalog, else `api/2.0/mlflow/`.
    pub(crate) fn registry_url(&self, endpoint: &str) -> Url {
        if self.is_uc() {
            self.api_url(&format!("unity-catalog/{endpoint}"))
        } else {
            self.api_url(endpoint)
        }
    }

    /// A JSON POST/PATCH/DELETE to a registry endpoint, decoding the answer.
    pub(crate) async fn registry_call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: &B,
        call: &str,
        idem: crate::mlflow::retry::Idempotency,
    ) -> Result<T> {
        self.call_url(method, self.registry_url(endpoint), body, call, idem)
            .await
    }

    /// A GET of a registry endpoint with `query`, decoding the answer.
    pub(crate) async fn registry_get<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        query: &serde_json::Value,
        call: &str,
    ) -> Result<T> {
        let mut url = self.registry_url(endpoint);
        set_query(&mut url, query, call)?;
        self.get_url(url, call).await
    }

    /// A registry write whose answer carries nothing needed (safe to send again).
    async fn registry_unit(
        &self,
        method: Method,
        endpoint: &str,
        body: serde_json::Value,
        call: &str,
    ) -> Result<()> {
        self.call_unit_url(method, self.registry_url(endpoint), &body, call, Safe)
            .await
    }

    /// Searches registered models, page by page (by name; Unity Catalog's search has no order
    /// and no filter: the prompts' filter finds nothing there, any other is refused).
    pub fn search_registered_models(
        &self,
        filter: Option<&str>,
    ) -> impl Stream<Item = Result<RegisteredModel>> + Send + 'static {
        let client = self.clone();
        let filter = filter.map(str::to_string);
        let uc = self.is_uc();
        paginate::items(move |token| {
            let client = client.clone();
            let q = if uc {
                json!({ "max_results": client.page(100), "page_token": token })
            } else {
                json!({
                    "max_results": client.page(1000),
                    "filter": filter,
                    "order_by": ["name ASC"],
                    "page_token": token,
                })
            };
            let filter = filter.clone();
            async move {
                match filter.as_deref() {
                    // Unity Catalog keeps prompts apart from registered models.
                    Some(PROMPT_FILTER) if uc => return Ok((Vec::new(), None)),
                    Some(f) if uc => {
                        return Err(Error::Config(format!(
                            "Unity Catalog's model search takes no filter ({f:?}) on {}",
                            client.server()
                        )));
                    }
                    _ => {}
                }
                let a: ModelSearch = client
                    .registry_get(
                        "registered-models/search",
                        &q,
                        "GET registered-models/search",
                    )
                    .await?;
                Ok((a.registered_models, a.next_page_token))
            }
        })
    }

    /// Gets a registered model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_registered_model(&self, name: &str) -> Result<RegisteredModel> {
        let call = format!("GET registered-models/get (model {name:?})");
        let a: ModelAnswer = self
            .registry_get("registered-models/get", &json!({ "name": name }), &call)
            .await?;
        Ok(a.registered_model)
    }

    /// Creates a registered model. If the answer is lost, a model of that name found afterwards
    /// counts as created.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_registered_model(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<RegisteredModel> {
        let call = format!("POST registered-models/create (model {name:?})");
        let body = json!({ "name": name, "description": description, "tags": tags });
        let (call, body) = (&call, &body);
        self.create_reconciled(
            call,
            move || async move {
                let a: ModelAnswer = self
                    .registry_call(Method::POST, "registered-models/create", body, call, Unsafe)
                    .await?;
                Ok(a.registered_model)
            },
            Some(move || async move {
                match self.get_registered_model(name).await {
                    Ok(m) => Ok(Some(m)),
                    Err(e) if e.is_not_found() => Ok(None),
                    Err(e) => Err(e),
                }
            }),
        )
        .await
    }

    /// Sets a registered model's description.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn update_registered_model(&self, name: &str, description: &str) -> Result<()> {
        let call = format!("PATCH registered-models/update (model {name:?})");
        self.registry_unit(
            Method::PATCH,
            "registered-models/update",
            json!({ "name": name, "description": description }),
            &call,
        )
        .await
    }

    /// Renames a registered model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn rename_registered_model(&self, name: &str, new_name: &str) -> Result<()> {
        if self.is_uc() {
            // Unity Catalog renames through its update.
            let call = format!("PATCH registered-models/update (model {name:?} to {new_name:?})");
            return self
                .registry_unit(
                    Method::PATCH,
                    "registered-models/update",
                    json!({ "name": name, "new_name": new_name }),
                    &call,
                )
                .await;
        }
        let call = format!("POST registered-models/rename (model {name:?} to {new_name:?})");
        self.registry_unit(
            Method::POST,
            "registered-models/rename",
            json!({ "name": name, "new_name": new_name }),
            &call,
        )
        .await
    }

    /// Deletes a registered model and all its versions.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_registered_model(&self, name: &str) -> Result<()> {
        let call = format!("DELETE registered-models/delete (model {name:?})");
        self.registry_unit(
            Method::DELETE,
            "registered-models/delete",
            json!({ "name": name }),
            &call,
        )
        .await
    }

    /// Sets a tag on a registered model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_registered_model_tag(&self, name: &str, key: &str, value: &str) -> Result<()> {
        let call = format!("POST registered-models/set-tag (model {name:?}, tag {key:?})");
        self.registry_unit(
            Method::POST,
            "registered-models/set-tag",
            json!({ "name": name, "key": key, "value": value }),
            &call,
        )
        .await
    }

    /// Deletes a tag of a registered model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_registered_model_tag(&self, name: &str, key: &str) -> Result<()> {
        let call = format!("DELETE registered-models/delete-tag (model {name:?}, tag {key:?})");
        self.registry_unit(
            Method::DELETE,
            "registered-models/delete-tag",
            json!({ "name": name, "key": key }),
            &call,
        )
        .await
    }

    /// Points an alias at a version.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_registered_model_alias(
        &self,
        name: &str,
        alias: &str,
        version: &str,
    ) -> Result<()> {
        let call = format!(
            "POST registered-models/alias (model {name:?}, alias {alias:?} -> version {version})"
        );
        self.registry_unit(
            Method::POST,
            "registered-models/alias",
            json!({ "name": name, "alias": alias, "version": version }),
            &call,
        )
        .await
    }

    /// Removes an alias.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_registered_model_alias(&self, name: &str, alias: &str) -> Result<()> {
        let call = format!("DELETE registered-models/alias (model {name:?}, alias {alias:?})");
        self.registry_unit(
            Method::DELETE,
            "registered-models/alias",
            json!({ "name": name, "alias": alias }),
            &call,
        )
        .await
    }

    /// The version an alias points to.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_model_version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion> {
        let call = format!("GET registered-models/alias (model {name:?}, alias {alias:?})");
        let a: VersionAnswer = self
            .registry_get(
                "registered-models/alias",
                &json!({ "name": name, "alias": alias }),
                &call,
            )
            .await?;
        Ok(a.model_version)
    }

    /// Searches model versions, page by page. Note that search answers carry no aliases.
    pub fn search_model_versions(
        &self,
        filter: Option<&str>,
    ) -> impl Stream<Item = Result<ModelVersion>> + Send + 'static {
        let client = self.clone();
        let filter = filter.map(str::to_string);
        paginate::items(move |token| {
            let client = client.clone();
            let call = format!(
                "GET model-versions/search ({})",
                filter.as_deref().unwrap_or("all")
            );
            let q = json!({ "max_results": client.page(10_000), "filter": filter, "page_token": token });
            async move {
                let a: VersionSearch = client
                    .registry_get("model-versions/search", &q, &call)
                    .await?;
                Ok((a.model_versions, a.next_page_token))
            }
        })
    }

    /// Every version of a registered model, in numeric order (10 after 9), with tags as search
    /// returns them. Versions are collected per model (a model's version list is metadata, not a
    /// history), then sorted.
    ///
    /// A prompt's versions too: MLflow 3's searches hide prompts unless the filter names their
    /// tag, so when the plain search finds nothing, the search is made again for prompts.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn all_model_versions(&self, name: &str) -> Result<Vec<ModelVersion>> {
        let filter = format!("name = {}", filter_quote(name));
        let mut versions = self.versions_or_prompt_versions(&filter).await?;
        versions.retain(|v| v.name == name);
        versions.sort_by_key(ModelVersion::number);
        Ok(versions)
    }

    /// The versions `filter` finds; if none, the prompt versions it finds (see
    /// [`Client::all_model_versions`]).
    async fn versions_or_prompt_versions(&self, filter: &str) -> Result<Vec<ModelVersion>> {
        use futures_util::TryStreamExt;
        let found: Vec<ModelVersion> = self
            .search_model_versions(Some(filter))
            .try_collect()
            .await?;
        // Unity Catalog keeps no prompts among its models (and takes no tag filter).
        if !found.is_empty() || self.is_uc() {
            return Ok(found);
        }
        let prompts = format!("{filter} and {PROMPT_FILTER}");
        self.search_model_versions(Some(&prompts))
            .try_collect()
            .await
    }

    /// Gets one model version (with its aliases).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        let call = format!("GET model-versions/get (model {name:?} version {version})");
        let a: VersionAnswer = self
            .registry_get(
                "model-versions/get",
                &json!({ "name": name, "version": version }),
                &call,
            )
            .await?;
        Ok(a.model_version)
    }

    /// Creates a model version. With [`CreateModelVersion::reconcile_tag`], a lost answer is
    /// settled by looking for the version that carries that tag.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_model_version(&self, req: &CreateModelVersion) -> Result<ModelVersion> {
        let call = format!(
            "POST model-versions/create (model {:?}, source {:?})",
            req.name, req.source
        );
        let marker = KeyValue::find(&req.tags, req.reconcile_tag.as_deref());
        let uc = self.is_uc();
        let mut body = serde_json::to_value(req).map_err(|e| Error::Json {
            what: format!("{call}: encoding the request"),
            source: e,
        })?;
        if let Some(o) = body.as_object_mut() {
            // Each registry takes its own way of naming the run's server.
            o.remove(if uc {
                "run_link"
            } else {
                "run_tracking_server_id"
            });
        }
        let (call, body) = (&call, &body);
        self.create_reconciled(
            call,
            move || async move {
                let a: VersionAnswer = self
                    .registry_call(Method::POST, "model-versions/create", body, call, Unsafe)
                    .await?;
                Ok(a.model_version)
            },
            marker.map(|tag| {
                move || async move {
                    if uc {
                        // Unity Catalog searches versions by name only: the tag is looked for
                        // here.
                        let all = self.all_model_versions(&req.name).await?;
                        return Ok(all.into_iter().find(|v| {
                            v.tags
                                .iter()
                                .any(|t| t.key == tag.key && t.value == tag.value)
                        }));
                    }
                    let filter = format!(
                        "name = {} and tags.`{}` = {}",
                        filter_quote(&req.name),
                        tag.key.replace('`', ""),
                        filter_quote(&tag.value)
                    );
                    let found = self.versions_or_prompt_versions(&filter).await?;
                    Ok(found.into_iter().next())
                }
            }),
        )
        .await
    }

    /// Sets a version's description.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn update_model_version(
        &self,
        name: &str,
        version: &str,
        description: &str,
    ) -> Result<()> {
        let call = format!("PATCH model-versions/update (model {name:?} version {version})");
        self.registry_unit(
            Method::PATCH,
            "model-versions/update",
            json!({ "name": name, "version": version, "description": description }),
            &call,
        )
        .await
    }

    /// Moves a version to a stage (`None`, `Staging`, `Production`, `Archived`).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn transition_model_version_stage(
        &self,
        name: &str,
        version: &str,
        stage: &str,
        archive_existing_versions: bool,
    ) -> Result<()> {
        let call = format!(
            "POST model-versions/transition-stage (model {name:?} version {version} to {stage:?})"
        );
        if self.is_uc() {
            return Err(Error::Config(format!(
                "{call}: Unity Catalog has no stages (its models have aliases instead): see --stage-to"
            )));
        }
        self.registry_unit(
            Method::POST,
            "model-versions/transition-stage",
            json!({
                "name": name,
                "version": version,
                "stage": stage,
                "archive_existing_versions": archive_existing_versions,
            }),
            &call,
        )
        .await
    }

    /// Deletes a version.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_model_version(&self, name: &str, version: &str) -> Result<()> {
        let call = format!("DELETE model-versions/delete (model {name:?} version {version})");
        self.registry_unit(
            Method::DELETE,
            "model-versions/delete",
            json!({ "name": name, "version": version }),
            &call,
        )
        .await
    }

    /// Sets a tag on a version.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
        value: &str,
    ) -> Result<()> {
        let call =
            format!("POST model-versions/set-tag (model {name:?} version {version}, tag {key:?})");
        self.registry_unit(
            Method::POST,
            "model-versions/set-tag",
            json!({ "name": name, "version": version, "key": key, "value": value }),
            &call,
        )
        .await
    }

    /// Deletes a tag of a version.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_model_version_tag(
        &self,
        name: &str,
        version: &str,
        key: &str,
    ) -> Result<()> {
        let call = format!(
            "DELETE model-versions/delete-tag (model {name:?} version {version}, tag {key:?})"
        );
        self.registry_unit(
            Method::DELETE,
            "model-versions/delete-tag",
            json!({ "name": name, "version": version, "key": key }),
            &call,
        )
        .await
    }

    /// Polls a version until it is `READY`; fails on `FAILED_REGISTRATION` or after `timeout`.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    /// [`Error::Input`](crate::Error::Input) when the version's status is `FAILED_REGISTRATION`
    /// or it is not `READY` within `timeout`.
    pub async fn wait_model_version_ready(
        &self,
        name: &str,
        version: &str,
        timeout: Duration,
    ) -> Result<ModelVersion> {
        let start = Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let v = self.get_model_version(name, version).await?;
            match v.status.as_str() {
                "READY" | "" => return Ok(v),
                "FAILED_REGISTRATION" => {
                    return Err(Error::Input(format!(
                        "model {name:?} version {version} failed to register on the server: {}",
                        v.status_message
                    )));
                }
                _ if start.elapsed() >= timeout => {
                    return Err(Error::Input(format!(
                        "model {name:?} version {version} is still {} on the server after {timeout:?}",
                        v.status
                    )));
                }
                _ => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(3));
                }
            }
        }
    }

    pub(crate) async fn unit(
        &self,
        method: Method,
        endpoint: &str,
        body: serde_json::Value,
        call: &str,
    ) -> Result<()> {
        self.call_unit(method, endpoint, &body, call, Safe)
            .await
            .map(drop)
    }
}
