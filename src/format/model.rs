//! The archive's records (spec/format.md §7): the common currency every source yields and every
//! sink takes. Unknown fields are ignored on reading (§10); optional fields are omitted on writing
//! when absent, so the same source state always gives the same bytes.

use serde::{Deserialize, Serialize};

use super::checksum::Crc32;

/// The format's name in the header.
pub const FORMAT_NAME: &str = "mlflow-archive";

/// A `{key, value}` pair: tags and params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Tag {
    /// The key.
    pub key: String,
    /// The value.
    #[serde(default)]
    pub value: String,
}

impl Tag {
    /// A pair.
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Self {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The first member: what the archive is (§7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always `mlflow-archive`.
    pub format: String,
    /// `MAJOR.MINOR`.
    pub version: String,
    /// The program that wrote the archive, e.g. `mlflow-archive 0.1.0`.
    pub generator: String,
    /// Where the content came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Where an archive's content came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Source {
    /// The tracking server's address, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_uri: Option<String>,
    /// What was exported: `experiment`, `experiments`, `run`, `model`, `all`, `convert`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// An experiment (§7.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Experiment {
    /// Its id on the source.
    pub experiment_id: String,
    /// Its name.
    pub name: String,
    /// Its artifact location on the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_location: String,
    /// `active` or `deleted`.
    #[serde(default = "active")]
    pub lifecycle_stage: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<i64>,
    /// Tags, including the description `mlflow.note.content`.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The workspace it belongs to, on a source with workspaces (format 1.1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace: String,
}

fn active() -> String {
    "active".into()
}

/// Empty, as a record without its optional fields reads (`lifecycle_stage` `active`).
impl Default for Experiment {
    fn default() -> Self {
        Experiment {
            experiment_id: String::new(),
            name: String::new(),
            artifact_location: String::new(),
            lifecycle_stage: active(),
            creation_time: None,
            last_update_time: None,
            tags: Vec::new(),
            workspace: String::new(),
        }
    }
}

/// Empty, as a record without its optional fields reads (`lifecycle_stage` `active`); `status`
/// is required and left empty, so a writer refuses it until it is set.
impl Default for Run {
    fn default() -> Self {
        Run {
            run_id: String::new(),
            experiment_id: String::new(),
            run_name: String::new(),
            user_id: String::new(),
            status: String::new(),
            start_time: None,
            end_time: None,
            lifecycle_stage: active(),
            artifact_uri: String::new(),
            params: Vec::new(),
            tags: Vec::new(),
            dataset_inputs: Vec::new(),
            model_inputs: Vec::new(),
            model_outputs: Vec::new(),
        }
    }
}

/// A run (§7.3); its metric history and artifacts follow it in the same unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Its id on the source.
    pub run_id: String,
    /// Its experiment's id on the source.
    pub experiment_id: String,
    /// Its name.
    #[serde(default)]
    pub run_name: String,
    /// The user, where the source knew it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// `RUNNING`, `SCHEDULED`, `FINISHED`, `FAILED` or `KILLED`.
    pub status: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// `active` or `deleted`.
    #[serde(default = "active")]
    pub lifecycle_stage: String,
    /// Its artifact root on the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_uri: String,
    /// Parameters.
    #[serde(default)]
    pub params: Vec<Tag>,
    /// Tags (nesting is the tag `mlflow.parentRunId`).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Datasets the run used.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dataset_inputs: Vec<DatasetInput>,
    /// Logged models the run used as inputs (ids on the source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_inputs: Vec<String>,
    /// Logged models the run produced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub model_outputs: Vec<ModelOutput>,
}

impl Run {
    /// The parent run's id on the source (tag `mlflow.parentRunId`), if nested.
    pub fn parent_run_id(&self) -> Option<&str> {
        self.tags
            .iter()
            .find(|t| t.key == "mlflow.parentRunId")
            .map(|t| t.value.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// A dataset a run used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DatasetInput {
    /// Tags of this use (e.g. `mlflow.data.context`).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Its name.
    pub name: String,
    /// Its digest.
    pub digest: String,
    /// The kind of source.
    #[serde(default)]
    pub source_type: String,
    /// The source, JSON text.
    #[serde(default)]
    pub source: String,
    /// The schema, JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
    /// The profile, JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
}

/// The `source_type` of a dataset input that is an MLflow evaluation dataset (its `source` is
/// `{"dataset_id": ...}`).
pub const EVALUATION_DATASET_SOURCE: &str = "mlflow_evaluation_dataset";

impl DatasetInput {
    /// The id of the evaluation dataset this input is (its source's `dataset_id`), if it is one.
    pub fn evaluation_dataset_id(&self) -> Option<String> {
        if self.source_type != EVALUATION_DATASET_SOURCE {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&self.source).ok()?;
        v.get("dataset_id")?
            .as_str()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    }
}

/// A logged model a run produced, at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ModelOutput {
    /// The logged model's id on the source.
    pub model_id: String,
    /// The step.
    #[serde(default)]
    pub step: i64,
}

/// A piece of one metric's history (§7.4): points of one key (and one model/dataset link), in the
/// source's order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct MetricChunk {
    /// The metric's key.
    pub key: String,
    /// The logged model the points belong to (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// The dataset the points were measured on (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_name: Option<String>,
    /// That dataset's digest (MLflow 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_digest: Option<String>,
    /// The points.
    pub points: Vec<Point>,
}

/// One metric point: `[step, timestamp, value]` in JSON; the value is a number or one of the
/// strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Point {
    /// The step.
    pub step: i64,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The value.
    pub value: f64,
}

impl PartialEq for Point {
    /// Equal when step, timestamp and the value's bits agree (so NaN equals NaN).
    fn eq(&self, other: &Self) -> bool {
        self.step == other.step
            && self.timestamp == other.timestamp
            && (self.value.to_bits() == other.value.to_bits()
                || (self.value.is_nan() && other.value.is_nan()))
    }
}

impl Serialize for Point {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeTuple;
        let mut t = s.serialize_tuple(3)?;
        t.serialize_element(&self.step)?;
        t.serialize_element(&self.timestamp)?;
        t.serialize_element(&Value(self.value))?;
        t.end()
    }
}

impl<'de> Deserialize<'de> for Point {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (step, timestamp, Value(value)) = <(i64, i64, Value)>::deserialize(d)?;
        Ok(Point {
            step,
            timestamp,
            value,
        })
    }
}

/// A metric value in JSON.
struct Value(f64);

impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        if v.is_finite() {
            s.serialize_f64(v)
        } else if v.is_nan() {
            s.serialize_str("NaN")
        } else if v > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum V {
            N(f64),
            S(String),
        }
        match V::deserialize(d)? {
            V::N(v) => Ok(Value(v)),
            V::S(s) => match s.as_str() {
                "NaN" => Ok(Value(f64::NAN)),
                "Infinity" => Ok(Value(f64::INFINITY)),
                "-Infinity" => Ok(Value(f64::NEG_INFINITY)),
                other => Err(serde::de::Error::custom(format!(
                    "metric value {other:?} is neither a number nor NaN, Infinity or -Infinity"
                ))),
            },
        }
    }
}

/// A logged model (§7.5, MLflow 3); its artifacts follow it in the same unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LoggedModel {
    /// Its id on the source.
    pub model_id: String,
    /// Its experiment's id on the source.
    pub experiment_id: String,
    /// Its name.
    #[serde(default)]
    pub name: String,
    /// The flavor or kind.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_type: String,
    /// The run that produced it (id on the source).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_run_id: String,
    /// `LOGGED_MODEL_READY`, ...
    #[serde(default)]
    pub status: String,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Its artifact root on the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub artifact_uri: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Parameters.
    #[serde(default)]
    pub params: Vec<Tag>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

/// A registered model (§7.6); all its versions follow it in the same unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RegisteredModel {
    /// Its name.
    pub name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Aliases.
    #[serde(default)]
    pub aliases: Vec<Alias>,
    /// The workspace it belongs to, on a source with workspaces (format 1.1).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace: String,
}

/// The tag that makes a registered model (and each of its versions) a prompt (MLflow 3).
pub const PROMPT_TAG: &str = "mlflow.prompt.is_prompt";

impl RegisteredModel {
    /// Whether it is a prompt: tagged [`PROMPT_TAG`] `true` (§7.6).
    pub fn is_prompt(&self) -> bool {
        self.tags
            .iter()
            .any(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
    }
}

/// An alias of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Alias {
    /// The alias.
    pub alias: String,
    /// The version number it points to.
    pub version: u64,
}

/// A model version (§7.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelVersion {
    /// Its number.
    pub version: u64,
    /// Its description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// `None`, `Staging`, `Production` or `Archived`.
    #[serde(default = "stage_none")]
    pub current_stage: String,
    /// Where its files are on the source (`runs:/`, `models:/`, `mlflow-artifacts:/`, ...).
    #[serde(default)]
    pub source: String,
    /// The run that produced it (id on the source).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_id: String,
    /// The logged model it registers (id on the source).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model_id: String,
    /// A link to the run.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub run_link: String,
    /// `READY`, ...
    #[serde(default)]
    pub status: String,
    /// Details of the status.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status_message: String,
    /// Who created it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_timestamp: Option<i64>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

fn stage_none() -> String {
    "None".into()
}

/// Empty, as a record without its optional fields reads (`current_stage` `None`).
impl Default for ModelVersion {
    fn default() -> Self {
        ModelVersion {
            version: 0,
            description: String::new(),
            current_stage: stage_none(),
            source: String::new(),
            run_id: String::new(),
            model_id: String::new(),
            run_link: String::new(),
            status: String::new(),
            status_message: String::new(),
            user_id: String::new(),
            creation_timestamp: None,
            last_updated_timestamp: None,
            tags: Vec::new(),
        }
    }
}

/// A trace (§7.8, format 1.1, MLflow 3 tracing): its info and assessments; its span data and
/// attachments follow as the unit's artifacts (`traces.json`, `attachments/<id>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Trace {
    /// Its id on the source.
    pub trace_id: String,
    /// Its experiment's id on the source.
    pub experiment_id: String,
    /// When the request started, milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_time: Option<i64>,
    /// How long it took, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_duration: Option<i64>,
    /// `OK`, `ERROR`, `IN_PROGRESS` or `STATE_UNSPECIFIED`.
    pub state: String,
    /// The id the client gave the request.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_request_id: String,
    /// The start of the request, as MLflow shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub request_preview: String,
    /// The start of the response, as MLflow shows it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub response_preview: String,
    /// Metadata (`mlflow.sourceRun` names the run it belongs to).
    #[serde(default)]
    pub trace_metadata: Vec<Tag>,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Feedback and expectations, each an MLflow 3 assessment object as the REST API gives it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub assessments: Vec<serde_json::Value>,
}

/// The artifact of a trace unit that holds its span data (§7.8).
pub const TRACE_SPANS_FILE: &str = "traces.json";

/// The metadata key of a trace that names the run it was made in.
pub const TRACE_SOURCE_RUN: &str = "mlflow.sourceRun";
/// The metadata key of a trace that names the logged model it was made with.
pub const TRACE_MODEL_ID: &str = "mlflow.modelId";

impl Trace {
    /// The value of the metadata `key`, if set and not empty.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.trace_metadata
            .iter()
            .find(|t| t.key == key)
            .map(|t| t.value.as_str())
            .filter(|v| !v.is_empty())
    }
}

/// An evaluation dataset (§7.10, format 1.1, MLflow 3 GenAI); its records follow in chunks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Dataset {
    /// Its id on the source.
    pub dataset_id: String,
    /// Its name.
    pub name: String,
    /// Tags (`mlflow.user` names who made it).
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// The experiments it is linked to (ids on the source).
    #[serde(default)]
    pub experiment_ids: Vec<String>,
    /// Its schema, JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema: String,
    /// Its profile, JSON text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub profile: String,
    /// Its digest on the source.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<i64>,
    /// Milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_update_time: Option<i64>,
    /// Who made it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub created_by: String,
    /// Who changed it last.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_updated_by: String,
    /// The workspace it belongs to, on a source with workspaces.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub workspace: String,
}

/// A piece of a dataset's records (§7.11): each an object as the REST API gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct DatasetRecords {
    /// The records, in the source's order.
    pub records: Vec<serde_json::Value>,
}

/// Who may do what with an experiment or a registered model on the source (§7.11, format 1.2):
/// its Databricks workspace access control list, or its Unity Catalog grants. Only what was
/// granted on the object itself (not inherited from a folder, the registry or a catalog).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Permissions {
    /// Workspace access control entries (experiments, workspace registry models).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acl: Vec<AclEntry>,
    /// Unity Catalog grants (registered models in Unity Catalog).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<Grant>,
}

impl Permissions {
    /// How many entries it holds (access control entries and grants), as the trailer counts
    /// them.
    pub fn entries(&self) -> u64 {
        (self.acl.len() + self.grants.len()) as u64
    }

    /// True when it holds no entry.
    pub fn is_empty(&self) -> bool {
        self.acl.is_empty() && self.grants.is_empty()
    }
}

/// One workspace access control entry: a principal and its permission level.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AclEntry {
    /// `user`, `group` or `service_principal` ([`PRINCIPAL_TYPES`]).
    pub principal_type: String,
    /// The user's name (an email), the group's name, or the service principal's application id.
    pub principal: String,
    /// The permission level as the workspace names it (`CAN_READ`, `CAN_EDIT`, `CAN_MANAGE`, ...).
    pub level: String,
}

/// The kinds of principal an access control entry names (§7.11).
pub const PRINCIPAL_TYPES: &[&str] = &["user", "group", "service_principal"];

/// One principal's Unity Catalog privileges on a registered model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Grant {
    /// A user's name, a group's name or a service principal's application id.
    pub principal: String,
    /// Privileges as Unity Catalog names them (`EXECUTE`, `APPLY_TAG`, `MANAGE`, ...).
    pub privileges: Vec<String>,
}

/// The last member of a unit (§8.2): every other member of the unit, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Seal {
    /// The unit's prefix, e.g. `runs/<run_id>`.
    pub unit: String,
    /// Its members.
    pub members: Vec<SealEntry>,
}

/// One member as a seal lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct SealEntry {
    /// The member's name.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// The CRC-32 of its bytes.
    pub crc32: Crc32,
}

/// The last member of the archive (§8.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Trailer {
    /// Sealed units.
    pub units: u64,
    /// Members before the trailer (header, unit members and seals).
    pub members: u64,
    /// The CRC-32 of the header member.
    pub header_crc32: Crc32,
    /// The CRC-32 of all seal members' bytes, concatenated in archive order.
    pub seals_crc32: Crc32,
    /// What the archive holds.
    pub counts: Counts,
}

/// Counts of what an archive holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Counts {
    /// Experiments.
    pub experiments: u64,
    /// Runs.
    pub runs: u64,
    /// Metric chunks.
    pub metric_chunks: u64,
    /// Metric points.
    pub metric_points: u64,
    /// Artifact files (of runs, logged models and traces).
    pub artifacts: u64,
    /// Artifact bytes.
    pub artifact_bytes: u64,
    /// Logged models.
    pub logged_models: u64,
    /// Registered models.
    pub registered_models: u64,
    /// Model versions.
    pub model_versions: u64,
    /// Prompts (registered models tagged as prompts, counted in `registered_models` too; 1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompts: u64,
    /// Versions of prompts (counted in `model_versions` too; 1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub prompt_versions: u64,
    /// Traces (1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub traces: u64,
    /// Assessments of traces (1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub assessments: u64,
    /// Evaluation datasets (1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub datasets: u64,
    /// Records of evaluation datasets (1.1).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dataset_records: u64,
    /// Permission entries of experiments and registered models: access control entries and
    /// grants (1.2).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub permissions: u64,
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Counts {
    /// The counts a 1.1 archive's trailer holds: those that later versions added are zero.
    pub fn as_of_1_1(mut self) -> Counts {
        self.permissions = 0;
        self
    }

    /// The counts a 1.0 archive's trailer holds: those that later versions added are zero.
    pub fn as_of_1_0(self) -> Counts {
        let mut c = self.as_of_1_1();
        c.prompts = 0;
        c.prompt_versions = 0;
        c.traces = 0;
        c.assessments = 0;
        c.datasets = 0;
        c.dataset_records = 0;
        c
    }

    /// The counts an archive of minor version `minor` holds: those later versions added are zero.
    pub fn as_of_minor(self, minor: u32) -> Counts {
        match minor {
            0 => self.as_of_1_0(),
            1 => self.as_of_1_1(),
            _ => self,
        }
    }
}
