//! Logged model units, and the links of runs' metric points to logged models (which the history
//! endpoint does not return; the models' own metrics do).

use std::collections::HashMap;

use super::artifacts::copy_artifacts_as;
use super::runs::State;
use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::types::{LoggedModel, Metric};
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::Scheduler;
use crate::transfer::source::Source;

impl<S: Source> State<'_, S> {
    /// Schedules a logged model unit.
    pub(super) async fn write_logged_model(
        &mut self,
        sink: &mut Scheduler,
        m: &LoggedModel,
    ) -> Result<()> {
        let i = &m.info;
        let record = rec::LoggedModel {
            model_id: i.model_id.clone(),
            experiment_id: i.experiment_id.clone(),
            name: i.name.clone(),
            model_type: i.model_type.clone(),
            source_run_id: i.source_run_id.clone(),
            status: i.status.clone(),
            status_message: i.status_message.clone(),
            artifact_uri: i.artifact_uri.clone(),
            creation_timestamp: i.creation_timestamp_ms,
            last_updated_timestamp: i.last_updated_timestamp_ms,
            params: m
                .data
                .params
                .iter()
                .map(|p| rec::Tag::new(p.key.clone(), p.value.clone()))
                .collect(),
            tags: i
                .tags
                .iter()
                .map(|t| rec::Tag::new(t.key.clone(), t.value.clone()))
                .collect(),
        };
        let root = if i.artifact_uri.is_empty() {
            None
        } else {
            Some(
                m.artifact_root()
                    .map_err(|e| Error::Config(format!("logged model {}: {e}", i.model_id)))?,
            )
        };
        self.written.insert(format!("lm:{}", i.model_id));
        let client = self.client.clone();
        sink.spawn(|mut unit| async move {
            unit.send(Cmd::BeginLoggedModel(record)).await?;
            if let Some(root) = root {
                copy_artifacts_as(&client, &root, "", &mut unit).await?;
            }
            unit.send(Cmd::EndUnit).await
        })
        .await
    }
}

/// A metric point's place: key, step, timestamp.
pub(super) type PointKey = (String, i64, i64);
/// A point's link: logged model, dataset name, dataset digest.
pub(super) type Link = (Option<String>, Option<String>, Option<String>);
/// The links at one place, with the bits of the value each was reported with.
pub(super) type Links = Vec<(u64, Link)>;

/// The link of a history point: the one reported with the same value; for a value that is not
/// finite (NaN, ±Infinity), which a logged model's metrics may report otherwise (the sqlite store
/// gives a NaN as 0.0 there, and stores +Infinity as the largest float), the one reported at the
/// same place with such a value or 0.0.
fn link_of(links: &Links, value: f64) -> Option<&Link> {
    let exact = links.iter().find(|(bits, _)| *bits == value.to_bits());
    if exact.is_some() || value.is_finite() {
        return exact.map(|(_, l)| l);
    }
    links
        .iter()
        .find(|(bits, _)| {
            let v = f64::from_bits(*bits);
            !v.is_finite() || v == 0.0 || v.abs() == f64::MAX
        })
        .map(|(_, l)| l)
}

/// The links of metric points to logged models, from the models' own metrics.
pub(super) fn links_of<'a>(
    models: impl IntoIterator<Item = &'a LoggedModel>,
) -> HashMap<String, HashMap<PointKey, Links>> {
    let mut out: HashMap<String, HashMap<PointKey, Links>> = HashMap::new();
    for m in models {
        for p in &m.data.metrics {
            let Some(run) = p.run_id.clone() else {
                continue;
            };
            out.entry(run)
                .or_default()
                .entry((p.key.clone(), p.step, p.timestamp))
                .or_default()
                .push((
                    p.value.to_bits(),
                    (
                        Some(m.info.model_id.clone()),
                        p.dataset_name.clone(),
                        p.dataset_digest.clone(),
                    ),
                ));
        }
    }
    out
}

/// Gives the points of a history page their links (a run's links, by place).
pub(super) fn link_page(links: &HashMap<PointKey, Links>, page: &mut [Metric]) {
    if links.is_empty() {
        return;
    }
    for p in page {
        let k = (p.key.clone(), p.step, p.timestamp);
        let link = links.get(&k).and_then(|l| link_of(l, p.value));
        if let Some((model, name, digest)) = link {
            p.model_id.clone_from(model);
            p.dataset_name.clone_from(name);
            p.dataset_digest.clone_from(digest);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn non_finite_points_keep_their_link() {
        let link = |m: &str| (Some(m.to_string()), None, None);
        let links = vec![
            (0.0f64.to_bits(), link("nan-as-zero")),
            (2.5f64.to_bits(), link("b")),
        ];
        assert_eq!(super::link_of(&links, 2.5), Some(&link("b")));
        assert_eq!(super::link_of(&links, f64::NAN), Some(&link("nan-as-zero")));
        assert_eq!(super::link_of(&links, 1.0), None);
        let max = vec![(f64::MAX.to_bits(), link("inf"))];
        assert_eq!(super::link_of(&max, f64::INFINITY), Some(&link("inf")));
        let nan = vec![(f64::NAN.to_bits(), link("nan"))];
        assert_eq!(super::link_of(&nan, f64::NAN), Some(&link("nan")));
    }
}
