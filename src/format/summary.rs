//! What an archive holds, unit by unit, for `inspect`: read front to back, every check applied,
//! one small summary per unit (never the bodies).

use std::io::Read;

use serde::Serialize;

use super::model::{Counts, Header};
use super::path::UnitId;
use super::read::{ArchiveReader, Record};
use crate::error::Result;

/// One unit's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnitSummary {
    /// An experiment.
    Experiment {
        /// Its id on the source.
        id: String,
        /// Its name.
        name: String,
        /// `active` or `deleted`.
        lifecycle_stage: String,
        /// Its permission entries (format 1.2).
        #[serde(skip_serializing_if = "is_zero")]
        permissions: u64,
    },
    /// A run.
    Run {
        /// Its id on the source.
        id: String,
        /// Its experiment.
        experiment_id: String,
        /// Its name.
        name: String,
        /// Its status.
        status: String,
        /// `active` or `deleted`.
        lifecycle_stage: String,
        /// Its parent, if nested.
        #[serde(skip_serializing_if = "Option::is_none")]
        parent_run_id: Option<String>,
        /// Params.
        params: usize,
        /// Tags.
        tags: usize,
        /// Distinct metric keys.
        metric_keys: usize,
        /// Metric points.
        metric_points: u64,
        /// Artifact files.
        artifacts: u64,
        /// Artifact bytes.
        artifact_bytes: u64,
    },
    /// A logged model.
    LoggedModel {
        /// Its id on the source.
        id: String,
        /// Its name.
        name: String,
        /// The run that produced it.
        source_run_id: String,
        /// Artifact files.
        artifacts: u64,
        /// Artifact bytes.
        artifact_bytes: u64,
    },
    /// A registered model, or a prompt.
    RegisteredModel {
        /// Its name.
        name: String,
        /// Whether it is a prompt (MLflow 3).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        prompt: bool,
        /// Its versions, in order.
        versions: Vec<u64>,
        /// Its aliases as `alias=version`.
        aliases: Vec<String>,
        /// Its permission entries (format 1.2).
        #[serde(skip_serializing_if = "is_zero")]
        permissions: u64,
    },
    /// A trace (format 1.1).
    Trace {
        /// Its id on the source.
        id: String,
        /// Its experiment.
        experiment_id: String,
        /// Its name (tag `mlflow.traceName`).
        name: String,
        /// Its state.
        state: String,
        /// Its assessments.
        assessments: usize,
        /// Files: its span data and attachments.
        artifacts: u64,
        /// Their bytes.
        artifact_bytes: u64,
    },
    /// An evaluation dataset (format 1.1).
    Dataset {
        /// Its id on the source.
        id: String,
        /// Its name.
        name: String,
        /// The experiments it is linked to.
        experiment_ids: Vec<String>,
        /// Its records.
        records: u64,
    },
    /// A unit of a kind a later minor version defines: checked, not understood.
    Unknown {
        /// Its prefix (`kind/key`).
        unit: String,
        /// Its members.
        members: usize,
    },
}

#[expect(
    clippy::trivially_copy_pass_by_ref,
    reason = "serde's skip_serializing_if passes a reference"
)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The whole archive's summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ArchiveSummary {
    /// The header.
    pub header: Header,
    /// The trailer's counts (equal to what was read).
    pub counts: Counts,
    /// Bytes of the tar stream.
    pub tar_bytes: u64,
    /// Bytes of the archive.
    pub archive_bytes: u64,
}

/// Reads an archive, calling `on_unit` as each unit is sealed.
///
/// # Errors
///
/// The first problem reading the archive meets (see
/// [`ArchiveReader::next_record`](crate::format::ArchiveReader::next_record)).
pub fn summarize<R: Read>(
    input: R,
    mut on_unit: impl FnMut(&UnitSummary),
) -> Result<ArchiveSummary> {
    let mut r = ArchiveReader::new(input)?;
    let mut open: Option<UnitSummary> = None;
    let mut keys: std::collections::BTreeSet<String> = Default::default();
    let mut counts = Counts::default();
    while let Some(rec) = r.next_record()? {
        match rec {
            Record::Experiment(e) => {
                open = Some(UnitSummary::Experiment {
                    id: e.experiment_id,
                    name: e.name,
                    lifecycle_stage: e.lifecycle_stage,
                    permissions: 0,
                });
            }
            Record::Run(x) => {
                keys.clear();
                open = Some(UnitSummary::Run {
                    parent_run_id: x.parent_run_id().map(str::to_string),
                    id: x.run_id,
                    experiment_id: x.experiment_id,
                    name: x.run_name,
                    status: x.status,
                    lifecycle_stage: x.lifecycle_stage,
                    params: x.params.len(),
                    tags: x.tags.len(),
                    metric_keys: 0,
                    metric_points: 0,
                    artifacts: 0,
                    artifact_bytes: 0,
                });
            }
            Record::MetricChunk(c) => {
                if let Some(UnitSummary::Run {
                    metric_keys,
                    metric_points,
                    ..
                }) = open.as_mut()
                {
                    keys.insert(c.key);
                    *metric_keys = keys.len();
                    *metric_points += c.points.len() as u64;
                }
            }
            Record::Artifact(a) => match open.as_mut() {
                Some(UnitSummary::Run {
                    artifacts,
                    artifact_bytes,
                    ..
                })
                | Some(UnitSummary::LoggedModel {
                    artifacts,
                    artifact_bytes,
                    ..
                })
                | Some(UnitSummary::Trace {
                    artifacts,
                    artifact_bytes,
                    ..
                }) => {
                    *artifacts += 1;
                    *artifact_bytes += a.size;
                }
                _ => {}
            },
            Record::LoggedModel(m) => {
                open = Some(UnitSummary::LoggedModel {
                    id: m.model_id,
                    name: m.name,
                    source_run_id: m.source_run_id,
                    artifacts: 0,
                    artifact_bytes: 0,
                });
            }
            Record::RegisteredModel(m) => {
                open = Some(UnitSummary::RegisteredModel {
                    prompt: m.is_prompt(),
                    name: m.name,
                    versions: Vec::new(),
                    aliases: m
                        .aliases
                        .iter()
                        .map(|a| format!("{}={}", a.alias, a.version))
                        .collect(),
                    permissions: 0,
                });
            }
            Record::ModelVersion(v) => {
                if let Some(UnitSummary::RegisteredModel { versions, .. }) = open.as_mut() {
                    versions.push(v.version);
                }
            }
            Record::Trace(t) => {
                open = Some(UnitSummary::Trace {
                    name: t
                        .tags
                        .iter()
                        .find(|t| t.key == "mlflow.traceName")
                        .map(|t| t.value.clone())
                        .unwrap_or_default(),
                    id: t.trace_id,
                    experiment_id: t.experiment_id,
                    state: t.state,
                    assessments: t.assessments.len(),
                    artifacts: 0,
                    artifact_bytes: 0,
                });
            }
            Record::Dataset(d) => {
                open = Some(UnitSummary::Dataset {
                    id: d.dataset_id,
                    name: d.name,
                    experiment_ids: d.experiment_ids,
                    records: 0,
                });
            }
            Record::DatasetRecords(c) => {
                if let Some(UnitSummary::Dataset { records, .. }) = open.as_mut() {
                    *records += c.records.len() as u64;
                }
            }
            Record::Permissions(p) => match open.as_mut() {
                Some(UnitSummary::Experiment { permissions, .. })
                | Some(UnitSummary::RegisteredModel { permissions, .. }) => {
                    *permissions += p.entries();
                }
                _ => {}
            },
            Record::Sealed(s) if matches!(s.unit, UnitId::Other { .. }) => {
                on_unit(&UnitSummary::Unknown {
                    unit: s.unit.prefix(),
                    members: s.members,
                });
            }
            Record::Sealed(s) => {
                if let Some(u) = open.take() {
                    debug_assert!(matches!(
                        (&u, &s.unit),
                        (UnitSummary::Experiment { .. }, UnitId::Experiment(_))
                            | (UnitSummary::Run { .. }, UnitId::Run(_))
                            | (UnitSummary::LoggedModel { .. }, UnitId::LoggedModel(_))
                            | (UnitSummary::RegisteredModel { .. }, UnitId::Model(_))
                            | (UnitSummary::Trace { .. }, UnitId::Trace(_))
                            | (UnitSummary::Dataset { .. }, UnitId::Dataset(_))
                    ));
                    on_unit(&u);
                }
            }
            Record::End(t) => counts = t.counts,
        }
    }
    Ok(ArchiveSummary {
        header: r.header().clone(),
        counts,
        tar_bytes: r.tar_offset(),
        archive_bytes: r.archive_offset(),
    })
}
