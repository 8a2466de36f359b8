//! Logged models (MLflow 3). Their files live under their own artifact root
//! (`mlflow-artifacts:/<exp>/models/<id>/artifacts`), read and written with the artifact calls.

use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Result;
use crate::mlflow::api::artifacts::ArtifactRoot;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::types::{KeyValue, LoggedModel};
use crate::mlflow::{Client, paginate};

/// What a new logged model starts with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateLoggedModel {
    /// The experiment.
    pub experiment_id: String,
    /// Its name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The flavor or kind of model.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    /// The run that produced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_run_id: Option<String>,
    /// Params.
    pub params: Vec<KeyValue>,
    /// Tags.
    pub tags: Vec<KeyValue>,
    /// A tag among `tags` whose value is unique to this model: when the answer to the create is
    /// lost, a logged model carrying it counts as created.
    #[serde(skip)]
    pub reconcile_tag: Option<String>,
}

#[derive(Deserialize)]
struct ModelAnswer {
    model: LoggedModel,
}

#[derive(Deserialize, Default)]
struct SearchAnswer {
    #[serde(default)]
    models: Vec<LoggedModel>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Client {
    /// Gets a logged model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel> {
        let call = format!("GET logged-models (logged model {model_id})");
        let a: ModelAnswer = self
            .get(
                &format!("logged-models/{}", path_segment(model_id)),
                &json!({}),
                &call,
            )
            .await?;
        Ok(a.model)
    }

    /// Searches the logged models of some experiments, page by page.
    pub fn search_logged_models(
        &self,
        experiment_ids: &[impl AsRef<str>],
        filter: Option<&str>,
    ) -> impl Stream<Item = Result<LoggedModel>> + Send + 'static {
        let client = self.clone();
        let ids: Vec<String> = experiment_ids
            .iter()
            .map(|i| i.as_ref().to_string())
            .collect();
        let filter = filter.map(str::to_string);
        paginate::items(move |token| {
            let client = client.clone();
            let body = json!({
                "experiment_ids": ids,
                "filter": filter,
                "max_results": client.page(100),
                "page_token": token,
            });
            async move {
                let call = format!(
                    "POST logged-models/search (experiments {:?})",
                    body["experiment_ids"]
                );
                let a: SearchAnswer = client
                    .call(Method::POST, "logged-models/search", &body, &call, Safe)
                    .await?;
                Ok((a.models, a.next_page_token))
            }
        })
    }

    /// Creates a logged model (status pending until [`Client::finalize_logged_model`]).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_logged_model(&self, req: &CreateLoggedModel) -> Result<LoggedModel> {
        let call = format!(
            "POST logged-models (logged model {:?} in experiment id {:?})",
            req.name.as_deref().unwrap_or(""),
            req.experiment_id
        );
        let marker = KeyValue::find(&req.tags, req.reconcile_tag.as_deref());
        let call = &call;
        self.create_reconciled(
            call,
            move || async move {
                let a: ModelAnswer = self
                    .call(Method::POST, "logged-models", req, call, Unsafe)
                    .await?;
                Ok(a.model)
            },
            marker.map(|tag| {
                move || async move {
                    use futures_util::TryStreamExt;
                    let filter = format!(
                        "tags.`{}` = {}",
                        tag.key.replace('`', ""),
                        crate::mlflow::api::registry::filter_quote(&tag.value)
                    );
                    let found: Vec<LoggedModel> = self
                        .search_logged_models(&[&req.experiment_id], Some(&filter))
                        .try_collect()
                        .await?;
                    Ok(found.into_iter().next())
                }
            }),
        )
        .await
    }

    /// Sets a logged model's final status (`LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn finalize_logged_model(&self, model_id: &str, status: &str) -> Result<LoggedModel> {
        let call = format!("PATCH logged-models (logged model {model_id} to {status})");
        let a: ModelAnswer = self
            .call(
                Method::PATCH,
                &format!("logged-models/{}", path_segment(model_id)),
                &json!({ "model_id": model_id, "status": status }),
                &call,
                Safe,
            )
            .await?;
        Ok(a.model)
    }

    /// Logs params on a logged model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn log_logged_model_params(&self, model_id: &str, params: &[KeyValue]) -> Result<()> {
        let call = format!("POST logged-models/params (logged model {model_id})");
        self.unit(
            Method::POST,
            &format!("logged-models/{}/params", path_segment(model_id)),
            json!({ "model_id": model_id, "params": params }),
            &call,
        )
        .await
    }

    /// Sets tags on a logged model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_logged_model_tags(&self, model_id: &str, tags: &[KeyValue]) -> Result<()> {
        let call = format!("PATCH logged-models/tags (logged model {model_id})");
        self.unit(
            Method::PATCH,
            &format!("logged-models/{}/tags", path_segment(model_id)),
            json!({ "model_id": model_id, "tags": tags }),
            &call,
        )
        .await
    }

    /// Deletes a tag of a logged model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_logged_model_tag(&self, model_id: &str, key: &str) -> Result<()> {
        let call = format!("DELETE logged-models/tags (logged model {model_id}, tag {key:?})");
        self.unit(
            Method::DELETE,
            &format!(
                "logged-models/{}/tags/{}",
                path_segment(model_id),
                path_segment(key)
            ),
            json!({}),
            &call,
        )
        .await
    }

    /// Deletes a logged model.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_logged_model(&self, model_id: &str) -> Result<()> {
        let call = format!("DELETE logged-models (logged model {model_id})");
        self.unit(
            Method::DELETE,
            &format!("logged-models/{}", path_segment(model_id)),
            json!({}),
            &call,
        )
        .await
    }
}

impl LoggedModel {
    /// The root of this model's files.
    ///
    /// # Errors
    ///
    /// [`Error::Config`](crate::Error::Config) when the model's artifact location is not one the
    /// client can reach (see [`ArtifactRoot::parse`](crate::mlflow::ArtifactRoot::parse)).
    pub fn artifact_root(&self) -> Result<ArtifactRoot> {
        ArtifactRoot::parse(&self.info.artifact_uri)
    }
}

/// Percent-encodes one path segment.
pub(crate) fn path_segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
