//! The rules the in-memory server keeps, as helpers: MLflow's error answers, tags set by key,
//! runs that must be active to take writes, registered models that must exist.

use super::{Registered, Run, State};
use crate::error::{ApiError, Error, Result};
use crate::mlflow::types::{KeyValue, LoggedModel, ModelVersion};

pub(super) fn api(status: u16, code: &str, message: String) -> Error {
    Error::Api(Box::new(ApiError {
        call: "memory".into(),
        server: "memory".into(),
        status,
        error_code: code.into(),
        message,
    }))
}

pub(super) fn not_found(what: String) -> Error {
    api(404, "RESOURCE_DOES_NOT_EXIST", what)
}

pub(super) fn upsert(tags: &mut Vec<KeyValue>, key: &str, value: &str) {
    match tags.iter_mut().find(|t| t.key == key) {
        Some(t) => t.value = value.to_string(),
        None => tags.push(KeyValue::new(key, value)),
    }
}

pub(super) fn has_tag(tags: &[KeyValue], key: &str, value: Option<&str>) -> bool {
    tags.iter()
        .any(|t| t.key == key && value.is_none_or(|v| t.value == v))
}

impl State {
    pub(super) fn id(&mut self) -> String {
        self.next_id += 1;
        format!("{:032x}", self.next_id)
    }

    pub(super) fn active_run(&mut self, run_id: &str) -> Result<&mut Run> {
        let run = self
            .runs
            .get_mut(run_id)
            .ok_or_else(|| not_found(format!("run {run_id}")))?;
        if run.info.lifecycle_stage == "deleted" {
            return Err(api(
                400,
                "INVALID_STATE",
                format!("the run {run_id} must be in the 'active' state"),
            ));
        }
        Ok(run)
    }

    pub(super) fn registered(&mut self, name: &str) -> Result<&mut Registered> {
        self.models
            .get_mut(name)
            .ok_or_else(|| not_found(format!("registered model {name:?}")))
    }

    /// A version of a registered model that is not deleted, with its deleted flag.
    pub(super) fn version(
        &mut self,
        name: &str,
        version: &str,
    ) -> Result<&mut (ModelVersion, bool)> {
        self.registered(name)?
            .versions
            .iter_mut()
            .find(|(v, deleted)| v.version == version && !deleted)
            .ok_or_else(|| not_found(format!("model {name:?} version {version}")))
    }

    pub(super) fn logged_model(&mut self, model_id: &str) -> Result<&mut LoggedModel> {
        self.logged_models
            .get_mut(model_id)
            .ok_or_else(|| not_found(format!("logged model {model_id}")))
    }
}
