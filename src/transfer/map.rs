//! Mapping between the server's REST types (`mlflow::types`) and the archive's records
//! (`format::model`), both ways: the one place that knows both.

use crate::format::model as rec;
use crate::mlflow::api::datasets::EvaluationDataset;
use crate::mlflow::databricks::permissions::{
    AccessControl, ObjectPermissions, PrincipalKind, PrivilegeAssignment,
};
use crate::mlflow::types as rest;
use crate::mlflow::types::TraceInfo;

fn tags(v: &[rest::KeyValue]) -> Vec<rec::Tag> {
    v.iter()
        .map(|t| rec::Tag::new(t.key.clone(), t.value.clone()))
        .collect()
}

/// An experiment as a record.
pub fn experiment(e: &rest::Experiment) -> rec::Experiment {
    rec::Experiment {
        experiment_id: e.experiment_id.clone(),
        name: e.name.clone(),
        artifact_location: e.artifact_location.clone(),
        lifecycle_stage: if e.lifecycle_stage.is_empty() {
            "active".into()
        } else {
            e.lifecycle_stage.clone()
        },
        creation_time: e.creation_time,
        last_update_time: e.last_update_time,
        tags: tags(&e.tags),
        workspace: String::new(),
    }
}

/// A run as a record (its metric history and artifacts travel separately).
pub fn run(r: &rest::Run) -> rec::Run {
    rec::Run {
        run_id: r.info.run_id.clone(),
        experiment_id: r.info.experiment_id.clone(),
        run_name: r.info.run_name.clone(),
        user_id: r.info.user_id.clone(),
        status: r.info.status.clone(),
        start_time: r.info.start_time,
        end_time: r.info.end_time,
        lifecycle_stage: if r.info.lifecycle_stage.is_empty() {
            "active".into()
        } else {
            r.info.lifecycle_stage.clone()
        },
        artifact_uri: r.info.artifact_uri.clone(),
        params: tags(&r.data.params),
        tags: tags(&r.data.tags),
        dataset_inputs: r
            .inputs
            .dataset_inputs
            .iter()
            .map(|d| rec::DatasetInput {
                tags: tags(&d.tags),
                name: d.dataset.name.clone(),
                digest: d.dataset.digest.clone(),
                source_type: d.dataset.source_type.clone(),
                source: d.dataset.source.clone(),
                schema: d.dataset.schema.clone(),
                profile: d.dataset.profile.clone(),
            })
            .collect(),
        model_inputs: r
            .inputs
            .model_inputs
            .iter()
            .map(|m| m.model_id.clone())
            .collect(),
        model_outputs: r
            .outputs
            .model_outputs
            .iter()
            .map(|m| rec::ModelOutput {
                model_id: m.model_id.clone(),
                step: m.step,
            })
            .collect(),
    }
}

/// A registered model as a record (its versions travel separately).
pub fn registered_model(m: &rest::RegisteredModel) -> rec::RegisteredModel {
    rec::RegisteredModel {
        name: m.name.clone(),
        description: m.description.clone(),
        creation_timestamp: m.creation_timestamp,
        last_updated_timestamp: m.last_updated_timestamp,
        tags: tags(&m.tags),
        aliases: m
            .aliases
            .iter()
            .filter_map(|a| {
                a.version.parse().ok().map(|version| rec::Alias {
                    alias: a.alias.clone(),
                    version,
                })
            })
            .collect(),
        workspace: String::new(),
    }
}

/// A model version as a record; its number must be a decimal number.
///
/// # Errors
///
/// [`Error::Input`](crate::Error::Input) naming the model and version when the version number
/// is not an integer.
pub fn model_version(v: &rest::ModelVersion) -> crate::error::Result<rec::ModelVersion> {
    let version = v.version.parse().map_err(|_| {
        crate::error::Error::Input(format!(
            "model {:?} version {:?} is not a number",
            v.name, v.version
        ))
    })?;
    Ok(rec::ModelVersion {
        version,
        description: v.description.clone(),
        current_stage: if v.current_stage.is_empty() {
            "None".into()
        } else {
            v.current_stage.clone()
        },
        source: v.source.clone(),
        run_id: v.run_id.clone(),
        model_id: v.model_id.clone().unwrap_or_default(),
        run_link: v.run_link.clone(),
        status: v.status.clone(),
        status_message: v.status_message.clone(),
        user_id: v.user_id.clone(),
        creation_timestamp: v.creation_timestamp,
        last_updated_timestamp: v.last_updated_timestamp,
        tags: tags(&v.tags),
    })
}

/// Splits one page of a metric's history into chunks of points that share their MLflow 3 links
/// (logged model, dataset), keeping the server's order.
pub fn metric_chunks(key: &str, page: &[rest::Metric]) -> Vec<rec::MetricChunk> {
    let mut out: Vec<rec::MetricChunk> = Vec::new();
    for m in page {
        let same = out.last().is_some_and(|c| {
            c.model_id == m.model_id
                && c.dataset_name == m.dataset_name
                && c.dataset_digest == m.dataset_digest
        });
        if !same {
            out.push(rec::MetricChunk {
                key: key.to_string(),
                model_id: m.model_id.clone(),
                dataset_name: m.dataset_name.clone(),
                dataset_digest: m.dataset_digest.clone(),
                points: Vec::new(),
            });
        }
        if let Some(c) = out.last_mut() {
            c.points.push(rec::Point {
                step: m.step,
                timestamp: m.timestamp,
                value: m.value,
            });
        }
    }
    out
}

/// Tags (or params) of a record as REST key-values.
pub fn key_values(tags: &[rec::Tag]) -> Vec<rest::KeyValue> {
    tags.iter()
        .map(|t| rest::KeyValue::new(t.key.clone(), t.value.clone()))
        .collect()
}

/// A record's dataset input as the REST type `runs/log-inputs` takes.
pub fn dataset_input(d: &rec::DatasetInput) -> rest::DatasetInput {
    rest::DatasetInput {
        tags: key_values(&d.tags),
        dataset: rest::Dataset {
            name: d.name.clone(),
            digest: d.digest.clone(),
            source_type: d.source_type.clone(),
            source: d.source.clone(),
            schema: d.schema.clone(),
            profile: d.profile.clone(),
        },
    }
}

/// The points of a metric chunk as REST metrics, linked to `model_id` (a destination id).
pub fn metrics<'a>(
    c: &'a rec::MetricChunk,
    model_id: Option<&str>,
) -> impl Iterator<Item = rest::Metric> + 'a {
    let model_id = model_id.map(str::to_string);
    c.points.iter().map(move |p| rest::Metric {
        key: c.key.clone(),
        value: p.value,
        timestamp: p.timestamp,
        step: p.step,
        model_id: model_id.clone(),
        dataset_name: c.dataset_name.clone(),
        dataset_digest: c.dataset_digest.clone(),
        run_id: None,
    })
}

/// A trace's info as a record (its span data and attachments travel as the unit's artifacts).
pub fn trace(t: &TraceInfo) -> rec::Trace {
    let pairs = |m: &std::collections::BTreeMap<String, String>| -> Vec<rec::Tag> {
        m.iter().map(|(k, v)| rec::Tag::new(k, v)).collect()
    };
    rec::Trace {
        trace_id: t.trace_id.clone(),
        experiment_id: t.experiment_id.clone(),
        request_time: t.request_time,
        execution_duration: t.execution_duration,
        state: if t.state.is_empty() {
            "STATE_UNSPECIFIED".into()
        } else {
            t.state.clone()
        },
        client_request_id: t.client_request_id.clone().unwrap_or_default(),
        request_preview: t.request_preview.clone().unwrap_or_default(),
        response_preview: t.response_preview.clone().unwrap_or_default(),
        trace_metadata: pairs(&t.trace_metadata),
        tags: pairs(&t.tags),
        assessments: t.assessments.clone(),
    }
}

/// A trace record as the info to write (its experiment still the source's).
pub fn trace_info(t: &rec::Trace) -> TraceInfo {
    let map = |l: &[rec::Tag]| -> std::collections::BTreeMap<String, String> {
        l.iter().map(|t| (t.key.clone(), t.value.clone())).collect()
    };
    let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty());
    TraceInfo {
        trace_id: t.trace_id.clone(),
        experiment_id: t.experiment_id.clone(),
        request_time: t.request_time,
        execution_duration: t.execution_duration,
        state: t.state.clone(),
        client_request_id: some(&t.client_request_id),
        request_preview: some(&t.request_preview),
        response_preview: some(&t.response_preview),
        trace_metadata: map(&t.trace_metadata),
        tags: map(&t.tags),
        assessments: t.assessments.clone(),
    }
}

/// An evaluation dataset as a record, with the experiments it is linked to.
pub fn dataset(d: &EvaluationDataset, experiment_ids: Vec<String>) -> rec::Dataset {
    rec::Dataset {
        dataset_id: d.dataset_id.clone(),
        name: d.name.clone(),
        tags: d.tags.iter().map(|(k, v)| rec::Tag::new(k, v)).collect(),
        experiment_ids,
        schema: d.schema.clone().unwrap_or_default(),
        profile: d.profile.clone().unwrap_or_default(),
        digest: d.digest.clone().unwrap_or_default(),
        created_time: d.created_time,
        last_update_time: d.last_update_time,
        created_by: d.created_by.clone().unwrap_or_default(),
        last_updated_by: d.last_updated_by.clone().unwrap_or_default(),
        workspace: String::new(),
    }
}

/// What was granted on an object, as a record.
pub fn permissions(p: &ObjectPermissions) -> rec::Permissions {
    rec::Permissions {
        acl: p
            .acl
            .iter()
            .map(|e| rec::AclEntry {
                principal_type: e.kind.name().to_string(),
                principal: e.principal.clone(),
                level: e.level.clone(),
            })
            .collect(),
        grants: p
            .grants
            .iter()
            .map(|g| rec::Grant {
                principal: g.principal.clone(),
                privileges: g.privileges.clone(),
            })
            .collect(),
    }
}

/// A record's access control entry as the workspace API takes it.
///
/// # Errors
///
/// [`Error::Input`](crate::Error::Input) for a principal type that is not one of §7.11's (a
/// reader refuses such an archive; other sources may not).
pub fn access_control(e: &rec::AclEntry) -> crate::error::Result<AccessControl> {
    let kind = PrincipalKind::parse(&e.principal_type).ok_or_else(|| {
        crate::Error::Input(format!(
            "access control entry of {:?}: principal type {:?} is not user, group or service_principal",
            e.principal, e.principal_type
        ))
    })?;
    Ok(AccessControl {
        kind,
        principal: e.principal.clone(),
        level: e.level.clone(),
    })
}

/// A record's grant as Unity Catalog takes it.
pub fn grant(g: &rec::Grant) -> PrivilegeAssignment {
    PrivilegeAssignment {
        principal: g.principal.clone(),
        privileges: g.privileges.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_where_links_change() {
        let m = |v: f64, model: Option<&str>| rest::Metric {
            key: "k".into(),
            value: v,
            timestamp: 1,
            step: 0,
            model_id: model.map(String::from),
            ..rest::Metric::default()
        };
        let chunks = metric_chunks(
            "k",
            &[
                m(1.0, None),
                m(2.0, None),
                m(3.0, Some("m-1")),
                m(4.0, None),
            ],
        );
        let sizes: Vec<usize> = chunks.iter().map(|c| c.points.len()).collect();
        assert_eq!(sizes, vec![2, 1, 1]);
        assert_eq!(chunks[1].model_id.as_deref(), Some("m-1"));
    }
}
