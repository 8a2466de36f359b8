//! Trace units (MLflow 3): each trace's info with its assessments, its span data as the server
//! stores it (read whole from the server, which answers it in one response, and streamed into the
//! archive as `traces.json`), and its attachments.

use futures_util::TryStreamExt;

use super::artifacts::copy_artifacts_as;
use crate::error::{Error, Result};
use crate::format::model::TRACE_SPANS_FILE as SPANS_FILE;
use crate::mlflow::ArtifactRoot;
use crate::mlflow::types::Experiment;
use crate::mlflow::types::TraceInfo;
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::{Scheduler, UnitTx};
use crate::transfer::source::Source;

/// How a span document refers to an attachment of its trace.
const ATTACHMENT_REF: &[u8] = b"mlflow-attachment://";
use crate::mlflow::api::traces::ARTIFACT_LOCATION_TAG as ARTIFACT_LOCATION;

/// Writes the traces of `experiments`, oldest first, experiment by experiment (but those `base`
/// says the destination holds).
pub(super) async fn traces_into<S: Source>(
    client: &S,
    experiments: &[Experiment],
    base: Option<&crate::transfer::sync::Base>,
    sink: &mut Scheduler,
) -> Result<()> {
    for e in experiments {
        let ids = std::slice::from_ref(&e.experiment_id);
        let mut traces = std::pin::pin!(client.traces(ids));
        while let Some(t) = traces.try_next().await? {
            if base.is_some_and(|b| b.has_trace(&t.trace_id)) {
                // Complete at the destination (a sync): not read again.
                continue;
            }
            write_trace(client, sink, t).await?;
        }
    }
    Ok(())
}

async fn write_trace<S: Source>(client: &S, sink: &mut Scheduler, t: TraceInfo) -> Result<()> {
    let record = crate::transfer::map::trace(&t);
    let id = t.trace_id.clone();
    let location = t.tags.get(ARTIFACT_LOCATION).cloned();
    let client = client.clone();
    sink.spawn(|mut unit| async move {
        let about = |e: Error| e.about(format!("trace {id}"));
        unit.send(Cmd::BeginTrace(record)).await?;
        let refers = spans_into(&client, &id, &mut unit).await.map_err(about)?;
        if refers && let Some(location) = location {
            let root = format!("{}/attachments", location.trim_end_matches('/'));
            let root = ArtifactRoot::parse(&root).map_err(about)?;
            copy_artifacts_as(&client, &root, "attachments/", &mut unit)
                .await
                .map_err(about)?;
        }
        unit.send(Cmd::EndUnit).await
    })
    .await
}

/// Streams the trace's span document into the unit; whether it refers to attachments.
async fn spans_into<S: Source>(client: &S, id: &str, unit: &mut UnitTx) -> Result<bool> {
    let Some(dl) = client.trace_spans(id).await? else {
        return Ok(false); // a trace without span data
    };
    let size = dl.size.ok_or_else(|| {
        Error::Internal(format!("the span data of trace {id} came without its size"))
    })?;
    unit.wait_front().await;
    unit.send(Cmd::BeginArtifact(SPANS_FILE.into(), size))
        .await?;
    let mut scan = Scan::default();
    let mut body = dl.body;
    while let Some(chunk) = body.try_next().await? {
        scan.feed(&chunk);
        unit.send(Cmd::Body(chunk)).await?;
    }
    unit.send(Cmd::EndArtifact).await?;
    Ok(scan.found)
}

/// Looks for [`ATTACHMENT_REF`] in a body fed in chunks (a match may straddle two).
#[derive(Default)]
struct Scan {
    tail: Vec<u8>,
    found: bool,
}

impl Scan {
    fn feed(&mut self, chunk: &[u8]) {
        if self.found {
            return;
        }
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(chunk);
        self.found = joined
            .windows(ATTACHMENT_REF.len())
            .any(|w| w == ATTACHMENT_REF);
        let keep = ATTACHMENT_REF.len() - 1;
        self.tail = joined[joined.len().saturating_sub(keep)..].to_vec();
    }
}

#[cfg(test)]
mod tests {
    use super::Scan;

    #[test]
    fn an_attachment_reference_is_found_across_chunks() {
        let doc = br#"{"spans":[{"attributes":{"img":"\"mlflow-attachment://c50f?x=1\""}}]}"#;
        for cut in 0..doc.len() {
            let mut s = Scan::default();
            s.feed(&doc[..cut]);
            s.feed(&doc[cut..]);
            assert!(s.found, "cut at {cut}");
        }
        let mut s = Scan::default();
        s.feed(br#"{"spans":[{"attributes":{"a":"mlflow-attach"#);
        s.feed(br#"ment:/""}}]}"#);
        assert!(!s.found);
    }
}
