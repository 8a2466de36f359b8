//! Records (§7, §9): the header's format and version, each record's id against its unit, the
//! fields the spec enumerates, references that must not precede what they refer to, the counts.

use super::Violation;
use super::enums::{LIFECYCLE_STAGES, RUN_STATUSES, STAGES, one_of};
use super::version::parse_version;
use super::{Phase, Validator};
use crate::format::FORMAT_MAJOR;
use crate::format::checksum::Crc32;
use crate::format::model::{
    Experiment, FORMAT_NAME, Header, LoggedModel, MetricChunk, ModelVersion, RegisteredModel, Run,
};
use crate::format::path::UnitId;

impl Validator {
    /// Checks the header.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn header(&mut self, h: &Header, crc: Crc32) -> Result<(), Violation> {
        if h.format != FORMAT_NAME {
            return Err(violation!(
                "format {:?} is not {FORMAT_NAME:?} (§7.1)",
                h.format
            ));
        }
        let (major, minor) = parse_version(&h.version)?;
        if major != FORMAT_MAJOR {
            return Err(violation!(
                "archive format version {} is not supported: this reader reads {FORMAT_MAJOR}.x (§10)",
                h.version
            ));
        }
        self.minor = minor;
        self.header_crc = Some(crc);
        self.phase = Phase::Units;
        Ok(())
    }

    fn record_id(&self, id: &str, what: &str) -> Result<(), Violation> {
        match self.open.as_ref().map(|u| &u.id) {
            Some(UnitId::Experiment(u) | UnitId::Run(u) | UnitId::LoggedModel(u)) if u == id => {
                Ok(())
            }
            Some(u) => Err(violation!(
                "the {what} record's id {id:?} does not match its unit {u} (§7)"
            )),
            None => Err(violation!("a {what} record outside a unit")),
        }
    }

    /// Checks an experiment record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn experiment(&mut self, e: &Experiment) -> Result<(), Violation> {
        self.record_id(&e.experiment_id, "experiment")?;
        if self.experiments_referenced.contains(&e.experiment_id) {
            return Err(violation!(
                "experiment {} comes after a run or logged model of it (§9)",
                e.experiment_id
            ));
        }
        one_of(
            "experiment",
            "lifecycle_stage",
            &e.lifecycle_stage,
            LIFECYCLE_STAGES,
            "7.2",
        )?;
        self.experiments_seen.insert(e.experiment_id.clone());
        self.counts.experiments += 1;
        Ok(())
    }

    /// Checks a run record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn run(&mut self, r: &Run) -> Result<(), Violation> {
        self.record_id(&r.run_id, "run")?;
        if self.runs_referenced.contains(&r.run_id) {
            return Err(violation!(
                "run {} comes after a run, logged model or model version that refers to it (§9)",
                r.run_id
            ));
        }
        one_of("run", "status", &r.status, RUN_STATUSES, "7.3")?;
        one_of(
            "run",
            "lifecycle_stage",
            &r.lifecycle_stage,
            LIFECYCLE_STAGES,
            "7.3",
        )?;
        if !self.experiments_seen.contains(&r.experiment_id) {
            self.experiments_referenced.insert(r.experiment_id.clone());
        }
        if let Some(p) = r.parent_run_id()
            && !self.runs_seen.contains(p)
        {
            self.runs_referenced.insert(p.to_string());
        }
        for m in r.model_inputs.iter() {
            if !self.logged_models_seen.contains(m) {
                self.logged_models_referenced.insert(m.clone());
            }
        }
        self.runs_seen.insert(r.run_id.clone());
        self.counts.runs += 1;
        Ok(())
    }

    /// Checks a metric chunk.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn metric_chunk(&mut self, c: &MetricChunk) -> Result<(), Violation> {
        if !matches!(self.open.as_ref().map(|u| &u.id), Some(UnitId::Run(_))) {
            return Err("a metric chunk outside a run".into());
        }
        if c.points.len() > self.limits.max_chunk_points {
            return Err(violation!(
                "a metric chunk of {} points exceeds the limit of {} (§11)",
                c.points.len(),
                self.limits.max_chunk_points
            ));
        }
        self.counts.metric_chunks += 1;
        self.counts.metric_points += c.points.len() as u64;
        Ok(())
    }

    /// Checks a logged model record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn logged_model(&mut self, m: &LoggedModel) -> Result<(), Violation> {
        self.record_id(&m.model_id, "logged model")?;
        if self.logged_models_referenced.contains(&m.model_id) {
            return Err(violation!(
                "logged model {} comes after a run or model version that refers to it (§9)",
                m.model_id
            ));
        }
        if !self.experiments_seen.contains(&m.experiment_id) {
            self.experiments_referenced.insert(m.experiment_id.clone());
        }
        if !m.source_run_id.is_empty() && !self.runs_seen.contains(&m.source_run_id) {
            self.runs_referenced.insert(m.source_run_id.clone());
        }
        self.logged_models_seen.insert(m.model_id.clone());
        self.counts.logged_models += 1;
        Ok(())
    }

    /// Checks a registered model record.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn registered_model(&mut self, _m: &RegisteredModel) -> Result<(), Violation> {
        if !matches!(self.open.as_ref().map(|u| &u.id), Some(UnitId::Model(_))) {
            return Err("a registered model record outside its unit".into());
        }
        self.counts.registered_models += 1;
        Ok(())
    }

    /// Checks a model version record against its member name's number.
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn model_version(
        &mut self,
        v: &ModelVersion,
        number_in_name: u64,
    ) -> Result<(), Violation> {
        if v.version != number_in_name {
            return Err(violation!(
                "the record says version {} but its member is version {number_in_name} (§7.7)",
                v.version
            ));
        }
        one_of(
            "model version",
            "current_stage",
            &v.current_stage,
            STAGES,
            "7.7",
        )?;
        if !v.run_id.is_empty() && !self.runs_seen.contains(&v.run_id) {
            self.runs_referenced.insert(v.run_id.clone());
        }
        if !v.model_id.is_empty() && !self.logged_models_seen.contains(&v.model_id) {
            self.logged_models_referenced.insert(v.model_id.clone());
        }
        self.counts.model_versions += 1;
        Ok(())
    }
}
