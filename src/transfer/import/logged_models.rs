//! Logged models (MLflow 3).

use super::*;

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_logged_model(&mut self, m: rec::LoggedModel) -> Result<()> {
        let what = format!("logged model {}", m.model_id);
        let exp = self.dst_experiment(&m.experiment_id, &what)?;
        let existing = self.settled_logged_model(&exp, &m.model_id).await?;
        if let Some(found) = existing {
            let complete = found
                .info
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == COMPLETE);
            let status = if m.status.is_empty() {
                "LOGGED_MODEL_READY"
            } else {
                m.status.as_str()
            };
            if complete && self.update && found.info.status != status {
                // A sync: copied while its files were still being logged; they are sent again
                // and it is finalized as the source's is now.
                let root = found
                    .artifact_root()
                    .map_err(|e| Error::Config(format!("{what}: the destination's {e}")))?;
                self.model_roots
                    .insert(m.model_id.clone(), found.info.artifact_uri.clone());
                let dst = found.info.model_id.clone();
                self.open = Open::LoggedModel { src: m, dst, root };
                return Ok(());
            }
            if complete {
                self.model_roots
                    .insert(m.model_id.clone(), found.info.artifact_uri.clone());
                let dst = found.info.model_id;
                self.report
                    .logged_models
                    .insert(m.model_id.clone(), dst.clone());
                self.release_links(&m.model_id, Some(&dst)).await?;
                tick(&self.opts.progress, Counter::LoggedModels, 1);
                self.open = Open::Skip;
                return Ok(());
            }
            self.client
                .delete_logged_model(&found.info.model_id)
                .await?;
        }
        let mut tags = archived_tags(&m.tags);
        tags.retain(|t| t.key != "mlflow.modelVersions");
        tags.push(KeyValue::new(LINEAGE_MODEL, m.model_id.clone()));
        tags.push(KeyValue::new(STATE, IN_PROGRESS));
        let lease = self.leases.fresh();
        tags.push(KeyValue::new(LEASE, lease.clone()));
        let created = self
            .client
            .create_logged_model(&CreateLoggedModel {
                experiment_id: exp,
                name: Some(m.name.clone()),
                model_type: Some(m.model_type.clone()).filter(|s| !s.is_empty()),
                source_run_id: self.run_ids.get(&m.source_run_id).cloned(),
                params: kv(&m.params),
                tags,
                reconcile_tag: Some(LINEAGE_MODEL.into()),
            })
            .await?;
        let root = created
            .artifact_root()
            .map_err(|e| Error::Config(format!("{what}: the destination's {e}")))?;
        self.model_roots
            .insert(m.model_id.clone(), created.info.artifact_uri.clone());
        let dst = created.info.model_id;
        self.leases.hold_model(&dst, &lease);
        self.open = Open::LoggedModel { src: m, dst, root };
        Ok(())
    }

    /// What an earlier (or concurrent) import left of source logged model `src` in `exp`: a
    /// concurrent import's model still being written (its lease held) is waited for, never taken
    /// for a leftover, so no import deletes another's.
    async fn settled_logged_model(
        &self,
        exp: &str,
        src: &str,
    ) -> Result<Option<crate::mlflow::types::LoggedModel>> {
        loop {
            let found = self
                .client
                .logged_models_tagged(exp, LINEAGE_MODEL, src)
                .await?;
            let complete = |m: &crate::mlflow::types::LoggedModel| {
                m.info
                    .tags
                    .iter()
                    .any(|t| t.key == STATE && t.value == COMPLETE)
            };
            let held = |m: &crate::mlflow::types::LoggedModel| {
                lease::held(
                    m.info
                        .tags
                        .iter()
                        .find(|t| t.key == LEASE)
                        .map(|t| t.value.as_str()),
                )
            };
            if let Some(done) = found.iter().find(|m| complete(m)) {
                return Ok(Some(done.clone()));
            }
            if !found.iter().any(held) {
                return Ok(found.into_iter().next());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}
