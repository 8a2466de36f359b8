//! Records (§7, §9): the header's format and version, each record's id against its unit, the
//! fields the spec enumerates, references that must not precede what they refer to, the counts.

use super::Violation;
use super::enums::{LIFECYCLE_STAGES, PRINCIPAL_TYPES, RUN_STATUSES, STAGES, TRACE_STATES, one_of};
use super::version::parse_version;
use super::{Phase, Validator};
use crate::format::FORMAT_MAJOR;
use crate::format::checksum::Crc32;
use crate::format::model::{
    Dataset, DatasetRecords, Experiment, FORMAT_NAME, Header, LoggedModel, MetricChunk,
    ModelVersion, Permissions, RegisteredModel, Run, TRACE_MODEL_ID, TRACE_SOURCE_RUN, Trace,
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
            Some(
                UnitId::Experiment(u)
                | UnitId::Run(u)
                | UnitId::LoggedModel(u)
                | UnitId::Trace(u)
                | UnitId::Dataset(u),
            ) if u == id => Ok(()),
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
                "experiment {} comes after a run, logged model, trace or dataset of it (§9)",
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
                "run {} comes after a run, logged model, model version or trace that refers to it (§9)",
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
        for d in r.dataset_inputs.iter() {
            if let Some(id) = d.evaluation_dataset_id()
                && !self.datasets_seen.contains(&id)
            {
                self.datasets_referenced.insert(id);
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
                "logged model {} comes after a run, model version or trace that refers to it (§9)",
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
    pub fn registered_model(&mut self, m: &RegisteredModel) -> Result<(), Violation> {
        let Some(u) = self
            .open
            .as_mut()
            .filter(|u| matches!(u.id, UnitId::Model(_)))
        else {
            return Err("a registered model record outside its unit".into());
        };
        u.prompt = m.is_prompt();
        self.counts.registered_models += 1;
        if u.prompt {
            self.counts.prompts += 1;
        }
        Ok(())
    }

    /// Checks that a JSON member of free-form objects (a trace record, a chunk of dataset records)
    /// holds at most the limit of values, before it is parsed: a value costs tens of bytes in
    /// memory, and a 64 MiB member of `[]`s would otherwise cost gigabytes (§11).
    ///
    /// # Errors
    ///
    /// The member holds more values than the limit.
    pub fn json_values(&self, bytes: &[u8], what: &str) -> Result<(), Violation> {
        let (n, objects) = json_counts(bytes);
        if n > self.limits.max_json_values {
            return Err(violation!(
                "{what} holds {n} JSON values, more than the limit of {} (§11)",
                self.limits.max_json_values
            ));
        }
        if objects > self.limits.max_json_objects {
            return Err(violation!(
                "{what} holds {objects} JSON objects, more than the limit of {} (§11)",
                self.limits.max_json_objects
            ));
        }
        Ok(())
    }

    /// Checks a trace record (§7.8).
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn trace(&mut self, t: &Trace) -> Result<(), Violation> {
        self.record_id(&t.trace_id, "trace")?;
        one_of("trace", "state", &t.state, TRACE_STATES, "7.8")?;
        // Maps on the source: a key twice would be read one way here and another way by a
        // consumer that keeps the last.
        for (list, what) in [(&t.trace_metadata, "trace_metadata"), (&t.tags, "tags")] {
            let mut keys = std::collections::HashSet::new();
            if let Some(k) = list.iter().find(|x| !keys.insert(x.key.as_str())) {
                return Err(violation!(
                    "the trace record's {what} has the key {:?} twice (§7.8)",
                    k.key
                ));
            }
        }
        if !self.experiments_seen.contains(&t.experiment_id) {
            self.experiments_referenced.insert(t.experiment_id.clone());
        }
        if let Some(run) = t.metadata(TRACE_SOURCE_RUN)
            && !self.runs_seen.contains(run)
        {
            self.runs_referenced.insert(run.to_string());
        }
        if let Some(model) = t.metadata(TRACE_MODEL_ID)
            && !self.logged_models_seen.contains(model)
        {
            self.logged_models_referenced.insert(model.to_string());
        }
        if let Some(i) = t.assessments.iter().position(|a| !a.is_object()) {
            return Err(violation!(
                "the trace record's assessment {i} is not a JSON object (§7.8)"
            ));
        }
        self.counts.traces += 1;
        self.counts.assessments += t.assessments.len() as u64;
        Ok(())
    }

    /// Checks an evaluation dataset record (§7.9).
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn dataset(&mut self, d: &Dataset) -> Result<(), Violation> {
        self.record_id(&d.dataset_id, "dataset")?;
        if self.datasets_referenced.contains(&d.dataset_id) {
            return Err(violation!(
                "dataset {} comes after a run that used it (§9)",
                d.dataset_id
            ));
        }
        for e in &d.experiment_ids {
            if !self.experiments_seen.contains(e) {
                self.experiments_referenced.insert(e.clone());
            }
        }
        self.datasets_seen.insert(d.dataset_id.clone());
        self.counts.datasets += 1;
        Ok(())
    }

    /// Checks a chunk of a dataset's records (§7.10).
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn dataset_records(&mut self, c: &DatasetRecords) -> Result<(), Violation> {
        if !matches!(self.open.as_ref().map(|u| &u.id), Some(UnitId::Dataset(_))) {
            return Err("dataset records outside a dataset".into());
        }
        if c.records.len() > self.limits.max_chunk_points {
            return Err(violation!(
                "a chunk of {} dataset records exceeds the limit of {} (§11)",
                c.records.len(),
                self.limits.max_chunk_points
            ));
        }
        if let Some(i) = c.records.iter().position(|r| !r.is_object()) {
            return Err(violation!(
                "dataset record {i} of the chunk is not a JSON object (§7.10)"
            ));
        }
        self.counts.dataset_records += c.records.len() as u64;
        Ok(())
    }

    /// Checks the permissions of the open experiment or registered model (§7.11).
    ///
    /// # Errors
    ///
    /// The rule the record or member breaks, with its spec section; the validator's state is then
    /// unspecified (a writer or reader stops at its first error).
    pub fn permissions(&mut self, p: &Permissions) -> Result<(), Violation> {
        match self.open.as_ref().map(|u| &u.id) {
            Some(UnitId::Experiment(id)) if !p.grants.is_empty() => {
                return Err(violation!(
                    "the permissions of experiment {id} hold grants, which only registered models have (§7.11)"
                ));
            }
            Some(UnitId::Experiment(_) | UnitId::Model(_)) => {}
            _ => return Err("permissions outside an experiment or registered model".into()),
        }
        for (i, e) in p.acl.iter().enumerate() {
            one_of(
                "permissions",
                "principal_type",
                &e.principal_type,
                PRINCIPAL_TYPES,
                "7.11",
            )?;
            if e.principal.is_empty() || e.level.is_empty() {
                return Err(violation!(
                    "access control entry {i} has an empty principal or level (§7.11)"
                ));
            }
        }
        for (i, g) in p.grants.iter().enumerate() {
            if g.principal.is_empty() || g.privileges.iter().any(String::is_empty) {
                return Err(violation!(
                    "grant {i} has an empty principal or privilege (§7.11)"
                ));
            }
        }
        self.counts.permissions += p.entries();
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
        if self.open.as_ref().is_some_and(|u| u.prompt) {
            self.counts.prompt_versions += 1;
        }
        Ok(())
    }
}

/// An upper bound of the number of JSON values in `bytes`: one, plus one per `[`, `{` and `,`
/// outside strings (each value but the first follows one of them).
pub fn json_values(bytes: &[u8]) -> u64 {
    json_counts(bytes).0
}

/// [`json_values`], and the number of objects (`{` outside strings): an object costs a parser
/// hundreds of bytes, a plain value tens.
pub fn json_counts(bytes: &[u8]) -> (u64, u64) {
    let mut n = u64::from(!bytes.is_empty());
    let mut objects = 0;
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if b == b'"' {
            in_string = true;
        } else if matches!(b, b'[' | b'{' | b',') {
            n += 1;
            if b == b'{' {
                objects += 1;
            }
        }
    }
    (n, objects)
}

#[cfg(test)]
mod tests {
    use super::json_values;

    #[test]
    fn json_values_are_counted_outside_strings() {
        assert_eq!(json_values(b""), 0);
        assert_eq!(json_values(b"1"), 1);
        assert_eq!(json_values(br#"{"a": [1, 2], "b": "x,[{"}"#), 5);
        assert_eq!(json_values(br#"["a\"b,c", 1]"#), 3);
        assert!(json_values(b"[[],[],[]]") >= 4);
        assert_eq!(super::json_counts(br#"[{"a": {}}, "{"]"#), (5, 2));
    }
}
