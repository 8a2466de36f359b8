//! Evaluation datasets (MLflow 3.4+, the GenAI datasets with `d-…` ids), under
//! `api/3.0/mlflow/datasets`. Only SQL stores have them; a file store answers `FEATURE_DISABLED`
//! (as HTTP 500), a server before MLflow 3.4 has no such endpoints (HTTP 404).
//!
//! The server's dialect: a dataset's `tags` and the `records` of a page or of an upsert travel as
//! JSON *text* inside the JSON bodies; this module decodes and encodes them. Records stay the JSON
//! objects the server gives ([`serde_json::Value`]): the server owns their shape, and
//! [`record_for_upsert`] keeps what a copy sends back.
//!
//! What the server does with them (measured on MLflow 3.17.2): dataset names are not unique; a
//! create ignores any id, time or digest sent and takes `created_by` from the `mlflow.user` tag;
//! an upsert deduplicates records by their `inputs` (an existing record gets its `expectations`
//! and `tags` merged, its `outputs` replaced when sent), so sending the same records again changes
//! nothing but their update times.

use std::collections::{BTreeMap, BTreeSet};

use futures_util::{Stream, TryStreamExt};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::mlflow::api::logged_models::path_segment;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::{Client, json as mjson, paginate};

/// The page size of dataset searches and record pages (the server's own default).
pub const DATASET_PAGE: u32 = 1000;

/// A good number of records for one [`Client::upsert_dataset_records`] (the server sets no limit,
/// but each upsert is one database transaction and one request body).
pub const UPSERT_BATCH: usize = 500;

/// The fields of a record that an upsert carries; the others (ids, times, users, the derived
/// `source_type` and `source_id`) are the server's own.
const UPSERT_FIELDS: [&str; 5] = ["inputs", "outputs", "expectations", "tags", "source"];

/// An evaluation dataset (MLflow 3.4+, SQL stores), without its records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationDataset {
    /// Its id (`d-<hex>`), chosen by the server.
    pub dataset_id: String,
    /// Its name (not unique).
    pub name: String,
    /// Its tags (decoded from the JSON text the server sends); `mlflow.user` names its creator.
    pub tags: BTreeMap<String, String>,
    /// The fields its records have, JSON text as the server gives it (computed by the server).
    pub schema: Option<String>,
    /// Statistics, JSON text as the server gives it (`{"num_records": n}`; computed by the server).
    pub profile: Option<String>,
    /// A digest of its name and last update time (computed by the server).
    pub digest: Option<String>,
    /// Milliseconds since the epoch.
    pub created_time: Option<i64>,
    /// Milliseconds since the epoch.
    pub last_update_time: Option<i64>,
    /// The `mlflow.user` tag at creation.
    pub created_by: Option<String>,
    /// The `mlflow.user` tag of the last records upserted.
    pub last_updated_by: Option<String>,
}

/// A dataset as the server writes it.
#[derive(Deserialize, Default)]
struct DatasetWire {
    #[serde(default)]
    dataset_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    profile: Option<String>,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default, deserialize_with = "mjson::int64::deserialize")]
    created_time: Option<i64>,
    #[serde(default, deserialize_with = "mjson::int64::deserialize")]
    last_update_time: Option<i64>,
    #[serde(default)]
    created_by: Option<String>,
    #[serde(default)]
    last_updated_by: Option<String>,
}

impl DatasetWire {
    fn decode(self) -> std::result::Result<EvaluationDataset, String> {
        let tags = decode_tags(self.tags.as_deref().unwrap_or("")).map_err(|e| {
            format!(
                "the tags of dataset {} are not a JSON object of strings: {e}",
                self.dataset_id
            )
        })?;
        let text = |v: Option<String>| v.filter(|s| !s.is_empty());
        Ok(EvaluationDataset {
            dataset_id: self.dataset_id,
            name: self.name,
            tags,
            schema: text(self.schema),
            profile: text(self.profile),
            digest: text(self.digest),
            created_time: self.created_time,
            last_update_time: self.last_update_time,
            created_by: text(self.created_by),
            last_updated_by: text(self.last_updated_by),
        })
    }
}

#[derive(Deserialize)]
struct DatasetAnswer {
    dataset: DatasetWire,
}

#[derive(Deserialize, Default)]
struct SearchAnswer {
    #[serde(default)]
    datasets: Vec<DatasetWire>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct ExperimentIdsAnswer {
    #[serde(default)]
    experiment_ids: Vec<String>,
}

#[derive(Deserialize, Default)]
struct RecordsAnswer {
    #[serde(default)]
    records: Option<String>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize, Default)]
struct UpsertAnswer {
    #[serde(default, deserialize_with = "mjson::int64::deserialize")]
    inserted_count: Option<i64>,
    #[serde(default, deserialize_with = "mjson::int64::deserialize")]
    updated_count: Option<i64>,
}

/// Decodes a dataset's `tags` text: a JSON object (empty text or `null`: no tags). A `null`
/// value is left out (the server skips those too); a number or boolean becomes its JSON text.
///
/// # Errors
///
/// What is wrong, when the text is not JSON or not an object of scalars.
pub fn decode_tags(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    if text.trim().is_empty() {
        return Ok(BTreeMap::new());
    }
    let map: Option<Map<String, Value>> = serde_json::from_str(text).map_err(|e| format!("{e}"))?;
    let mut tags = BTreeMap::new();
    for (k, v) in map.unwrap_or_default() {
        let v = match v {
            Value::Null => continue,
            Value::String(s) => s,
            Value::Bool(_) | Value::Number(_) => v.to_string(),
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("the value of tag {k:?} is not a string"));
            }
        };
        tags.insert(k, v);
    }
    Ok(tags)
}

/// Encodes tags as the JSON text the server takes.
pub fn encode_tags(tags: &BTreeMap<String, String>) -> String {
    // A map of strings always serializes.
    serde_json::to_string(tags).unwrap_or_else(|_| "{}".into())
}

/// Decodes a page's `records` text: a JSON list of objects (absent or empty text: no records).
/// Bare `NaN`/`Infinity` tokens (Python's `json.dumps` writes them) are read as strings.
///
/// # Errors
///
/// What is wrong, when the text is not a JSON list of objects.
pub fn decode_records(text: &str) -> std::result::Result<Vec<Value>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let records: Option<Vec<Value>> =
        mjson::parse(text.as_bytes()).map_err(|e| format!("not a JSON list: {e}"))?;
    let records = records.unwrap_or_default();
    if let Some(i) = records.iter().position(|r| !r.is_object()) {
        return Err(format!("record {i} of the page is not a JSON object"));
    }
    Ok(records)
}

/// A record as the server returns it, reduced to what an upsert carries: `inputs`, `outputs`
/// when present, `expectations` when present, `tags` and `source` (the server derives
/// `source_type` and `source_id` from `source`, and owns the ids, times and users). Anything but
/// a JSON object gives an empty object.
pub fn record_for_upsert(record: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(fields) = record {
        for key in UPSERT_FIELDS {
            if let Some(v) = fields.get(key) {
                out.insert(key.to_string(), v.clone());
            }
        }
    }
    Value::Object(out)
}

/// True for what a server without the datasets API answers a search: `FEATURE_DISABLED` (a file
/// store), `NOT_IMPLEMENTED`, `ENDPOINT_NOT_FOUND`, or a bare 404 without an MLflow error (the
/// route does not exist: MLflow before 3.4).
/// The filter that finds the datasets named `name`, when one can be written: the server's
/// filter grammar trims the quotes around a value and knows no escapes, so a name holding both
/// kinds of quotes cannot be written.
fn name_filter(name: &str) -> Option<String> {
    if !name.contains('\'') {
        Some(format!("name = '{name}'"))
    } else if !name.contains('"') {
        Some(format!("name = \"{name}\""))
    } else {
        None
    }
}

impl Client {
    /// `api/3.0/mlflow/datasets/<id>[/<rest>]`.
    fn dataset_url(&self, dataset_id: &str, rest: &str) -> url::Url {
        let id = path_segment(dataset_id);
        if rest.is_empty() {
            self.api3_url(&format!("datasets/{id}"))
        } else {
            self.api3_url(&format!("datasets/{id}/{rest}"))
        }
    }

    /// Every dataset of the server, or of the experiments `experiment_ids` (all when empty),
    /// oldest first, 1000 a page, fetched as the stream is consumed. A server without the
    /// datasets API (a file store, MLflow before 3.4: see the module's notes) gives an empty
    /// stream; any other refusal is an error.
    pub fn search_datasets(
        &self,
        experiment_ids: &[String],
    ) -> impl Stream<Item = Result<EvaluationDataset>> + Send + 'static {
        self.search_datasets_filtered(experiment_ids.to_vec(), None, true)
    }

    fn search_datasets_filtered(
        &self,
        experiment_ids: Vec<String>,
        filter: Option<String>,
        absent_is_empty: bool,
    ) -> impl Stream<Item = Result<EvaluationDataset>> + Send + 'static {
        let client = self.clone();
        paginate::items(move |token: Option<String>| {
            let client = client.clone();
            let mut body = json!({
                "max_results": client.page(DATASET_PAGE),
                // Oldest first: datasets made while paging land on the last page, not between
                // pages (the page token is an offset). The server breaks ties by id.
                "order_by": ["created_time ASC"],
            });
            if !experiment_ids.is_empty() {
                body["experiment_ids"] = json!(experiment_ids);
            }
            if let Some(f) = &filter {
                body["filter_string"] = json!(f);
            }
            let first = token.is_none();
            if let Some(t) = token {
                body["page_token"] = json!(t);
            }
            let call = match (&filter, experiment_ids.is_empty()) {
                (Some(f), _) => format!("POST datasets/search ({f})"),
                (None, true) => "POST datasets/search".to_string(),
                (None, false) => format!("POST datasets/search (experiments {experiment_ids:?})"),
            };
            async move {
                let a: SearchAnswer = match client
                    .call_url(
                        Method::POST,
                        client.api3_url("datasets/search"),
                        &body,
                        &call,
                        Safe,
                    )
                    .await
                {
                    Ok(a) => a,
                    Err(e) if first && absent_is_empty && e.is_endpoint_absent() => {
                        tracing::debug!(
                            server = client.server(),
                            answer = %e,
                            "no evaluation datasets on this server"
                        );
                        return Ok((Vec::new(), None));
                    }
                    Err(e) => return Err(e),
                };
                let datasets = a
                    .datasets
                    .into_iter()
                    .map(|d| d.decode().map_err(|e| client.protocol(&call, e)))
                    .collect::<Result<Vec<_>>>()?;
                Ok((datasets, a.next_page_token))
            }
        })
    }

    /// One dataset; `None` when the server has no dataset of that id.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (a
    /// server without datasets answers `FEATURE_DISABLED`: see
    /// [`Error::is_unsupported`](crate::Error::is_unsupported)), a failed connection, an answer
    /// that is not the MLflow API.
    pub async fn get_dataset(&self, dataset_id: &str) -> Result<Option<EvaluationDataset>> {
        match self.get_dataset_or_fail(dataset_id).await {
            Ok(d) => Ok(Some(d)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn get_dataset_or_fail(&self, dataset_id: &str) -> Result<EvaluationDataset> {
        let call = format!("GET datasets (dataset {dataset_id})");
        let a: DatasetAnswer = self
            .get_url(self.dataset_url(dataset_id, ""), &call)
            .await?;
        a.dataset.decode().map_err(|e| self.protocol(&call, e))
    }

    /// The experiments a dataset is linked to (which may include ids that no longer exist: the
    /// server does not check them at creation). An unknown dataset has none.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn dataset_experiment_ids(&self, dataset_id: &str) -> Result<Vec<String>> {
        let call = format!("GET datasets/experiment-ids (dataset {dataset_id})");
        let a: ExperimentIdsAnswer = self
            .get_url(self.dataset_url(dataset_id, "experiment-ids"), &call)
            .await?;
        Ok(a.experiment_ids)
    }

    /// The dataset's records, as pages of at most `page_size` (default 1000) records in the
    /// server's order (creation time, then record id), each record the JSON object the server
    /// gives, fetched as the stream is consumed. A dataset that does not exist is an error
    /// ([`Error::is_not_found`](crate::Error::is_not_found)), not an empty stream (the server
    /// itself answers an empty page).
    pub fn dataset_records(
        &self,
        dataset_id: &str,
        page_size: Option<u32>,
    ) -> impl Stream<Item = Result<Vec<Value>>> + Send + 'static {
        let client = self.clone();
        let dataset_id = dataset_id.to_string();
        let page_size = page_size.unwrap_or_else(|| self.page(DATASET_PAGE)).max(1);
        paginate::pages(move |token: Option<String>| {
            let client = client.clone();
            let dataset_id = dataset_id.clone();
            let mut url = client.dataset_url(&dataset_id, "records");
            url.query_pairs_mut()
                .append_pair("max_results", &page_size.to_string());
            let first = token.is_none();
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("page_token", t);
            }
            async move {
                let call = format!("GET datasets/records (dataset {dataset_id})");
                let a: RecordsAnswer = client.get_url(url, &call).await?;
                let records = decode_records(a.records.as_deref().unwrap_or(""))
                    .map_err(|e| client.protocol(&call, e))?;
                let next = a.next_page_token.filter(|t| !t.is_empty());
                if first && records.is_empty() && next.is_none() {
                    // Empty, or absent: only the dataset itself tells.
                    client.get_dataset_or_fail(&dataset_id).await?;
                }
                Ok((records, next))
            }
        })
    }

    /// The datasets named `name` (names are not unique: all of them, oldest first).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (a
    /// server without datasets answers `FEATURE_DISABLED`: see
    /// [`Error::is_unsupported`](crate::Error::is_unsupported)), a failed connection, an answer
    /// that is not the MLflow API.
    pub async fn find_datasets_by_name(&self, name: &str) -> Result<Vec<EvaluationDataset>> {
        // The filter narrows the listing; the exact comparison decides (a database may compare
        // names without regard to case).
        self.search_datasets_filtered(Vec::new(), name_filter(name), false)
            .try_filter(|d| std::future::ready(d.name == name))
            .try_collect()
            .await
    }

    /// Creates a dataset named `name`, linked to `experiment_ids` (which the server does not
    /// check), with `tags` (keep `mlflow.user`: it becomes `created_by`). Names are not unique:
    /// this always makes a new dataset. When the answer is lost, the dataset of that name that
    /// was not there before counts as created, and none is made twice (this costs one search
    /// before the create).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. A lost answer is settled by looking
    /// the object up; when that cannot settle it (two new datasets of that name appeared), the
    /// error is [`Error::Ambiguous`](crate::Error::Ambiguous).
    pub async fn create_dataset(
        &self,
        name: &str,
        experiment_ids: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<EvaluationDataset> {
        let call = format!("POST datasets/create (dataset {name:?})");
        let body = json!({
            "name": name,
            "experiment_ids": experiment_ids,
            "tags": encode_tags(tags),
        });
        let before: BTreeSet<String> = self
            .find_datasets_by_name(name)
            .await?
            .into_iter()
            .map(|d| d.dataset_id)
            .collect();
        let (call, body, before) = (&call, &body, &before);
        self.create_reconciled(
            call,
            move || async move {
                let a: DatasetAnswer = self
                    .call_url(
                        Method::POST,
                        self.api3_url("datasets/create"),
                        body,
                        call,
                        Unsafe,
                    )
                    .await?;
                a.dataset.decode().map_err(|e| self.protocol(call, e))
            },
            Some(move || async move {
                let mut new: Vec<EvaluationDataset> = self
                    .find_datasets_by_name(name)
                    .await?
                    .into_iter()
                    .filter(|d| !before.contains(&d.dataset_id))
                    .collect();
                match new.len() {
                    0 | 1 => Ok(new.pop()),
                    n => Err(Error::Ambiguous {
                        call: call.clone(),
                        server: self.server().to_string(),
                        cause: format!(
                            "the answer was lost and {n} datasets named {name:?} appeared meanwhile ({}): remove the extra ones and run again",
                            new.iter()
                                .map(|d| d.dataset_id.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }),
                }
            }),
        )
        .await
    }

    /// Sets tags on a dataset, merged into those it has.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn set_dataset_tags(
        &self,
        dataset_id: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let call = format!("PATCH datasets/tags (dataset {dataset_id})");
        self.call_unit_url(
            Method::PATCH,
            self.dataset_url(dataset_id, "tags"),
            &json!({ "tags": encode_tags(tags) }),
            &call,
            Safe,
        )
        .await
    }

    /// Links a dataset to more experiments (which must exist; linking one twice is harmless).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (an
    /// unknown experiment is a "not found"), a failed connection, an answer that is not the
    /// MLflow API.
    pub async fn add_dataset_experiments(
        &self,
        dataset_id: &str,
        experiment_ids: &[String],
    ) -> Result<()> {
        if experiment_ids.is_empty() {
            return Ok(());
        }
        let call = format!(
            "POST datasets/add-experiments (dataset {dataset_id}, experiments {experiment_ids:?})"
        );
        self.call_unit_url(
            Method::POST,
            self.dataset_url(dataset_id, "add-experiments"),
            &json!({ "experiment_ids": experiment_ids }),
            &call,
            Safe,
        )
        .await
    }

    /// Upserts records into a dataset, as given (strip what the server owns with
    /// [`record_for_upsert`]), in one request: send [`UPSERT_BATCH`] or so at a time. Returns how
    /// many were inserted and how many updated. The server matches records by their `inputs`,
    /// so sending one twice updates it: after a retried request whose first answer was lost,
    /// the counts say "updated" for records the first try inserted.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn upsert_dataset_records(
        &self,
        dataset_id: &str,
        records: &[Value],
    ) -> Result<(u64, u64)> {
        if records.is_empty() {
            return Ok((0, 0));
        }
        let call = format!(
            "POST datasets/records (dataset {dataset_id}, {} records)",
            records.len()
        );
        let text = serde_json::to_string(records).map_err(|e| Error::Json {
            what: format!("{call}: encoding the records"),
            source: e,
        })?;
        let a: UpsertAnswer = self
            .call_url(
                Method::POST,
                self.dataset_url(dataset_id, "records"),
                &json!({ "records": text }),
                &call,
                Safe,
            )
            .await?;
        let count = |n: Option<i64>| n.unwrap_or(0).max(0) as u64;
        Ok((count(a.inserted_count), count(a.updated_count)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_keeps_what_an_upsert_carries() {
        let server = json!({
            "dataset_record_id": "dr-00e0", "dataset_id": "d-0b46",
            "inputs": {"question": "What is MLflow?"},
            "expectations": {"answer": "A platform", "extra": "e"},
            "tags": {"k": "v", "mlflow.user": "root"},
            "source": {"source_type": "DOCUMENT", "source_data": {"source_id": "doc-42"}},
            "source_type": "DOCUMENT", "source_id": "doc-42",
            "created_time": 1_796_105_015_833_i64, "last_update_time": 1_796_105_015_921_i64,
            "created_by": "root", "last_updated_by": "root", "outputs": {"resp": "x"}
        });
        assert_eq!(
            record_for_upsert(&server),
            json!({
                "inputs": {"question": "What is MLflow?"},
                "outputs": {"resp": "x"},
                "expectations": {"answer": "A platform", "extra": "e"},
                "tags": {"k": "v", "mlflow.user": "root"},
                "source": {"source_type": "DOCUMENT", "source_data": {"source_id": "doc-42"}}
            })
        );
        // Absent stays absent (an upsert that names `outputs` replaces them); a null is kept
        // (the server stores it as no outputs, as the source had).
        let bare = json!({"dataset_record_id": "dr-1", "inputs": {"q": 1}, "outputs": null});
        assert_eq!(
            record_for_upsert(&bare),
            json!({"inputs": {"q": 1}, "outputs": null})
        );
        assert_eq!(record_for_upsert(&json!([1, 2])), json!({}));
        assert_eq!(record_for_upsert(&json!("x")), json!({}));
    }

    #[test]
    fn tags_are_json_text_both_ways() {
        let tags = decode_tags(
            r#"{"team": "qa", "mlflow.user": "root", "n": 5, "b": true, "gone": null}"#,
        )
        .unwrap();
        assert_eq!(
            tags.into_iter().collect::<Vec<_>>(),
            [
                ("b".to_string(), "true".to_string()),
                ("mlflow.user".into(), "root".into()),
                ("n".into(), "5".into()),
                ("team".into(), "qa".into()),
            ]
        );
        assert!(decode_tags("").unwrap().is_empty());
        assert!(decode_tags("null").unwrap().is_empty());
        assert!(decode_tags("{}").unwrap().is_empty());
        assert!(decode_tags("[1]").is_err());
        assert!(
            decode_tags(r#"{"a": {"b": 1}}"#)
                .unwrap_err()
                .contains("\"a\"")
        );
        assert!(decode_tags("{").is_err());

        let mut tags = BTreeMap::new();
        tags.insert("mlflow.user".to_string(), "al\"ice".to_string());
        tags.insert("é".to_string(), "x\ny".to_string());
        let text = encode_tags(&tags);
        assert_eq!(text, r#"{"mlflow.user":"al\"ice","é":"x\ny"}"#);
        assert_eq!(decode_tags(&text).unwrap(), tags);
        assert_eq!(encode_tags(&BTreeMap::new()), "{}");
    }

    #[test]
    fn a_dataset_is_decoded_from_the_wire() {
        let wire: DatasetAnswer = mjson::parse(
            br#"{"dataset": {"dataset_id": "d-0b46", "name": "qa-set",
              "tags": "{\"team\": \"qa\", \"mlflow.user\": \"root\"}",
              "schema": "{\"inputs\": {\"question\": \"string\"}}",
              "profile": "{\"num_records\": 5}", "digest": "d341e6f6",
              "created_time": 1796105015801, "last_update_time": "1796105015920",
              "created_by": "root", "last_updated_by": "root"}}"#,
        )
        .unwrap();
        let d = wire.dataset.decode().unwrap();
        assert_eq!(d.dataset_id, "d-0b46");
        assert_eq!(d.tags["team"], "qa");
        assert_eq!(d.tags["mlflow.user"], "root");
        assert_eq!(d.profile.as_deref(), Some(r#"{"num_records": 5}"#));
        assert_eq!(d.created_time, Some(1_796_105_015_801));
        assert_eq!(d.last_update_time, Some(1_796_105_015_920));
        // A new dataset: no schema, profile or users yet.
        let wire: DatasetAnswer =
            mjson::parse(br#"{"dataset": {"dataset_id": "d-1", "name": "x", "tags": "{}"}}"#)
                .unwrap();
        let d = wire.dataset.decode().unwrap();
        assert_eq!((d.schema, d.created_by, d.tags.len()), (None, None, 0));
        let bad = DatasetWire {
            dataset_id: "d-2".into(),
            tags: Some("[]".into()),
            ..Default::default()
        };
        assert!(bad.decode().unwrap_err().contains("dataset d-2"));
    }

    #[test]
    fn records_are_a_json_list_of_objects_in_text() {
        let page =
            decode_records(r#"[{"inputs": {"q": 1}, "outputs": {"v": NaN}}, {"inputs": {}}]"#)
                .unwrap();
        assert_eq!(page.len(), 2);
        assert_eq!(page[0]["outputs"]["v"], "NaN");
        assert!(decode_records("").unwrap().is_empty());
        assert!(decode_records("[]").unwrap().is_empty());
        assert!(
            decode_records(r#"[{"a": 1}, 2]"#)
                .unwrap_err()
                .contains("record 1")
        );
        assert!(decode_records(r#"{"a": 1}"#).is_err());
    }

    #[test]
    fn names_are_filtered_with_the_quotes_they_lack() {
        assert_eq!(name_filter("qa-set").as_deref(), Some("name = 'qa-set'"));
        assert_eq!(name_filter("it's").as_deref(), Some(r#"name = "it's""#));
        assert_eq!(
            name_filter(r#"say "hi" \ 100%"#).as_deref(),
            Some(r#"name = 'say "hi" \ 100%'"#)
        );
        assert_eq!(name_filter(r#"it's "both""#), None);
    }

    #[test]
    fn only_the_answers_of_a_server_without_datasets_mean_none() {
        let api = |status, code: &str| {
            Error::Api(Box::new(crate::error::ApiError {
                call: "POST datasets/search".into(),
                server: "http://h".into(),
                status,
                error_code: code.into(),
                message: String::new(),
            }))
        };
        assert!(api(500, "FEATURE_DISABLED").is_endpoint_absent());
        assert!(api(501, "NOT_IMPLEMENTED").is_endpoint_absent());
        assert!(api(404, "ENDPOINT_NOT_FOUND").is_endpoint_absent());
        assert!(api(404, "").is_endpoint_absent());
        assert!(!api(404, "RESOURCE_DOES_NOT_EXIST").is_endpoint_absent());
        assert!(!api(500, "").is_endpoint_absent());
        assert!(!api(500, "INTERNAL_ERROR").is_endpoint_absent());
        assert!(!api(400, "INVALID_PARAMETER_VALUE").is_endpoint_absent());
        assert!(!api(401, "").is_endpoint_absent());
    }
}
