//! The REST API's data types, as the server writes them (proto JSON: fields with default values
//! are omitted, so everything has a default). These are separate from the archive's record types
//! on purpose: `transfer` maps between the two.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::json;

/// A `{key, value}` pair (tags, params).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct KeyValue {
    /// The key.
    pub key: String,
    /// The value (omitted by the server when empty).
    #[serde(default)]
    pub value: String,
}

impl KeyValue {
    /// The pair of `tags` whose key is `key`, if `key` is given and present.
    pub fn find<'a>(tags: &'a [KeyValue], key: Option<&str>) -> Option<&'a KeyValue> {
        let key = key?;
        tags.iter().find(|t| t.key == key)
    }

    /// A pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        KeyValue {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// Which experiments or runs a search returns, by lifecycle stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ViewType {
    /// Active objects only (the server's default).
    #[default]
    ActiveOnly,
    /// Deleted objects only.
    DeletedOnly,
    /// Both.
    All,
}

/// An experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Experiment {
    /// Its id (a decimal string on OSS servers).
    pub experiment_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Where its runs' artifacts go by default.
    #[serde(default)]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub last_update_time: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub creation_time: Option<i64>,
    /// Tags (the description is `mlflow.note.content`).
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Run {
    /// What the run is.
    pub info: RunInfo,
    /// Its latest metrics, params and tags.
    #[serde(default)]
    pub data: RunData,
    /// Datasets and models it used.
    #[serde(default)]
    pub inputs: RunInputs,
    /// Models it produced.
    #[serde(default)]
    pub outputs: RunOutputs,
}

/// A run's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunInfo {
    /// Its id.
    #[serde(default)]
    pub run_id: String,
    /// Its name.
    #[serde(default)]
    pub run_name: String,
    /// The experiment it belongs to.
    #[serde(default)]
    pub experiment_id: String,
    /// The user (often empty on servers without authentication; see the `mlflow.user` tag).
    #[serde(default)]
    pub user_id: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    #[serde(default)]
    pub status: String,
    /// Milliseconds since the epoch.
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub start_time: Option<i64>,
    /// Milliseconds since the epoch; absent while running.
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub end_time: Option<i64>,
    /// The root of its artifacts.
    #[serde(default)]
    pub artifact_uri: String,
    /// `active` or `deleted`.
    #[serde(default)]
    pub lifecycle_stage: String,
}

/// A run's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunData {
    /// The latest value of each metric.
    #[serde(default)]
    pub metrics: Vec<Metric>,
    /// Parameters.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// One metric point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Metric {
    /// The metric's key.
    pub key: String,
    /// The value; NaN and the infinities travel as words.
    #[serde(with = "json::float")]
    pub value: f64,
    /// Milliseconds since the epoch.
    #[serde(default)]
    pub timestamp: i64,
    /// The step.
    #[serde(default)]
    pub step: i64,
    /// The logged model the point belongs to (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The dataset the point was measured on (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// The digest of that dataset (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    /// The run (set in some answers, never sent).
    #[serde(default, skip_serializing)]
    pub run_id: Option<String>,
}

/// A run's inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunInputs {
    /// Datasets.
    #[serde(default)]
    pub dataset_inputs: Vec<DatasetInput>,
    /// Logged models used as inputs (MLflow 3).
    #[serde(default)]
    pub model_inputs: Vec<ModelInput>,
}

/// A dataset a run used, with the input's tags (e.g. `mlflow.data.context`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DatasetInput {
    /// Tags of this use of the dataset.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// The dataset.
    pub dataset: Dataset,
}

/// A dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dataset {
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Its digest.
    #[serde(default)]
    pub digest: String,
    /// The kind of source (`http`, `local`, `delta_table`, ...).
    #[serde(default)]
    pub source_type: String,
    /// The source, as JSON text.
    #[serde(default)]
    pub source: String,
    /// The schema, as JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
    /// The profile, as JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
}

/// A logged model used as a run input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModelInput {
    /// The logged model's id.
    pub model_id: String,
}

/// A run's outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunOutputs {
    /// Logged models the run produced.
    #[serde(default)]
    pub model_outputs: Vec<ModelOutput>,
}

/// A logged model a run produced, at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModelOutput {
    /// The logged model's id.
    pub model_id: String,
    /// The step.
    #[serde(default)]
    pub step: i64,
}

/// One entry of an artifact listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileInfo {
    /// The path (a base name in proxy listings, relative to the root in tracking listings).
    pub path: String,
    /// True for a directory.
    #[serde(default)]
    pub is_dir: bool,
    /// The size in bytes (absent for empty files and directories).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub file_size: Option<i64>,
}

/// A registered model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RegisteredModel {
    /// Its name.
    pub name: String,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub creation_timestamp: Option<i64>,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub last_updated_timestamp: Option<i64>,
    /// Who created it (where the server knows).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// The latest version per stage (not all versions: see `model-versions/search`).
    #[serde(default)]
    pub latest_versions: Vec<ModelVersion>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// Aliases.
    #[serde(default)]
    pub aliases: Vec<Alias>,
}

/// An alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Alias {
    /// The alias.
    pub alias: String,
    /// The version it points to.
    pub version: String,
}

/// A model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ModelVersion {
    /// The registered model's name.
    pub name: String,
    /// The version number, as a decimal string.
    pub version: String,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub creation_timestamp: Option<i64>,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub last_updated_timestamp: Option<i64>,
    /// Who created it (where the server knows).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// `None`, `Staging`, `Production` or `Archived`.
    #[serde(default)]
    pub current_stage: String,
    /// Its description.
    #[serde(default)]
    pub description: String,
    /// Where the model's files are (`runs:/`, `models:/`, `mlflow-artifacts:/`, ...).
    #[serde(default)]
    pub source: String,
    /// The run that produced it.
    #[serde(default)]
    pub run_id: String,
    /// `PENDING_REGISTRATION`, `FAILED_REGISTRATION` or `READY`.
    #[serde(default)]
    pub status: String,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
    /// A link to the run on another server.
    #[serde(default)]
    pub run_link: String,
    /// Aliases pointing at this version (only in `get`, not in `search`). Unity Catalog sends
    /// them as `{alias, version}` objects, MLflow as strings: both read as the alias.
    #[serde(default, deserialize_with = "alias_names")]
    pub aliases: Vec<String>,
    /// The logged model it registers (MLflow 3; not kept by every store).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Where Unity Catalog keeps the version's files (`s3://…`, `abfss://…`, `gs://…`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub storage_location: String,
    /// The Databricks workspace whose tracking server holds `run_id` (Unity Catalog).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_tracking_server_id: String,
}

/// A version's aliases as names, from strings (MLflow) or `{alias, version}` objects (Unity
/// Catalog).
fn alias_names<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneAlias {
        Name(String),
        Object { alias: String },
    }
    let items: Option<Vec<OneAlias>> = Option::deserialize(d)?;
    Ok(items
        .unwrap_or_default()
        .into_iter()
        .map(|a| match a {
            OneAlias::Name(n) | OneAlias::Object { alias: n } => n,
        })
        .collect())
}

impl ModelVersion {
    /// The version as a number, for ordering (10 after 9); `u64::MAX` if it is not one.
    pub fn number(&self) -> u64 {
        self.version.parse().unwrap_or(u64::MAX)
    }
}

/// A logged model (MLflow 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoggedModel {
    /// What the model is.
    pub info: LoggedModelInfo,
    /// Its params and metrics.
    #[serde(default)]
    pub data: LoggedModelData,
}

/// A logged model's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoggedModelInfo {
    /// Its id (`m-<32 hex>`).
    pub model_id: String,
    /// The experiment it belongs to.
    #[serde(default)]
    pub experiment_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub creation_timestamp_ms: Option<i64>,
    /// Milliseconds since the epoch (set by the server).
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    pub last_updated_timestamp_ms: Option<i64>,
    /// The root of its artifacts.
    #[serde(default)]
    pub artifact_uri: String,
    /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY` or `LOGGED_MODEL_UPLOAD_FAILED`.
    #[serde(default)]
    pub status: String,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Who created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub creator_id: String,
    /// The flavor or kind of model.
    #[serde(default)]
    pub model_type: String,
    /// The run that produced it.
    #[serde(default)]
    pub source_run_id: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<KeyValue>,
}

/// A logged model's params and metrics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct LoggedModelData {
    /// Params.
    #[serde(default)]
    pub params: Vec<KeyValue>,
    /// Metrics.
    #[serde(default)]
    pub metrics: Vec<Metric>,
}

/// Server information (`/api/3.0/mlflow/server-info`, MLflow 3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ServerInfo {
    /// The tracking store's kind (`SqlStore`, `FileStore`, ...).
    #[serde(default)]
    pub store_type: String,
    /// Whether the artifact proxy does multipart uploads.
    #[serde(default)]
    pub multipart_uploads_enabled: bool,
}

/// A trace's info as MLflow 3 keeps it (`TraceInfoV3`), without its spans. On the wire its times
/// are proto JSON text (`request_time` RFC 3339, `execution_duration` `"1.234s"`); here they are
/// milliseconds, all the server keeps of them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "trace_wire::TraceInfo", into = "trace_wire::TraceInfo")]
pub struct TraceInfo {
    /// Its id (`tr-<32 hex>` for traces of MLflow 3; any text for older ones).
    pub trace_id: String,
    /// The experiment it belongs to (`trace_location.mlflow_experiment.experiment_id`).
    pub experiment_id: String,
    /// When it started, in milliseconds since the epoch.
    pub request_time: Option<i64>,
    /// How long it took, in milliseconds.
    pub execution_duration: Option<i64>,
    /// `OK`, `ERROR`, `IN_PROGRESS` or `STATE_UNSPECIFIED`.
    pub state: String,
    /// The caller's own id for the request.
    pub client_request_id: Option<String>,
    /// The start of the request, as the server keeps it for display.
    pub request_preview: Option<String>,
    /// The start of the response, as the server keeps it for display.
    pub response_preview: Option<String>,
    /// Metadata (immutable after creation: `mlflow.sourceRun`, `mlflow.trace.sizeStats`, ...).
    pub trace_metadata: BTreeMap<String, String>,
    /// Tags (`mlflow.traceName`, `mlflow.artifactLocation`, `mlflow.trace.spansLocation`, ...).
    pub tags: BTreeMap<String, String>,
    /// The assessments (feedback, expectations) as the server gives them: their times stay
    /// RFC 3339 text.
    pub assessments: Vec<serde_json::Value>,
}

/// The proto JSON shape of [`TraceInfo`].
mod trace_wire {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Serialize};

    use crate::mlflow::json::{duration, timestamp};

    #[derive(Serialize, Deserialize)]
    pub struct TraceInfo {
        trace_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_request_id: Option<String>,
        #[serde(default)]
        trace_location: Location,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_preview: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        response_preview: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        execution_duration: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        #[serde(default)]
        trace_metadata: BTreeMap<String, String>,
        #[serde(default)]
        tags: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        assessments: Vec<serde_json::Value>,
    }

    #[derive(Serialize, Deserialize, Default)]
    struct Location {
        #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
        kind: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mlflow_experiment: Option<Experiment>,
    }

    #[derive(Serialize, Deserialize, Default)]
    struct Experiment {
        #[serde(default)]
        experiment_id: String,
    }

    impl TryFrom<TraceInfo> for super::TraceInfo {
        type Error = String;

        fn try_from(w: TraceInfo) -> Result<Self, String> {
            let id = &w.trace_id;
            let request_time = match &w.request_time {
                None => None,
                Some(t) => Some(timestamp::parse_ms(t).ok_or_else(|| {
                    format!("trace {id}: request_time {t:?} is not an RFC 3339 time")
                })?),
            };
            let execution_duration = match &w.execution_duration {
                None => None,
                Some(d) => Some(duration::parse_ms(d).ok_or_else(|| {
                    format!(
                        "trace {id}: execution_duration {d:?} is not a duration like \"1.234s\""
                    )
                })?),
            };
            Ok(super::TraceInfo {
                experiment_id: w
                    .trace_location
                    .mlflow_experiment
                    .map(|e| e.experiment_id)
                    .unwrap_or_default(),
                request_time,
                execution_duration,
                state: w.state.unwrap_or_else(|| "STATE_UNSPECIFIED".into()),
                client_request_id: w.client_request_id,
                request_preview: w.request_preview,
                response_preview: w.response_preview,
                trace_metadata: w.trace_metadata,
                tags: w.tags,
                assessments: w.assessments,
                trace_id: w.trace_id,
            })
        }
    }

    impl From<super::TraceInfo> for TraceInfo {
        fn from(t: super::TraceInfo) -> Self {
            TraceInfo {
                trace_id: t.trace_id,
                client_request_id: t.client_request_id,
                trace_location: Location {
                    kind: Some("MLFLOW_EXPERIMENT".into()),
                    mlflow_experiment: Some(Experiment {
                        experiment_id: t.experiment_id,
                    }),
                },
                request_preview: t.request_preview,
                response_preview: t.response_preview,
                request_time: t.request_time.map(timestamp::format_ms),
                execution_duration: t.execution_duration.map(duration::format_ms),
                state: Some(t.state).filter(|s| !s.is_empty()),
                trace_metadata: t.trace_metadata,
                tags: t.tags,
                assessments: t.assessments,
            }
        }
    }
}
