//! Evaluation dataset units (MLflow 3). The server gives a dataset and its records new ids and
//! times whatever the client sends, and keeps one record per distinct `inputs` (an upsert merges
//! into it), so a dataset the import made carries its source id ([`LINEAGE_DATASET`]) and is
//! found again by its name and that tag, and its records are upserted: an interrupted import, run
//! again, completes the dataset without duplicating a record. (Dataset names are not unique: two
//! source datasets of one name stay two, and a dataset of that name the import did not make is
//! left alone.) Runs that used the
//! dataset (a dataset input of source type `mlflow_evaluation_dataset`) are pointed at the
//! destination's dataset (see [`Importer::finish_run`]).

use std::collections::BTreeMap;

use super::tags::{COMPLETE, DATASET_UPDATED, IN_PROGRESS, LINEAGE_DATASET, STATE};
use super::{Importer, Open};
use crate::error::Result;
use crate::format::model as rec;
use crate::mlflow::api::datasets::record_for_upsert;
use crate::transfer::destination::Destination;

/// Records sent in one upsert.
const UPSERT_BATCH: usize = 500;

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_dataset(&mut self, d: rec::Dataset) -> Result<()> {
        // Links to experiments of the archive; the others are not on the destination.
        let experiments: Vec<String> = d
            .experiment_ids
            .iter()
            .filter_map(|e| self.report.experiments.get(e).cloned())
            .collect();
        // The import owns its tags: the source's (from an import into it) are not kept.
        let mut tags: BTreeMap<String, String> = d
            .tags
            .iter()
            .filter(|t| !t.key.starts_with("mlflow_archive."))
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        tags.insert(LINEAGE_DATASET.to_string(), d.dataset_id.clone());
        // Until its last record is written and its unit's seal checked.
        tags.insert(STATE.to_string(), IN_PROGRESS.to_string());
        // Names are not unique: only a dataset this import made from this source dataset is
        // taken for it (another of the same name, or another source dataset's, is not).
        let found: Vec<_> = self
            .client
            .datasets_named(&d.name)
            .await?
            .into_iter()
            .filter(|f| f.tags.get(LINEAGE_DATASET) == Some(&d.dataset_id))
            .collect();
        let dst = match found.as_slice() {
            [] => {
                self.client
                    .create_dataset(&d.name, &experiments, &tags)
                    .await?
                    .dataset_id
            }
            [one, ..] => {
                let linked = self.client.dataset_experiment_ids(&one.dataset_id).await?;
                let missing: Vec<String> = experiments
                    .iter()
                    .filter(|e| !linked.contains(e))
                    .cloned()
                    .collect();
                if !missing.is_empty() {
                    self.client
                        .add_dataset_experiments(&one.dataset_id, &missing)
                        .await?;
                }
                self.client.set_dataset_tags(&one.dataset_id, &tags).await?;
                one.dataset_id.clone()
            }
        };
        self.open = Open::Dataset { src: d, dst };
        Ok(())
    }

    pub(super) async fn dataset_records(&mut self, c: rec::DatasetRecords) -> Result<()> {
        let Open::Dataset { dst, .. } = &self.open else {
            // A dataset skipped: nothing to write.
            return Ok(());
        };
        let dst = dst.clone();
        for batch in c.records.chunks(UPSERT_BATCH) {
            let records: Vec<serde_json::Value> = batch.iter().map(record_for_upsert).collect();
            self.client.upsert_dataset_records(&dst, &records).await?;
            self.report.dataset_records += records.len() as u64;
        }
        Ok(())
    }

    pub(super) async fn end_dataset(&mut self) -> Result<()> {
        if let Open::Dataset { src, dst } = std::mem::replace(&mut self.open, Open::None) {
            let mut done = BTreeMap::from([(STATE.to_string(), COMPLETE.to_string())]);
            if let Some(t) = src.last_update_time {
                done.insert(DATASET_UPDATED.to_string(), t.to_string());
            }
            self.client.set_dataset_tags(&dst, &done).await?;
            self.report.datasets.insert(src.dataset_id, dst);
            self.report.datasets_imported += 1;
        }
        Ok(())
    }

    /// The destination's copy of source evaluation dataset `src` (named `name`): the one this
    /// import wrote, else, when bringing runs up to date (a sync, which leaves unchanged
    /// datasets out), a complete copy an earlier import made.
    pub(super) async fn resolve_dataset(&mut self, src: &str, name: &str) -> Result<()> {
        if !self.update || self.report.datasets.contains_key(src) {
            return Ok(());
        }
        let found = self
            .client
            .datasets_named(name)
            .await?
            .into_iter()
            .find(|f| {
                f.tags.get(LINEAGE_DATASET).map(String::as_str) == Some(src)
                    && f.tags.get(STATE).map(String::as_str) == Some(COMPLETE)
            });
        if let Some(f) = found {
            self.report.datasets.insert(src.to_string(), f.dataset_id);
        }
        Ok(())
    }
}
