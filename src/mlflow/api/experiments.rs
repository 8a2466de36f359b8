//! Experiments.

use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Result;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::types::{Experiment, KeyValue, ViewType};
use crate::mlflow::{Client, paginate};

#[derive(Deserialize)]
struct ExperimentAnswer {
    experiment: Experiment,
}

#[derive(Deserialize)]
struct CreateAnswer {
    experiment_id: String,
}

#[derive(Deserialize, Default)]
struct SearchAnswer {
    #[serde(default)]
    experiments: Vec<Experiment>,
    #[serde(default)]
    next_page_token: Option<String>,
}

/// Page size for experiment searches.
const PAGE: u32 = 1000;

impl Client {
    /// Gets an experiment by id.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_experiment(&self, id: &str) -> Result<Experiment> {
        let call = format!("GET experiments/get (experiment id {id:?})");
        let a: ExperimentAnswer = self
            .get("experiments/get", &json!({ "experiment_id": id }), &call)
            .await?;
        Ok(a.experiment)
    }

    /// Gets an experiment by name; `None` when there is none.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_experiment_by_name(&self, name: &str) -> Result<Option<Experiment>> {
        let call = format!("GET experiments/get-by-name (experiment {name:?})");
        match self
            .get::<_, ExperimentAnswer>(
                "experiments/get-by-name",
                &json!({ "experiment_name": name }),
                &call,
            )
            .await
        {
            Ok(a) => Ok(Some(a.experiment)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Finds an experiment by name, then by id, as the Python tool does with `--experiment`: a
    /// name wins over an id that reads the same. `None` when `key` is neither.
    ///
    /// # Errors
    ///
    /// What the server answers other than "no such experiment" (it cannot be reached, refuses the
    /// credentials, fails). MLflow answers a key that is not a number with 400
    /// `INVALID_PARAMETER_VALUE` when it is taken for an id: that counts as "no such experiment".
    ///
    /// ```no_run
    /// # async fn demo(client: &mlflow_archive::mlflow::Client) -> mlflow_archive::Result<()> {
    /// match client.find_experiment("churn-model").await? {
    ///     Some(e) => println!("experiment {} {:?}", e.experiment_id, e.name),
    ///     None => println!("no experiment of that name or id"),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn find_experiment(&self, key: &str) -> Result<Option<Experiment>> {
        if let Some(e) = self.get_experiment_by_name(key).await? {
            return Ok(Some(e));
        }
        match self.get_experiment(key).await {
            Ok(e) => Ok(Some(e)),
            Err(e)
                if e.is_not_found()
                    || e.api()
                        .is_some_and(|a| a.status == 400 && !a.error_code.is_empty()) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Searches experiments, page by page; `filter` is MLflow's search syntax.
    pub fn search_experiments(
        &self,
        view_type: ViewType,
        filter: Option<&str>,
    ) -> impl Stream<Item = Result<Experiment>> + Send + 'static {
        let client = self.clone();
        let filter = filter.map(str::to_string);
        paginate::items(move |token| {
            let client = client.clone();
            let filter = filter.clone();
            async move {
                let body = json!({
                    "max_results": client.page(PAGE),
                    "view_type": view_type,
                    "filter": filter,
                    "page_token": token,
                    "order_by": ["experiment_id ASC"],
                });
                let a: SearchAnswer = client
                    .call(
                        Method::POST,
                        "experiments/search",
                        &body,
                        "POST experiments/search",
                        Safe,
                    )
                    .await?;
                Ok((a.experiments, a.next_page_token))
            }
        })
    }

    /// Creates an experiment and returns its id. If the answer is lost, an experiment of that name
    /// found afterwards counts as created.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_experiment(
        &self,
        name: &str,
        artifact_location: Option<&str>,
        tags: &[KeyValue],
    ) -> Result<String> {
        #[derive(Serialize)]
        struct Req<'a> {
            name: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            artifact_location: Option<&'a str>,
            tags: &'a [KeyValue],
        }
        let call = format!("POST experiments/create (experiment {name:?})");
        let req = Req {
            name,
            artifact_location,
            tags,
        };
        let (call, req) = (&call, &req);
        self.create_reconciled(
            call,
            move || async move {
                let a: CreateAnswer = self
                    .call(Method::POST, "experiments/create", req, call, Unsafe)
                    .await?;
                Ok(a.experiment_id)
            },
            Some(move || async move {
                Ok(self
                    .get_experiment_by_name(name)
                    .await?
                    .map(|e| e.experiment_id))
            }),
        )
        .await
    }

    /// Renames an experiment.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn rename_experiment(&self, id: &str, new_name: &str) -> Result<()> {
        let call = format!("POST experiments/update (experiment id {id:?})");
        self.call_unit(
            Method::POST,
            "experiments/update",
            &json!({ "experiment_id": id, "new_name": new_name }),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }

    /// Sets a tag on an experiment.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_experiment_tag(&self, id: &str, key: &str, value: &str) -> Result<()> {
        let call =
            format!("POST experiments/set-experiment-tag (experiment id {id:?}, tag {key:?})");
        self.call_unit(
            Method::POST,
            "experiments/set-experiment-tag",
            &json!({ "experiment_id": id, "key": key, "value": value }),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }

    /// Deletes a tag of an experiment.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_experiment_tag(&self, id: &str, key: &str) -> Result<()> {
        let call =
            format!("POST experiments/delete-experiment-tag (experiment id {id:?}, tag {key:?})");
        self.call_unit(
            Method::POST,
            "experiments/delete-experiment-tag",
            &json!({ "experiment_id": id, "key": key }),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }

    /// Marks an experiment deleted.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_experiment(&self, id: &str) -> Result<()> {
        self.lifecycle("experiments/delete", id).await
    }

    /// Restores a deleted experiment.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn restore_experiment(&self, id: &str) -> Result<()> {
        self.lifecycle("experiments/restore", id).await
    }

    async fn lifecycle(&self, endpoint: &str, id: &str) -> Result<()> {
        let call = format!("POST {endpoint} (experiment id {id:?})");
        self.call_unit(
            Method::POST,
            endpoint,
            &json!({ "experiment_id": id }),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }
}
