//! Runs, their data, inputs and outputs, and metric histories.

use futures_util::Stream;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::Result;
use crate::mlflow::retry::Idempotency::{self, Safe, Unsafe};
use crate::mlflow::types::{
    DatasetInput, KeyValue, Metric, ModelInput, ModelOutput, Run, RunInfo, ViewType,
};
use crate::mlflow::{Client, paginate};

/// The server's `log-batch` limits: metrics per request.
pub const MAX_BATCH_METRICS: usize = 1000;
/// The server's `log-batch` limits: params per request.
pub const MAX_BATCH_PARAMS: usize = 100;
/// The server's `log-batch` limits: tags per request.
pub const MAX_BATCH_TAGS: usize = 100;
/// The server's `log-batch` limits: metrics, params and tags together per request.
pub const MAX_BATCH_TOTAL: usize = 1000;
/// Points per `get-history` page.
pub const HISTORY_PAGE: u32 = 25_000;

/// What a new run starts with.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CreateRun {
    /// The experiment.
    pub experiment_id: String,
    /// The run's name (also becomes the `mlflow.runName` tag).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
    /// Milliseconds since the epoch; "now" when absent (the server itself would record 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Tags set at creation.
    pub tags: Vec<KeyValue>,
    /// Deprecated by MLflow in favour of the `mlflow.user` tag; sent when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// A tag among `tags` whose value is unique to this run: when the answer to the create is lost,
    /// a run carrying it counts as created. Without it a lost answer is an
    /// [`crate::Error::Ambiguous`].
    #[serde(skip)]
    pub reconcile_tag: Option<String>,
}

/// What a run update changes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UpdateRun {
    /// The run.
    pub run_id: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Milliseconds since the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// A new name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_name: Option<String>,
}

#[derive(Deserialize)]
struct RunAnswer {
    run: Run,
}

#[derive(Deserialize)]
struct RunInfoAnswer {
    run_info: RunInfo,
}

#[derive(Deserialize, Default)]
struct SearchAnswer {
    #[serde(default)]
    runs: Vec<Run>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct HistoryAnswer {
    #[serde(default)]
    metrics: Vec<Metric>,
    #[serde(default)]
    next_page_token: Option<String>,
}

impl Client {
    /// Gets a run.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_run(&self, run_id: &str) -> Result<Run> {
        let call = format!("GET runs/get (run {run_id})");
        let a: RunAnswer = self
            .get("runs/get", &json!({ "run_id": run_id }), &call)
            .await?;
        Ok(a.run)
    }

    /// Searches the runs of some experiments, page by page, oldest first.
    pub fn search_runs(
        &self,
        experiment_ids: &[impl AsRef<str>],
        filter: Option<&str>,
        view_type: ViewType,
    ) -> impl Stream<Item = Result<Run>> + Send + 'static {
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
                "run_view_type": view_type,
                "max_results": client.page(1000),
                "order_by": ["attributes.start_time ASC", "attributes.run_id ASC"],
                "page_token": token,
            });
            async move {
                let call = format!(
                    "POST runs/search (experiments {:?})",
                    body["experiment_ids"]
                );
                let a: SearchAnswer = client
                    .call(Method::POST, "runs/search", &body, &call, Safe)
                    .await?;
                Ok((a.runs, a.next_page_token))
            }
        })
    }

    /// Creates a run. With [`CreateRun::reconcile_tag`], a lost answer is settled by looking for
    /// the run that carries that tag.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_run(&self, req: &CreateRun) -> Result<Run> {
        let stamped;
        let req = if req.start_time.is_none() {
            // The server would record 0 (1970), not "now", for a missing start time.
            stamped = CreateRun {
                start_time: Some(now_millis()),
                ..req.clone()
            };
            &stamped
        } else {
            req
        };
        let call = format!(
            "POST runs/create (run {:?} in experiment id {:?})",
            req.run_name.as_deref().unwrap_or(""),
            req.experiment_id
        );
        let marker = KeyValue::find(&req.tags, req.reconcile_tag.as_deref());
        let call = &call;
        self.create_reconciled(
            call,
            move || async move {
                let a: RunAnswer = self
                    .call(Method::POST, "runs/create", req, call, Unsafe)
                    .await?;
                Ok(a.run)
            },
            marker.map(|tag| {
                move || async move {
                    self.find_run_by_tag(&req.experiment_id, &tag.key, &tag.value)
                        .await
                }
            }),
        )
        .await
    }

    /// The run of an experiment (active or deleted) whose tag `key` is `value`, if there is one.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn find_run_by_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Option<Run>> {
        Ok(self
            .find_runs_by_tag(experiment_id, key, value)
            .await?
            .into_iter()
            .next())
    }

    /// Every run of an experiment (deleted ones too) whose tag `key` has `value`.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn find_runs_by_tag(
        &self,
        experiment_id: &str,
        key: &str,
        value: &str,
    ) -> Result<Vec<Run>> {
        use futures_util::TryStreamExt;
        let filter = format!(
            "tags.`{}` = '{}'",
            key.replace('`', ""),
            value.replace('\'', "\\'")
        );
        self.search_runs(&[experiment_id], Some(&filter), ViewType::All)
            .try_collect()
            .await
    }

    /// Updates a run's status, end time or name.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn update_run(&self, req: &UpdateRun) -> Result<RunInfo> {
        let call = format!("POST runs/update (run {})", req.run_id);
        let a: RunInfoAnswer = self
            .call(Method::POST, "runs/update", req, &call, Safe)
            .await?;
        Ok(a.run_info)
    }

    /// Logs metrics, params and tags, in as many requests as the server's limits require
    /// (1000 entries, of which at most 100 params and 100 tags). Requests carrying only params and
    /// tags are retried on transient failures (repeating them is harmless); requests carrying
    /// metrics are not, because a repeated batch would duplicate points: an error then means the
    /// run's history may be incomplete or may hold the batch, and the caller must redo the run.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn log_batch(
        &self,
        run_id: &str,
        metrics: &[Metric],
        params: &[KeyValue],
        tags: &[KeyValue],
    ) -> Result<()> {
        let (mut m, mut p, mut t) = (metrics, params, tags);
        while !(m.is_empty() && p.is_empty() && t.is_empty()) {
            let np = p.len().min(MAX_BATCH_PARAMS);
            let nt = t.len().min(MAX_BATCH_TAGS);
            let nm = m
                .len()
                .min(MAX_BATCH_METRICS)
                .min(MAX_BATCH_TOTAL - np - nt);
            let body = json!({
                "run_id": run_id,
                "metrics": &m[..nm],
                "params": &p[..np],
                "tags": &t[..nt],
            });
            let idem = if nm > 0 { Unsafe } else { Safe };
            let call =
                format!("POST runs/log-batch (run {run_id}: {nm} metrics, {np} params, {nt} tags)");
            self.call_unit(Method::POST, "runs/log-batch", &body, &call, idem)
                .await?;
            m = &m[nm..];
            p = &p[np..];
            t = &t[nt..];
        }
        Ok(())
    }

    /// Logs dataset and model inputs.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn log_inputs(
        &self,
        run_id: &str,
        datasets: &[DatasetInput],
        models: &[ModelInput],
    ) -> Result<()> {
        let call = format!("POST runs/log-inputs (run {run_id})");
        let mut body = json!({ "run_id": run_id, "datasets": datasets });
        if !models.is_empty() {
            body["models"] = json!(models);
        }
        self.call_unit(Method::POST, "runs/log-inputs", &body, &call, Safe)
            .await
            .map(drop)
    }

    /// Logs model outputs (MLflow 3).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it, the error is
    /// [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn log_outputs(&self, run_id: &str, models: &[ModelOutput]) -> Result<()> {
        let call = format!("POST runs/outputs (run {run_id})");
        self.call_unit(
            Method::POST,
            "runs/outputs",
            &json!({ "run_id": run_id, "models": models }),
            &call,
            Safe,
        )
        .await
        .map(drop)
    }

    /// Sets a tag on a run.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_run_tag(&self, run_id: &str, key: &str, value: &str) -> Result<()> {
        let call = format!("POST runs/set-tag (run {run_id}, tag {key:?})");
        let body = json!({ "run_id": run_id, "key": key, "value": value });
        self.run_op("runs/set-tag", &body, &call, Safe).await
    }

    /// Deletes a tag of a run.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_run_tag(&self, run_id: &str, key: &str) -> Result<()> {
        let call = format!("POST runs/delete-tag (run {run_id}, tag {key:?})");
        let body = json!({ "run_id": run_id, "key": key });
        self.run_op("runs/delete-tag", &body, &call, Safe).await
    }

    /// Marks a run deleted.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn delete_run(&self, run_id: &str) -> Result<()> {
        let call = format!("POST runs/delete (run {run_id})");
        self.run_op("runs/delete", &json!({ "run_id": run_id }), &call, Safe)
            .await
    }

    /// Restores a deleted run.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn restore_run(&self, run_id: &str) -> Result<()> {
        let call = format!("POST runs/restore (run {run_id})");
        self.run_op("runs/restore", &json!({ "run_id": run_id }), &call, Safe)
            .await
    }

    async fn run_op(
        &self,
        endpoint: &str,
        body: &serde_json::Value,
        call: &str,
        idem: Idempotency,
    ) -> Result<()> {
        self.call_unit(Method::POST, endpoint, body, call, idem)
            .await
            .map(drop)
    }

    /// The full history of one metric of a run, as a stream of pages of at most `page_size`
    /// points (default [`HISTORY_PAGE`]) in the server's order. Only one page is in memory at a
    /// time.
    pub fn metric_history(
        &self,
        run_id: &str,
        key: &str,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<Vec<Metric>>> + Send + 'static {
        let client = self.clone();
        let run_id = run_id.to_string();
        let key = key.to_string();
        let page_size = page_size.unwrap_or(HISTORY_PAGE).max(1);
        paginate::pages(move |token| {
            let client = client.clone();
            let query = json!({
                "run_id": run_id,
                "metric_key": key,
                "max_results": page_size,
                "page_token": token,
            });
            async move {
                let call = format!(
                    "GET metrics/get-history (run {}, metric {:?})",
                    query["run_id"].as_str().unwrap_or(""),
                    query["metric_key"].as_str().unwrap_or("")
                );
                let a: HistoryAnswer = client.get("metrics/get-history", &query, &call).await?;
                Ok((a.metrics, a.next_page_token))
            }
        })
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
