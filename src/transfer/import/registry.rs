//! Registered models and their versions: numbers (gaps reproduced by placeholders), sources
//! rewritten to the destination's runs and logged models, stages and aliases.
//!
//! Into Unity Catalog (no stages, three-level names, files uploaded by the client): names come
//! from [`ModelNames`]; a version's files are read from where its source points on the
//! destination (the imported run's or logged model's artifacts), its `MLmodel` checked for a
//! signature, and uploaded with temporary credentials before the version is finalized; stages
//! become what [`StageTo`] says.

use super::versions::*;
use super::*;
use crate::mlflow::api::registry::RegistryKind;
use crate::mlflow::databricks::uc::{MAX_MLMODEL, signature_problem};

/// The tag of a version made into a registry without stages (or with `--stage-to alias|tag`)
/// that names its stage on the source.
pub const SOURCE_STAGE: &str = "mlflow_archive.source.stage";

/// What becomes of a version's stage on the destination (`--stage-to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageTo {
    /// The same stage (a registry with stages: MLflow's, a Databricks workspace's).
    Stage,
    /// Tag [`SOURCE_STAGE`] on every version with a stage, and alias `production` (`staging`)
    /// on the newest version in `Production` (`Staging`); `Archived` is the tag alone.
    Alias,
    /// Tag [`SOURCE_STAGE`] on every version with a stage.
    Tag,
    /// Nothing: the stage is dropped.
    None,
}

impl StageTo {
    /// The default for a registry of `kind`: stages where it has them, else aliases.
    pub fn for_registry(kind: RegistryKind) -> Self {
        if kind.has_stages() {
            StageTo::Stage
        } else {
            StageTo::Alias
        }
    }

    /// Parses `stage`, `alias`, `tag` or `none`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for any other word.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "stage" => Ok(StageTo::Stage),
            "alias" => Ok(StageTo::Alias),
            "tag" => Ok(StageTo::Tag),
            "none" => Ok(StageTo::None),
            _ => Err(Error::Config(format!(
                "--stage-to {s:?}: expected stage, alias, tag or none"
            ))),
        }
    }
}

/// Whether a destination tag of a registered model or version is one an import writes from
/// the source's (not this tool's own, whose history under `mlflow_archive.origin.*` is the
/// source's).
fn carried(key: &str) -> bool {
    !key.starts_with(OWN_PREFIX) || key.starts_with(ORIGIN_PREFIX)
}

/// The tags of archived version `v` that its destination version carries: the source's (see
/// [`archived_tags`]), and its stage as [`SOURCE_STAGE`] when stages become tags or aliases.
fn version_tags(plan: StageTo, v: &rec::ModelVersion) -> Vec<KeyValue> {
    let mut tags = archived_tags(&v.tags);
    if matches!(plan, StageTo::Alias | StageTo::Tag) && real_stage(&v.current_stage) {
        tags.retain(|t| t.key != SOURCE_STAGE);
        tags.push(KeyValue::new(SOURCE_STAGE, v.current_stage.clone()));
    }
    tags
}

/// Whether `stage` is a stage worth carrying (not `None`).
pub(super) fn real_stage(stage: &str) -> bool {
    !stage.is_empty() && stage != "None"
}

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_model(&mut self, mut m: rec::RegisteredModel) -> Result<()> {
        let kind = self.client.registry();
        if kind == RegistryKind::UnityCatalog && m.is_prompt() {
            // Unity Catalog keeps prompts apart from registered models (README "Not carried").
            self.report.prompts_left_out.push(m.name.clone());
            self.open = Open::Skip;
            return Ok(());
        }
        self.map_prompt_experiments(&mut m.tags);
        let name =
            self.opts
                .model_names
                .destination(&m.name, self.opts.model_name.as_deref(), kind)?;
        if kind == RegistryKind::UnityCatalog {
            names::check_collision(&mut self.uc_names, &name, &source_model_key(&m))?;
        }
        self.stage_plan()?;
        if self.opts.delete_model {
            match self.client.delete_registered_model(&name).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        // None: looked up again for each version (a placeholder shows an interrupted import).
        let mut view = None;
        // A new model is the rule in an import, an existing one in a sync: each asks first for
        // what it likely finds, and for the other only when the server says so (a round trip
        // less per model, on the reader's path).
        let found = if self.update {
            match self.client.registered_model(&name).await {
                Ok(existing) => Some(existing),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e),
            }
        } else {
            None
        };
        let found = match found {
            Some(existing) => Some(existing),
            None => {
                let desc = Some(m.description.as_str()).filter(|d| !d.is_empty());
                match self
                    .client
                    .create_registered_model(&name, desc, &kv(&m.tags))
                    .await
                {
                    Ok(()) => {
                        view = Some(Vec::new());
                        None
                    }
                    // There already (an earlier or a concurrent import's, or another's): as
                    // found.
                    Err(e) if e.is_already_exists() => {
                        Some(self.client.registered_model(&name).await?)
                    }
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(existing) = found {
            self.same_kind(&name, &existing, &m)?;
            let versions = self.client.model_versions(&name).await?;
            if !versions
                .iter()
                .any(|x| x.tags.iter().any(|t| t.key == PLACEHOLDER))
            {
                view = Some(versions);
            }
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
            if self.update {
                // A sync: tags the source deleted go too.
                for t in &existing.tags {
                    if carried(&t.key) && !m.tags.iter().any(|x| x.key == t.key) {
                        self.client
                            .delete_registered_model_tag(&name, &t.key)
                            .await?;
                    }
                }
            }
        }
        self.report.models.insert(m.name.clone(), name.clone());
        self.open = Open::Model {
            src: m,
            dst: name,
            numbers: HashMap::new(),
            staged: std::collections::BTreeMap::new(),
            view,
            tails: std::collections::VecDeque::new(),
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
        let plan = self.stage_plan()?;
        let uc = self.client.registry() == RegistryKind::UnityCatalog;
        let Open::Model {
            dst: name,
            src,
            staged,
            view,
            ..
        } = &mut self.open
        else {
            return Ok(());
        };
        if plan == StageTo::Alias && matches!(v.current_stage.as_str(), "Production" | "Staging") {
            // Versions come in numeric order: the last one seen is the newest.
            staged.insert(v.current_stage.clone(), v.version);
        }
        let name = name.clone();
        let key = source_model_key(src);
        let src_name = src.name.clone();
        let number = v.version.to_string();
        // A version made by an earlier import, found among the versions this import knows of
        // (a concurrent import making it now is caught after the create: see `VersionTail`).
        let known = view.as_ref().map(|view| Known::of(view, &number, &key));
        let Known {
            done,
            mut placeholders,
            top,
        } = match known {
            Some(k) => k,
            None => Known::of(&self.client.model_versions(&name).await?, &number, &key),
        };
        // Placeholders are deleted only once the version after them exists, so an interrupted
        // import leaves them visible: their numbers count as taken, and they are deleted below.
        if let Some(done) = done {
            if uc && done.status == "PENDING_REGISTRATION" {
                // Made by an earlier import that stopped before its files were all uploaded:
                // they are uploaded (again) and the version finalized.
                let placed = self.place(&v, uc).await?;
                let files = self.files_of(&src_name, &v, &placed)?;
                self.fill(&name, &done, &files).await?;
                self.delete_placeholders(&name, &placeholders, done.number())
                    .await?;
                self.record_number(v.version, done.version);
                self.report.versions_imported += 1;
                tick(&self.opts.progress, Counter::Versions, 1);
                return Ok(());
            }
            // Made by an earlier import, which may have stopped before its stage was set or its
            // placeholders deleted.
            let mut changed = self.set_stage(plan, &name, &v, &done).await?;
            if self.update {
                changed |= self.update_version(plan, &name, &v, &done).await?;
            }
            self.delete_placeholders(&name, &placeholders, done.number())
                .await?;
            self.record_number(v.version, done.version);
            if changed && self.update {
                self.report.versions_updated += 1;
            } else {
                self.report.versions_skipped += 1;
            }
            tick(&self.opts.progress, Counter::Versions, 1);
            return Ok(());
        }
        let placed = self.place(&v, uc).await?;
        let files = if uc {
            let files = self.files_of(&src_name, &v, &placed)?;
            self.check_signature(&src_name, &v, &files).await?;
            Some(files)
        } else {
            None
        };
        let server_id = match (&placed.dst_run, uc) {
            (Some(run), true) => self.client.tracking_server_id(run).await?,
            _ => None,
        };
        let Placed {
            source,
            dst_run,
            dst_model,
            ..
        } = placed;
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
                run_tracking_server_id: server_id.clone(),
                model_id: dst_model.clone(),
                reconcile_tag: Some(LINEAGE_VERSION.into()),
            };
        // Reproduce gaps: the server numbers versions max + 1, so create and delete placeholders
        // up to the source's number.
        let mut next = top + 1;
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
        let mut tags = version_tags(plan, &v);
        tags.push(KeyValue::new(LINEAGE_VERSION, number.clone()));
        tags.push(KeyValue::new(LINEAGE_SOURCE_MODEL, key.clone()));
        let desc = Some(v.description.clone()).filter(|d| !d.is_empty());
        let created = self
            .client
            .create_model_version(&request(tags, desc))
            .await?;
        if let Some(files) = &files {
            self.fill(&name, &created, files).await?;
        }
        // The rest is its task's, while the next versions are made.
        let tail = VersionTail {
            client: self.client.clone(),
            plan,
            update: self.update,
            name: name.clone(),
            src_number: v.version,
            stage: v.current_stage.clone(),
            key,
            wait_ready: files.is_none() && !matches!(created.status.as_str(), "READY" | ""),
            created: created.clone(),
            placeholders: placeholders.clone(),
        };
        let task = AbortOnDrop(Some(tokio::spawn(tail.run())));
        let Open::Model { view, tails, .. } = &mut self.open else {
            return Ok(());
        };
        if let Some(view) = view {
            // (Its task deletes the placeholders under it.)
            view.retain(|x| !placeholders.contains(&x.number()));
            view.push(created);
        }
        tails.push_back(task);
        // At most `jobs` versions settle at once.
        if tails.len() >= self.opts.jobs.max(1)
            && let Some(oldest) = tails.pop_front()
        {
            let mut numbers = HashMap::new();
            self.version_settled(&name, &mut numbers, oldest).await?;
            for (src, dst) in numbers {
                self.record_number(src, dst);
            }
        }
        Ok(())
    }

    /// Takes a version's settled outcome into the report and `numbers`.
    pub(super) async fn version_settled(
        &mut self,
        name: &str,
        numbers: &mut HashMap<u64, String>,
        mut tail: AbortOnDrop<Result<Settled>>,
    ) -> Result<()> {
        let s = tail
            .join(&format!("model {name:?}"))
            .await
            .and_then(|r| r)?;
        if s.made {
            if s.version != s.src_number.to_string() {
                let dst = s.version.parse().unwrap_or(u64::MAX);
                self.report
                    .renumbered_versions
                    .push((name.to_string(), s.src_number, dst));
            }
            self.report.versions_imported += 1;
        } else {
            self.report.versions_skipped += 1;
        }
        tick(&self.opts.progress, Counter::Versions, 1);
        numbers.insert(s.src_number, s.version);
        Ok(())
    }

    /// The plan for stages: `--stage-to`, else the destination registry's default; stages into
    /// a registry without them are refused.
    fn stage_plan(&self) -> Result<StageTo> {
        let kind = self.client.registry();
        let plan = self
            .opts
            .stage_to
            .unwrap_or_else(|| StageTo::for_registry(kind));
        if plan == StageTo::Stage && !kind.has_stages() {
            return Err(Error::Config(format!(
                "--stage-to stage: the registry of {} (Unity Catalog) has no stages; choose alias, tag or none",
                self.client.server()
            )));
        }
        Ok(plan)
    }

    /// Where version `v` is on the destination: its source rewritten to the destination's run or
    /// logged model, and where its files are there.
    async fn place(&mut self, v: &rec::ModelVersion, uc: bool) -> Result<Placed> {
        // Its run and logged model: imported now, or (left as they were by a sync) earlier.
        let dst_run = match v.run_id.as_str() {
            "" => None,
            id => self.resolve_run(id).await?,
        };
        let src_model = if v.model_id.is_empty() {
            v.source
                .strip_prefix("models:/")
                .filter(|m| m.starts_with("m-"))
                .unwrap_or("")
                .to_string()
        } else {
            v.model_id.clone()
        };
        let dst_model = match src_model.as_str() {
            "" => None,
            id => self.resolve_logged_model(id).await?,
        };
        // The run's root is needed for a source inside it, and (to find the files) for a
        // `runs:/` source into Unity Catalog.
        let needs_root =
            inside(&v.source, &v.run_id).is_some() || (uc && v.source.starts_with("runs:/"));
        let dst_run_root = match &dst_run {
            Some(run) if needs_root => match self.run_roots.get(run) {
                Some(root) => Some(root.clone()),
                None => Some(self.client.get_run(run).await?.info.artifact_uri),
            },
            _ => None,
        };
        let dst_model_root = dst_model
            .as_ref()
            .and_then(|_| self.model_roots.get(&src_model))
            .cloned();
        let source = self.rewrite_source(
            v,
            dst_run.as_ref(),
            dst_model.as_ref(),
            dst_run_root.as_deref(),
            dst_model_root.as_deref(),
        );
        let files = files_location(
            &source,
            dst_run.as_deref().zip(dst_run_root.as_deref()),
            dst_model.as_deref().zip(dst_model_root.as_deref()),
        );
        Ok(Placed {
            source,
            dst_run,
            dst_model,
            files,
        })
    }

    /// Where the files of version `v` are on the destination, or an error naming it.
    fn files_of(&self, src_name: &str, v: &rec::ModelVersion, placed: &Placed) -> Result<String> {
        placed.files.clone().ok_or_else(|| {
            Error::Config(format!(
                "model version {src_name}/{}: its files are not on the destination (its source {:?} is not in a run or logged model of this import), and Unity Catalog needs them uploaded: export or copy the model with the runs its versions come from (export-model and copy-model take them)",
                v.version, v.source
            ))
        })
    }

    /// Refuses version `v` when its `MLmodel` (in `files` on the destination) has no signature
    /// with inputs and outputs, as MLflow's client does before registering into Unity Catalog,
    /// unless asked to skip the check.
    async fn check_signature(
        &mut self,
        src_name: &str,
        v: &rec::ModelVersion,
        files: &str,
    ) -> Result<()> {
        if self.opts.skip_signature_check {
            self.report
                .unchecked_signatures
                .push((src_name.to_string(), v.version));
            return Ok(());
        }
        let why = match self
            .client
            .read_artifact_head(files, "MLmodel", MAX_MLMODEL)
            .await?
        {
            None => Some(format!("there is no MLmodel file in {files}")),
            Some((_, true)) => Some(format!(
                "its MLmodel is larger than {} MiB",
                MAX_MLMODEL >> 20
            )),
            Some((text, false)) => {
                signature_problem(&String::from_utf8_lossy(&text)).map(str::to_string)
            }
        };
        match why {
            None => Ok(()),
            Some(why) => Err(Error::Input(format!(
                "model version {src_name}/{} has no signature with inputs and outputs; Unity Catalog requires one ({why}: log the model with a signature, or pass --skip-signature-check to register it without one, as MLflow's MLFLOW_SKIP_SIGNATURE_CHECK_FOR_UC_REGISTRY_MIGRATION allows)",
                v.version
            ))),
        }
    }

    /// Uploads the files of a new Unity Catalog version from `files` and finalizes it (one
    /// without any file is refused, and left pending).
    async fn fill(
        &mut self,
        name: &str,
        created: &crate::mlflow::types::ModelVersion,
        files: &str,
    ) -> Result<()> {
        if created.storage_location.is_empty() {
            return Err(Error::Protocol {
                call: format!("POST model-versions/create (model {name:?})"),
                server: self.client.server().to_string(),
                detail: format!(
                    "version {} came back without a storage_location to upload its files to",
                    created.version
                ),
            });
        }
        let up = self
            .client
            .upload_model_version_files(name, &created.version, &created.storage_location, files)
            .await?;
        self.report.credential_renewals += up.renewals;
        if up.files == 0 {
            // Finalized without files, it would be a model nobody can load: it stays pending.
            return Err(Error::Input(format!(
                "model {name:?} version {}: there are no files at {files} to upload into Unity Catalog",
                created.version
            )));
        }
        self.report.version_files += up.files;
        self.client
            .finalize_model_version(name, &created.version)
            .await
    }

    /// Sets the aliases of a sealed model: those made from stages (`--stage-to alias`), then the
    /// source's own (which win over a stage's of the same name), each on the destination's
    /// version of the source version it names; a registry without aliases gets none, counted.
    pub(super) async fn set_aliases(
        &mut self,
        src: &rec::RegisteredModel,
        dst: &str,
        numbers: &HashMap<u64, String>,
        staged: std::collections::BTreeMap<String, u64>,
    ) -> Result<()> {
        let mut wanted: Vec<(String, u64)> = staged
            .into_iter()
            .map(|(stage, v)| (stage.to_lowercase(), v))
            .filter(|(alias, _)| !src.aliases.iter().any(|a| &a.alias == alias))
            .collect();
        wanted.extend(src.aliases.iter().map(|a| (a.alias.clone(), a.version)));
        // An alias whose version is not in the archive is left out.
        wanted.retain(|(_, v)| numbers.contains_key(v));
        if !self.client.registry().has_aliases() {
            self.report.aliases_not_set += wanted.len() as u64;
            return Ok(());
        }
        let mut existing = Vec::new();
        if self.update {
            // A sync: aliases the source no longer has go; those already right stay.
            existing = self.client.registered_model(dst).await?.aliases;
            for a in &existing {
                if !wanted.iter().any(|(w, _)| *w == a.alias) {
                    self.client.delete_alias(dst, &a.alias).await?;
                }
            }
        }
        for (alias, v) in wanted {
            if let Some(version) = numbers.get(&v)
                && !existing
                    .iter()
                    .any(|a| a.alias == alias && a.version == *version)
            {
                self.client.set_alias(dst, &alias, version).await?;
            }
        }
        Ok(())
    }

    /// Brings a version an earlier import made up to date with the archive (a sync): its
    /// description, and its tags (set, changed, deleted; this tool's own are left alone).
    /// Whether anything changed.
    async fn update_version(
        &self,
        plan: StageTo,
        name: &str,
        v: &rec::ModelVersion,
        dst: &crate::mlflow::types::ModelVersion,
    ) -> Result<bool> {
        let mut changed = false;
        if dst.description != v.description {
            self.client
                .update_model_version(name, &dst.version, &v.description)
                .await?;
            changed = true;
        }
        let tags = version_tags(plan, v);
        for t in &tags {
            if !dst
                .tags
                .iter()
                .any(|x| x.key == t.key && x.value == t.value)
            {
                self.client
                    .set_model_version_tag(name, &dst.version, &t.key, &t.value)
                    .await?;
                changed = true;
            }
        }
        for t in &dst.tags {
            let stale_stage = t.key == SOURCE_STAGE
                && matches!(plan, StageTo::Alias | StageTo::Tag)
                && !real_stage(&v.current_stage);
            if (carried(&t.key) || stale_stage) && !tags.iter().any(|x| x.key == t.key) {
                self.client
                    .delete_model_version_tag(name, &dst.version, &t.key)
                    .await?;
                changed = true;
            }
        }
        Ok(changed)
    }

    /// Deletes the placeholders made for version `below` (numbered under it).
    async fn delete_placeholders(
        &self,
        name: &str,
        placeholders: &[u64],
        below: u64,
    ) -> Result<()> {
        delete_placeholders(&self.client, name, placeholders, below).await
    }

    /// Moves the destination's version `dst` to the archived version's stage, if it is not there
    /// (when stages are carried as stages); whether it moved it.
    async fn set_stage(
        &self,
        plan: StageTo,
        name: &str,
        v: &rec::ModelVersion,
        dst: &crate::mlflow::types::ModelVersion,
    ) -> Result<bool> {
        set_stage(&self.client, plan, self.update, name, &v.current_stage, dst).await
    }

    pub(super) fn record_number(&mut self, src: u64, dst: String) {
        if let Open::Model { numbers, .. } = &mut self.open {
            numbers.insert(src, dst);
        }
    }
}

/// Where a version is on the destination.
struct Placed {
    /// Its source, rewritten to the destination's run or logged model where it names one.
    source: String,
    /// The destination's copy of its run.
    dst_run: Option<String>,
    /// The destination's copy of its logged model.
    dst_model: Option<String>,
    /// Where its files are on the destination (an artifact location), when its source is in the
    /// destination's run (`(id, root)`) or logged model.
    files: Option<String>,
}

/// The artifact location of the files a rewritten `source` names, when it is in the run `run`
/// or the logged model `model` (each `(id, artifact root)` on the destination).
fn files_location(
    source: &str,
    run: Option<(&str, &str)>,
    model: Option<(&str, &str)>,
) -> Option<String> {
    let under = |root: &str, tail: &str| {
        let tail = tail.trim_matches('/');
        let root = root.trim_end_matches('/');
        if tail.is_empty() {
            root.to_string()
        } else {
            format!("{root}/{tail}")
        }
    };
    if let Some((id, root)) = run {
        if let Some(rest) = source.strip_prefix("runs:/") {
            let (rid, path) = rest.split_once('/').unwrap_or((rest, ""));
            if rid == id {
                return Some(under(root, path));
            }
        }
        let root = root.trim_end_matches('/');
        if let Some(tail) = source.strip_prefix(root)
            && (tail.is_empty() || tail.starts_with('/'))
        {
            return Some(under(root, tail));
        }
    }
    if let Some((id, root)) = model {
        if source.strip_prefix("models:/") == Some(id) {
            return Some(under(root, ""));
        }
        let root = root.trim_end_matches('/');
        if let Some(tail) = source.strip_prefix(root)
            && (tail.is_empty() || tail.starts_with('/'))
        {
            return Some(under(root, tail));
        }
    }
    None
}

/// The rest of `source` after `/<id>/artifacts` (empty, or starting with `/`), when it points
/// inside the artifact root of the run or logged model `id`.
pub(crate) fn inside<'s>(source: &'s str, id: &str) -> Option<&'s str> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_files_of_a_rewritten_source() {
        let run = Some(("r2", "s3://b/1/r2/artifacts"));
        let model = Some(("m-2", "s3://b/1/models/m-2/artifacts/"));
        for (source, want) in [
            ("runs:/r2/model", Some("s3://b/1/r2/artifacts/model")),
            ("runs:/r2", Some("s3://b/1/r2/artifacts")),
            ("runs:/r1/model", None),
            (
                "s3://b/1/r2/artifacts/model/",
                Some("s3://b/1/r2/artifacts/model"),
            ),
            ("s3://b/1/r2/artifactsX/model", None),
            ("models:/m-2", Some("s3://b/1/models/m-2/artifacts")),
            ("models:/wine/3", None),
            ("dbfs:/databricks/mlflow-registry/abc/models/wine", None),
        ] {
            assert_eq!(
                files_location(source, run, model).as_deref(),
                want,
                "{source}"
            );
        }
        assert_eq!(files_location("runs:/r2/model", None, None), None);
    }

    #[test]
    fn stage_plans() {
        assert_eq!(StageTo::for_registry(RegistryKind::Mlflow), StageTo::Stage);
        assert_eq!(
            StageTo::for_registry(RegistryKind::DatabricksWorkspace),
            StageTo::Stage
        );
        assert_eq!(
            StageTo::for_registry(RegistryKind::UnityCatalog),
            StageTo::Alias
        );
        assert_eq!(StageTo::parse("TAG").unwrap(), StageTo::Tag);
        assert!(StageTo::parse("aliases").is_err());
    }
}
