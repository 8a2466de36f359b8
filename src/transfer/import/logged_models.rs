//! Logged models (MLflow 3).

use super::*;

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_logged_model(&mut self, m: rec::LoggedModel) -> Result<()> {
        let what = format!("logged model {}", m.model_id);
        let exp = self.dst_experiment(&m.experiment_id, &what)?;
        let existing = self
            .client
            .logged_models_tagged(&exp, LINEAGE_MODEL, &m.model_id)
            .await?
            .into_iter()
            .next();
        if let Some(found) = existing {
            if found
                .info
                .tags
                .iter()
                .any(|t| t.key == STATE && t.value == COMPLETE)
            {
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
        let dst = created.info.model_id;
        self.open = Open::LoggedModel { src: m, dst, root };
        Ok(())
    }
}
