//! Trace units (MLflow 3). A trace is written in the order MLflow's own exporter uses, so that the
//! info written last is the source's: its span data first (through OTLP, or, when OTLP cannot
//! carry it, as the stored document `traces.json` under the trace's artifact location), then its
//! info (id, times, state, tags and metadata kept; the experiment, the run and the logged model it
//! names mapped), then its attachments, its assessments (each after the one it overrides, so the
//! server marks the overridden one invalid as on the source) and its links to prompt versions.
//! Every step is an upsert or is skipped when done, so an interrupted import redoes the trace
//! whole and duplicates nothing. The info is written with the tag [`STATE`] `in-progress` and
//! written again `complete` once the unit's seal checked and everything else is written: only
//! then is the trace counted imported, and an import that finds it complete skips it.

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::bodies::{pump_body, read_body};
use super::run_writer::tokio_stream;
use super::tags::{COMPLETE, IN_PROGRESS, STATE};
use super::{Importer, Open};
use crate::error::{Error, Result};
use crate::format::ArtifactEntry;
use crate::format::model::{self as rec, TRACE_MODEL_ID, TRACE_SOURCE_RUN};
use crate::mlflow::ArtifactRoot;
use crate::mlflow::api::traces::assessment_order;
use crate::mlflow::types::TraceInfo;
use crate::transfer::archive_source::ArchiveSource;
use crate::transfer::destination::Destination;
use crate::transfer::ordered::AbortOnDrop;
use crate::transfer::progress::{Counter, tick};

use crate::format::model::TRACE_SPANS_FILE as SPANS_FILE;
use crate::mlflow::api::traces::ARTIFACT_LOCATION_TAG as ARTIFACT_LOCATION;
/// The tag that says where the server keeps a trace's spans (absent: the file traces.json).
const SPANS_LOCATION: &str = "mlflow.trace.spansLocation";
/// Tags the server owns: sending them fails the call (`mlflow.artifactLocation`) or tells it
/// where spans are that are not there.
const SERVER_TAGS: &[&str] = &[
    ARTIFACT_LOCATION,
    SPANS_LOCATION,
    "mlflow.trace.archiveLocation",
    "mlflow.trace.archivalFailure",
];
/// The tag that lists the prompt versions a trace used.
const LINKED_PROMPTS: &str = "mlflow.linkedPrompts";
/// The metadata of an assessment that names the run it was made in.
const ASSESSMENT_RUN: &str = "mlflow.assessment.sourceRunId";
/// The largest span document held in memory and sent through OTLP (converting it builds a tree
/// of it); a larger one is streamed up as the file `traces.json`, as MLflow's client stores span
/// data it could not send.
pub const MAX_SPANS_IN_MEMORY: u64 = 16 << 20;

/// A trace being imported.
pub(super) struct OpenTrace {
    src: rec::Trace,
    /// Its destination experiment.
    experiment: String,
    /// Assessment ids the destination has already (from an earlier import).
    done: Vec<String>,
    /// The span document, read before the info is written.
    spans: Option<Vec<u8>>,
    /// Once the info is written: where its artifacts go.
    root: Option<ArtifactRoot>,
}

impl OpenTrace {
    /// The trace, for messages.
    pub(super) fn describe(&self) -> String {
        format!(
            "trace {} (destination experiment {})",
            self.src.trace_id, self.experiment
        )
    }
}

impl<D: Destination> Importer<'_, D> {
    pub(super) async fn begin_trace(&mut self, t: rec::Trace) -> Result<()> {
        let experiment = self.dst_experiment(&t.experiment_id, "the trace")?;
        let mut done = Vec::new();
        if let Some(found) = self.client.trace_info(&t.trace_id).await? {
            let complete = found.tags.get(STATE).map(String::as_str) == Some(COMPLETE);
            if complete && found.experiment_id == experiment {
                // Imported whole before: read (and checked), not written.
                self.report.traces_skipped += 1;
                self.open = Open::Skip;
                return Ok(());
            }
            if found.experiment_id != experiment {
                return Err(Error::Config(format!(
                    "trace {} is already on {} in experiment {}: MLflow keeps one trace per id on a server, so it cannot also be imported into experiment {experiment} (import into another server, or leave traces out with --no-traces)",
                    t.trace_id,
                    self.client.server(),
                    found.experiment_id
                )));
            }
            done = found
                .assessments
                .iter()
                .filter_map(|a| a.get("assessment_id")?.as_str().map(str::to_string))
                .collect();
        }
        self.open = Open::Trace(Box::new(OpenTrace {
            src: t,
            experiment,
            done,
            spans: None,
            root: None,
        }));
        Ok(())
    }

    /// A member of the open trace: its span data (held until the info is written), or an
    /// attachment (streamed up under the trace's artifact location).
    pub(super) async fn trace_artifact(
        &mut self,
        a: ArtifactEntry,
        source: &mut ArchiveSource,
    ) -> Result<()> {
        let Open::Trace(t) = &mut self.open else {
            return Err(Error::Internal("a trace artifact outside a trace".into()));
        };
        if a.path == SPANS_FILE
            && t.root.is_none()
            && t.spans.is_none()
            && a.size <= MAX_SPANS_IN_MEMORY
        {
            let doc = read_body(source, a.size).await?;
            if let Open::Trace(t) = &mut self.open {
                t.spans = Some(doc);
            }
            return Ok(());
        }
        let root = self.start_trace().await?;
        let (tx, rx) = mpsc::channel::<Result<Bytes>>(4);
        let client = self.client.clone();
        let (path, size) = (a.path.clone(), a.size);
        let upload = AbortOnDrop(Some(tokio::spawn(async move {
            client
                .upload(&root, &path, size, tokio_stream(rx).boxed())
                .await
        })));
        tick(&self.opts.progress, Counter::Files, 1);
        let pumped = pump_body(source, &tx, &self.opts.progress).await;
        drop(tx);
        let mut upload = upload;
        let uploaded = upload.join("uploading").await.and_then(|r| r);
        pumped?;
        uploaded?;
        self.report.artifacts += 1;
        self.report.artifact_bytes += a.size;
        Ok(())
    }

    /// Writes the open trace's spans and info once; returns its artifact root.
    async fn start_trace(&mut self) -> Result<ArtifactRoot> {
        let Open::Trace(t) = &mut self.open else {
            return Err(Error::Internal("no trace is open".into()));
        };
        if let Some(root) = &t.root {
            return Ok(root.clone());
        }
        let spans = t.spans.take();
        let (id, experiment) = (t.src.trace_id.clone(), t.experiment.clone());
        let src = t.src.clone();
        let info = self.trace_info_for(&src, &experiment);
        // Spans the source kept in its database go through OTLP, into the destination's. Spans
        // it kept as the file traces.json (MLflow's client writes them so when OTLP fails) stay
        // that file, byte for byte: OTLP would let the server rewrite attributes they hold (it
        // decodes strings that hold JSON, and adds some of its own). So do spans OTLP cannot
        // carry.
        let in_database = src.tags.iter().any(|t| t.key == SPANS_LOCATION);
        if let Some(doc) = &spans {
            span_document(doc)?;
        }
        let mut as_file = None;
        if let Some(doc) = spans {
            if !in_database {
                as_file = Some(doc);
            } else if let Err(_why) = self.client.log_spans(&experiment, &id, &doc).await? {
                as_file = Some(doc);
            }
        }
        let written = self.client.start_trace(&info).await?;
        let location = written
            .tags
            .get(ARTIFACT_LOCATION)
            .cloned()
            .ok_or_else(|| Error::Protocol {
                call: format!("POST traces (trace {id})"),
                server: self.client.server().to_string(),
                detail: format!("the answer has no artifact location (tag {ARTIFACT_LOCATION})"),
            })?;
        let root = ArtifactRoot::parse(&location)
            .map_err(|e| Error::Config(format!("its artifacts cannot be written: {e}")))?;
        if let Some(doc) = as_file {
            let n = doc.len() as u64;
            self.client
                .upload_bytes(&root, SPANS_FILE, Bytes::from(doc))
                .await?;
            self.report.artifacts += 1;
            self.report.artifact_bytes += n;
        }
        if let Open::Trace(t) = &mut self.open {
            t.root = Some(root.clone());
        }
        Ok(root)
    }

    /// The info to write: the source's, with the destination's experiment, run and logged model,
    /// without the tags the server owns, without assessments (written one by one after).
    fn trace_info_for(&self, src: &rec::Trace, experiment: &str) -> TraceInfo {
        let mut info = crate::transfer::map::trace_info(src);
        info.experiment_id = experiment.to_string();
        info.assessments.clear();
        // The server's own tags, and an earlier import's (this import owns its tags).
        info.tags
            .retain(|k, _| !SERVER_TAGS.contains(&k.as_str()) && !k.starts_with("mlflow_archive."));
        info.tags.insert(STATE.to_string(), IN_PROGRESS.to_string());
        if let Some(run) = info.trace_metadata.get_mut(TRACE_SOURCE_RUN)
            && let Some(dst) = self.run_ids.get(run.as_str())
        {
            dst.clone_into(run);
        }
        if let Some(model) = info.trace_metadata.get_mut(TRACE_MODEL_ID)
            && let Some(dst) = self.report.logged_models.get(model.as_str())
        {
            dst.clone_into(model);
        }
        info
    }

    /// Finishes the open trace at its seal: info (if no attachment wrote it yet), assessments,
    /// prompt links.
    pub(super) async fn end_trace(&mut self) -> Result<()> {
        self.start_trace().await?;
        let Open::Trace(t) = std::mem::replace(&mut self.open, Open::None) else {
            return Err(Error::Internal("no trace is open".into()));
        };
        let id = &t.src.trace_id;
        for i in assessment_order(&t.src.assessments) {
            let mut a = t.src.assessments[i].clone();
            let aid = a.get("assessment_id").and_then(|v| v.as_str());
            if aid.is_some_and(|aid| t.done.iter().any(|d| d == aid)) {
                continue;
            }
            if let Some(run) = a
                .get_mut("metadata")
                .and_then(|m| m.get_mut(ASSESSMENT_RUN))
                && let Some(dst) = run.as_str().and_then(|r| self.run_ids.get(r))
            {
                *run = serde_json::Value::String(dst.clone());
            }
            self.client.create_assessment(id, &a).await?;
            self.report.assessments += 1;
        }
        let prompts = linked_prompts(&t.src.tags);
        if !prompts.is_empty() {
            self.client.link_prompts_to_trace(id, &prompts).await?;
        }
        // Everything is written: the same info again, marked complete.
        let mut info = self.trace_info_for(&t.src, &t.experiment);
        info.tags.insert(STATE.to_string(), COMPLETE.to_string());
        self.client.start_trace(&info).await?;
        self.report.traces_imported += 1;
        Ok(())
    }
}

/// Checks that `doc` is MLflow's span document, `{"spans": [{...}, ...]}` (spec §7.8), before it
/// is written where MLflow's client reads it: a destination that stores anything else fails
/// every read of the experiment's traces. Bounded like the archive's free-form records (§11)
/// before anything is parsed.
fn span_document(doc: &[u8]) -> Result<()> {
    #[derive(serde::Deserialize)]
    struct Doc {
        #[serde(rename = "spans")]
        _spans: Vec<Span>,
    }
    #[derive(serde::Deserialize)]
    struct Span {
        #[serde(rename = "name")]
        _name: serde::de::IgnoredAny,
    }
    let limits = crate::format::Limits::default();
    let (values, objects) = crate::format::validate::json_counts(doc);
    if values > limits.max_json_values || objects > limits.max_json_objects {
        return Err(Error::Input(format!(
            "its span data holds {values} JSON values and {objects} objects, more than the limits of {} and {} (§11)",
            limits.max_json_values, limits.max_json_objects
        )));
    }
    serde_json::from_slice::<Doc>(doc).map_err(|e| {
        Error::Input(format!(
            "its span data is not MLflow's span document {{\"spans\": [...]}} (§7.8): {e}"
        ))
    })?;
    Ok(())
}

/// The prompt versions a trace's tag `mlflow.linkedPrompts` lists (`[{"name", "version"}]`).
fn linked_prompts(tags: &[rec::Tag]) -> Vec<(String, String)> {
    let Some(t) = tags.iter().find(|t| t.key == LINKED_PROMPTS) else {
        return Vec::new();
    };
    let list: Vec<BTreeMap<String, serde_json::Value>> =
        serde_json::from_str(&t.value).unwrap_or_default();
    list.into_iter()
        .filter_map(|p| {
            let name = p.get("name")?.as_str()?.to_string();
            let version = match p.get("version")? {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((name, version))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{linked_prompts, span_document};

    #[test]
    fn only_mlflows_span_documents_are_written() {
        assert!(span_document(br#"{"spans": []}"#).is_ok());
        assert!(span_document(br#"{"spans": [{"name": "a", "attributes": {}}]}"#).is_ok());
        for bad in [
            &br#"{"spans": 5}"#[..],
            br#"{"spans": [5]}"#,
            br#"{"spans": [{"attributes": {}}]}"#,
            b"\xff\xfe",
            b"[]",
        ] {
            assert!(
                span_document(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!("{{\"spans\": [{}]}}", "{\"name\":0},".repeat(200_001));
        let err = span_document(many.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("objects"), "{err}");
    }
    use crate::format::model::Tag;

    #[test]
    fn linked_prompts_are_read_from_the_tag() {
        let tags = vec![Tag::new(
            "mlflow.linkedPrompts",
            r#"[{"name": "greet", "version": "1"}, {"name": "qa", "version": 2}, {"x": 1}]"#,
        )];
        assert_eq!(
            linked_prompts(&tags),
            vec![("greet".into(), "1".into()), ("qa".into(), "2".into())]
        );
        assert!(linked_prompts(&[Tag::new("mlflow.linkedPrompts", "not json")]).is_empty());
        assert!(linked_prompts(&[]).is_empty());
    }
}
