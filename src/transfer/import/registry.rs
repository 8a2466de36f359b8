//! Registered models and their versions: numbers (gaps reproduced by placeholders), sources
//! rewritten to the destination's runs and logged models, stages and aliases.

use super::*;

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_model(&mut self, mut m: rec::RegisteredModel) -> Result<()> {
        self.map_prompt_experiments(&mut m.tags);
        let name = self
            .opts
            .model_name
            .clone()
            .unwrap_or_else(|| m.name.clone());
        if self.opts.delete_model {
            match self.client.delete_registered_model(&name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        match self.client.registered_model(&name).await {
            Ok(existing) => {
                self.same_kind(&name, &existing, &m)?;
                if existing.description != m.description {
                    self.client
                        .update_registered_model(&name, &m.description)
                        .await?;
                }
                for t in &m.tags {
                    if !existing
                        .tags
                        .iter()
                        .any(|x| x.key == t.key && x.value == t.value)
                    {
                        self.client
                            .set_registered_model_tag(&name, &t.key, &t.value)
                            .await?;
                    }
                }
            }
            Err(e) if e.is_not_found() => {
                let desc = Some(m.description.as_str()).filter(|d| !d.is_empty());
                match self
                    .client
                    .create_registered_model(&name, desc, &kv(&m.tags))
                    .await
                {
                    // A concurrent import made it first: it is the same model.
                    Err(e) if e.is_already_exists() => {}
                    other => other?,
                }
            }
            Err(e) => return Err(e),
        }
        self.report.models.insert(m.name.clone(), name.clone());
        self.open = Open::Model {
            src: m,
            dst: name,
            numbers: HashMap::new(),
        };
        Ok(())
    }

    /// Refuses to turn a registered model into a prompt or a prompt into a model: MLflow's own
    /// client refuses to register a prompt under a model's name, and the model's searches would
    /// lose it.
    fn same_kind(
        &self,
        name: &str,
        existing: &crate::mlflow::types::RegisteredModel,
        m: &rec::RegisteredModel,
    ) -> Result<()> {
        let was_prompt = existing
            .tags
            .iter()
            .any(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"));
        if was_prompt != m.is_prompt() {
            let (is, comes) = if was_prompt {
                ("a prompt", "a registered model")
            } else {
                ("a registered model", "a prompt")
            };
            return Err(Error::Config(format!(
                "{name:?} is {is} on {}, and the archive's {name:?} is {comes}: MLflow keeps one of the two under a name (rename or delete the one there, or import under another name)",
                self.client.server()
            )));
        }
        Ok(())
    }

    /// A prompt's tag `_mlflow_experiment_ids` (`,3,0,`: the experiments it was used in) names
    /// the destination's experiments: those of the archive mapped, the others left out (they
    /// are not on the destination).
    fn map_prompt_experiments(&self, tags: &mut [rec::Tag]) {
        for t in tags.iter_mut().filter(|t| t.key == PROMPT_EXPERIMENTS) {
            let ids: Vec<&str> = t
                .value
                .split(',')
                .filter(|id| !id.is_empty())
                .filter_map(|id| self.report.experiments.get(id).map(String::as_str))
                .collect();
            t.value = if ids.is_empty() {
                String::new()
            } else {
                format!(",{},", ids.join(","))
            };
        }
    }

    /// `source` pointed at the destination's copy of the run or logged model it names.
    pub(super) fn rewrite_source(
        &self,
        v: &rec::ModelVersion,
        dst_run: Option<&String>,
        dst_model: Option<&String>,
        dst_run_root: Option<&str>,
        dst_model_root: Option<&str>,
    ) -> String {
        let s = &v.source;
        if let (Some(rest), Some(run)) = (s.strip_prefix("runs:/"), dst_run) {
            if let Some((id, path)) = rest.split_once('/') {
                if id == v.run_id {
                    return format!("runs:/{run}/{path}");
                }
            } else if rest == v.run_id {
                return format!("runs:/{run}");
            }
        }
        if let (Some(rest), Some(model)) = (s.strip_prefix("models:/"), dst_model)
            && (rest == v.model_id || rest.starts_with("m-"))
        {
            return format!("models:/{model}");
        }
        // An address inside the run's artifact root (`mlflow-artifacts:`, `s3:`, `gs:`,
        // `wasbs:`, `file:`, ...): the same place under the new run's root, where the files are,
        // whatever the two roots' schemes.
        if let Some(root) = dst_run_root
            && let Some(tail) = inside(s, &v.run_id)
        {
            return format!("{}{tail}", root.trim_end_matches('/'));
        }
        // Likewise inside the logged model's location (`<root>/models/<model id>/artifacts`).
        if let Some(root) = dst_model_root
            && let Some(tail) = inside(s, &v.model_id)
        {
            return format!("{}{tail}", root.trim_end_matches('/'));
        }
        s.clone()
    }

    pub(super) async fn version(&mut self, v: rec::ModelVersion) -> Result<()> {
        let Open::Model { dst: name, src, .. } = &self.open else {
            return Ok(());
        };
        let name = name.clone();
        let key = source_model_key(src);
        // A version this import made from this source version of this source model (one made
        // before the model tag existed is taken for it too).
        let ours = |x: &crate::mlflow::types::ModelVersion, number: &str| {
            x.tags
                .iter()
                .any(|t| t.key == LINEAGE_VERSION && t.value == number)
                && x.tags
                    .iter()
                    .find(|t| t.key == LINEAGE_SOURCE_MODEL)
                    .is_none_or(|t| t.value == key)
        };
        let existing = self.client.model_versions(&name).await?;
        // Placeholders are deleted only once the version after them exists, so an interrupted
        // import leaves them visible: their numbers count as taken, and they are deleted below.
        let mut placeholders: Vec<u64> = existing
            .iter()
            .filter(|x| x.tags.iter().any(|t| t.key == PLACEHOLDER))
            .map(crate::mlflow::types::ModelVersion::number)
            .collect();
        let number = v.version.to_string();
        if let Some(done) = existing.iter().find(|x| ours(x, &number)) {
            // Made by an earlier import, which may have stopped before its stage was set or its
            // placeholders deleted.
            let done = done.clone();
            self.set_stage(&name, &v, &done).await?;
            self.delete_placeholders(&name, &placeholders, done.number())
                .await?;
            self.record_number(v.version, done.version);
            self.report.versions_skipped += 1;
            tick(&self.opts.progress, Counter::Versions, 1);
            return Ok(());
        }
        let dst_run = self.run_ids.get(&v.run_id).cloned();
        let src_model = if v.model_id.is_empty() {
            v.source
                .strip_prefix("models:/")
                .filter(|m| m.starts_with("m-"))
                .unwrap_or("")
                .to_string()
        } else {
            v.model_id.clone()
        };
        let dst_model = self.report.logged_models.get(&src_model).cloned();
        let inside_run = inside(&v.source, &v.run_id).is_some();
        let dst_run_root = match &dst_run {
            Some(run) if inside_run => Some(self.client.get_run(run).await?.info.artifact_uri),
            _ => None,
        };
        let dst_model_root = dst_model
            .as_ref()
            .and_then(|_| self.model_roots.get(&src_model))
            .map(String::as_str);
        let source = self.rewrite_source(
            &v,
            dst_run.as_ref(),
            dst_model.as_ref(),
            dst_run_root.as_deref(),
            dst_model_root,
        );
        let request =
            |tags: Vec<KeyValue>, description: Option<String>| crate::mlflow::CreateModelVersion {
                name: name.clone(),
                source: source.clone(),
                run_id: dst_run
                    .clone()
                    .or_else(|| Some(v.run_id.clone()).filter(|r| !r.is_empty())),
                description,
                tags,
                run_link: Some(v.run_link.clone()).filter(|l| !l.is_empty()),
                model_id: dst_model.clone(),
                reconcile_tag: Some(LINEAGE_VERSION.into()),
            };
        // Reproduce gaps: the server numbers versions max + 1, so create and delete placeholders
        // up to the source's number.
        let mut next = existing
            .iter()
            .map(|x| x.number())
            .filter(|n| *n != u64::MAX)
            .max()
            .unwrap_or(0)
            + 1;
        // A placeholder names no logged model: the server would list it in that model's
        // `mlflow.modelVersions` tag (and deleting it does not take it out). A `models:/` source
        // needs the model, so the placeholder points at the version's run instead; a version
        // with no run keeps the model (README lists that trace).
        let placeholder = |n: u64| {
            let mut tags = vec![
                KeyValue::new(PLACEHOLDER, "true"),
                KeyValue::new(LINEAGE_VERSION, format!("placeholder-{n}")),
            ];
            // A prompt's placeholder must be a prompt version too (its source is a placeholder
            // the server accepts only from prompts).
            tags.extend(
                v.tags
                    .iter()
                    .filter(|t| t.key == PROMPT_TAG && t.value.eq_ignore_ascii_case("true"))
                    .map(|t| KeyValue::new(t.key.clone(), t.value.clone())),
            );
            let mut req = request(tags, None);
            if req.source.starts_with("models:/") {
                if let Some(run) = &dst_run {
                    req.source = format!("runs:/{run}/{PLACEHOLDER_PATH}");
                    req.model_id = None;
                }
            } else {
                req.model_id = None;
            }
            req
        };
        while next < v.version {
            let p = self.client.create_model_version(&placeholder(next)).await?;
            // The server numbers from every version it ever made, deleted ones too.
            next = p.number().saturating_add(1);
            placeholders.push(p.number());
        }
        let mut tags = archived_tags(&v.tags);
        tags.push(KeyValue::new(LINEAGE_VERSION, number.clone()));
        tags.push(KeyValue::new(LINEAGE_SOURCE_MODEL, key.clone()));
        let desc = Some(v.description.clone()).filter(|d| !d.is_empty());
        let created = self
            .client
            .create_model_version(&request(tags, desc))
            .await?;
        self.client
            .wait_model_version_ready(&name, &created.version)
            .await?;
        // A concurrent import may have made the same version at the same moment: the lower
        // number wins (whoever created later sees the earlier one), and the other is given up.
        let first = self
            .client
            .model_versions(&name)
            .await?
            .into_iter()
            .filter(|x| ours(x, &number))
            .min_by_key(crate::mlflow::types::ModelVersion::number);
        if let Some(first) = first
            && first.number() < created.number()
        {
            self.client
                .delete_model_version(&name, &created.version)
                .await?;
            self.set_stage(&name, &v, &first).await?;
            self.delete_placeholders(&name, &placeholders, first.number())
                .await?;
            self.record_number(v.version, first.version);
            self.report.versions_skipped += 1;
            tick(&self.opts.progress, Counter::Versions, 1);
            return Ok(());
        }
        if created.version != number {
            self.report
                .renumbered_versions
                .push((name.clone(), v.version, created.number()));
        }
        self.set_stage(&name, &v, &created).await?;
        self.delete_placeholders(&name, &placeholders, created.number())
            .await?;
        self.record_number(v.version, created.version);
        self.report.versions_imported += 1;
        tick(&self.opts.progress, Counter::Versions, 1);
        Ok(())
    }

    /// Deletes the placeholders made for version `below` (numbered under it).
    async fn delete_placeholders(
        &self,
        name: &str,
        placeholders: &[u64],
        below: u64,
    ) -> Result<()> {
        for p in placeholders.iter().filter(|p| **p < below) {
            self.client
                .delete_model_version(name, &p.to_string())
                .await?;
        }
        Ok(())
    }

    /// Moves the destination's version `dst` to the archived version's stage, if it is not there.
    async fn set_stage(
        &self,
        name: &str,
        v: &rec::ModelVersion,
        dst: &crate::mlflow::types::ModelVersion,
    ) -> Result<()> {
        if v.current_stage.is_empty()
            || v.current_stage == "None"
            || dst.current_stage == v.current_stage
        {
            return Ok(());
        }
        self.client
            .transition_stage(name, &dst.version, &v.current_stage)
            .await
    }

    pub(super) fn record_number(&mut self, src: u64, dst: String) {
        if let Open::Model { numbers, .. } = &mut self.open {
            numbers.insert(src, dst);
        }
    }
}

/// The rest of `source` after `/<id>/artifacts` (empty, or starting with `/`), when it points
/// inside the artifact root of the run or logged model `id`.
pub(super) fn inside<'s>(source: &'s str, id: &str) -> Option<&'s str> {
    if id.is_empty() || source.starts_with("runs:/") || source.starts_with("models:/") {
        return None;
    }
    let marker = format!("/{id}/artifacts");
    let i = source.find(&marker)?;
    let tail = &source[i + marker.len()..];
    (tail.is_empty() || tail.starts_with('/')).then_some(tail)
}

/// How the versions of a source registered model are told from another's of the same name:
/// `<workspace>/<name>`, or the name alone.
fn source_model_key(m: &rec::RegisteredModel) -> String {
    if m.workspace.is_empty() {
        m.name.clone()
    } else {
        format!("{}/{}", m.workspace, m.name)
    }
}
