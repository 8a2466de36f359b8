//! Traces (MLflow 3) through the client alone: a source populated with MLflow's own tracing
//! client (nested spans, typed attributes, events, an exception, a trace inside a run,
//! feedback, expectations, an override, an attribute OTLP cannot carry) is read with
//! `search_traces` and `download_trace_data`, written to the destination with `log_spans`,
//! `start_trace` and `create_assessment`, and then read back with MLflow's own client on both
//! sides, span by span and assessment by assessment.

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::TraceInfo;
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, ClientBuilder, CreateRun, TrackingConfig, assessment_order,
};

use crate::live_pair;
use crate::util::server::venv;
use crate::util::{client, unique};

/// Populates the source: prints `{experiment_id, traces, artifact, attachment}`.
const POPULATE: &str = r#"
import json, sys
import mlflow
from mlflow import MlflowClient
from mlflow.entities import AssessmentSource, SpanEvent
from mlflow.tracing.attachments import Attachment

uri, name = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
exp = mlflow.set_experiment(name)

@mlflow.trace
def boom(x):
    raise ValueError(f"bad input {x}")

@mlflow.trace(span_type="CHAIN", attributes={"k": 3, "float.attr": 1.0, "nested": {"a": {"b": [1, None, True]}}})
def pipeline(x):
    with mlflow.start_span("retrieve", span_type="RETRIEVER") as s:
        s.set_inputs({"q": x})
        s.set_attribute("docs", ["a", "b"])
        s.add_event(SpanEvent("cache-miss", attributes={"key": x, "n": 2, "ratio": 0.5, "hit": False}))
        with mlflow.start_span("embed") as e:
            e.set_attribute("dims", 1.0)
            e.set_attribute("json text", '{"a": [1]}')
            e.set_outputs([0.25, -1.5e-8])
        s.set_outputs({"docs": 2})
    try:
        boom(x)
    except ValueError:
        pass
    mlflow.update_current_trace(tags={"team": "qa"}, metadata={"m.k": "m.v"}, client_request_id=f"req-{x}")
    return x.upper()

pipeline("hello world")
t1 = mlflow.get_last_active_trace_id()
with mlflow.start_run() as run:
    pipeline("in a run")
    t2 = mlflow.get_last_active_trace_id()

@mlflow.trace
def big():
    mlflow.get_current_active_span().set_attribute("big", 2**70)
    return 1

big()
t3 = mlflow.get_last_active_trace_id()

@mlflow.trace
def with_attachment():
    return {"img": Attachment(content_type="image/png", content_bytes=b"\x89PNG not really")}

with_attachment()
t4 = mlflow.get_last_active_trace_id()

@mlflow.trace
def large():
    for i in range(3):
        with mlflow.start_span(f"part {i}") as s:
            s.set_attribute("blob", "abc"[i] * 2_000_000)

large()
t5 = mlflow.get_last_active_trace_id()

span = next(s for s in mlflow.get_trace(t1).data.spans if s.name == "retrieve")
fb = mlflow.log_feedback(trace_id=t1, name="quality", value=0.8, rationale="good enough", metadata={"mk": "mv"},
                         source=AssessmentSource(source_type="HUMAN", source_id="alice@x.com"))
mlflow.log_feedback(trace_id=t1, name="span_quality", value=True, span_id=span.span_id,
                    source=AssessmentSource(source_type="LLM_JUDGE", source_id="gpt"))
mlflow.log_expectation(trace_id=t1, name="expected", value={"answer": "HELLO WORLD"}, metadata={"e": "1"})
mlflow.log_feedback(trace_id=t1, name="judge", error=ValueError("judge down"),
                    source=AssessmentSource(source_type="CODE", source_id="scorer"))
mlflow.override_feedback(trace_id=t1, assessment_id=fb.assessment_id, value=0.9, rationale="revised")
mlflow.log_expectation(trace_id=t2, name="expected", value="IN A RUN")
print(json.dumps({"experiment_id": exp.experiment_id, "traces": [t1, t2, t3, t4, t5],
                  "artifact": t3, "attachment": t4}))
"#;

/// Reads the traces back on both servers with MLflow's client; prints `{counts, diffs}`.
const COMPARE: &str = r#"
import json, sys
import mlflow

def trace(uri, trace_id):
    # Artifact-backed spans are read through the tracking URI's artifact proxy.
    mlflow.set_tracking_uri(uri)
    return mlflow.get_trace(trace_id)

ids = sys.argv[3].split(",")
diffs, counts = [], {"traces": 0, "spans": 0, "assessments": 0, "invalid": 0}

def differ(where, a, b):
    if a != b:
        diffs.append({"at": where, "source": repr(a)[:300], "destination": repr(b)[:300]})

for tid in ids:
    s, d = trace(sys.argv[1], tid), trace(sys.argv[2], tid)
    counts["traces"] += 1
    ss = {x.span_id: x.to_dict() for x in s.data.spans}
    ds = {x.span_id: x.to_dict() for x in d.data.spans}
    differ(f"{tid} span ids", sorted(ss), sorted(ds))
    for sid, sd in ss.items():
        counts["spans"] += 1
        dd = ds.get(sid, {})
        for key in sorted(set(sd) | set(dd)):
            differ(f"{tid} span {sid} {key}", sd.get(key), dd.get(key))
    si, di = s.info.to_dict(), d.info.to_dict()
    for key in sorted(set(si) | set(di)):
        if key in ("trace_location", "assessments"):
            continue
        a, b = si.get(key), di.get(key)
        if key == "tags":
            a = {k: v for k, v in (a or {}).items() if k != "mlflow.artifactLocation"}
            b = {k: v for k, v in (b or {}).items() if k != "mlflow.artifactLocation"}
        differ(f"{tid} info {key}", a, b)
    sa = {x.assessment_id: x.to_dictionary() for x in s.info.assessments}
    da = {x.assessment_id: x.to_dictionary() for x in d.info.assessments}
    differ(f"{tid} assessment ids", sorted(sa), sorted(da))
    for aid, ad in sa.items():
        counts["assessments"] += 1
        counts["invalid"] += ad.get("valid") is False
        bd = da.get(aid, {})
        for key in sorted(set(ad) | set(bd)):
            differ(f"{tid} assessment {aid} {key}", ad.get(key), bd.get(key))
print(json.dumps({"counts": counts, "diffs": diffs}))
"#;

/// Runs a Python script with MLflow's client (spans logged synchronously, so that each trace is
/// whole when the script ends); returns its output as JSON.
async fn python(script: &str, args: &[&str]) -> serde_json::Value {
    let python = venv().expect("the venv").join("bin/python");
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// The whole span document of a trace, its length checked against the announced size.
async fn document(c: &Client, trace_id: &str) -> Option<Vec<u8>> {
    let d = c.download_trace_data(trace_id, None).await.unwrap()?;
    let size = d.size.expect("a size");
    let chunks: Vec<Bytes> = d.body.try_collect().await.unwrap();
    let bytes = chunks.concat();
    assert_eq!(bytes.len() as u64, size, "{trace_id}");
    Some(bytes)
}

#[tokio::test]
async fn traces_are_copied_span_for_span_with_their_assessments() {
    let pair = live_pair!();
    let made = python(POPULATE, &[&pair.src.uri, &unique("traces")]).await;
    let src_exp = made["experiment_id"].as_str().unwrap().to_string();
    let ids: Vec<String> = made["traces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let artifact_only = made["artifact"].as_str().unwrap();
    let with_attachment = made["attachment"].as_str().unwrap();

    let (src, dst) = (client(&pair.src.uri), client(&pair.dst.uri));
    // Oldest first, each once, also when every page holds one trace.
    let paged = ClientBuilder::new(TrackingConfig::for_uri(&pair.src.uri).unwrap())
        .page_size(1)
        .build()
        .unwrap();
    let infos: Vec<TraceInfo> = paged
        .search_traces(std::slice::from_ref(&src_exp), None)
        .try_collect()
        .await
        .unwrap();
    let found: Vec<&str> = infos.iter().map(|t| t.trace_id.as_str()).collect();
    assert_eq!(found, ids);
    let t1 = &infos[0];
    assert_eq!(t1.experiment_id, src_exp);
    assert_eq!(t1.state, "OK");
    assert_eq!(t1.client_request_id.as_deref(), Some("req-hello world"));
    assert_eq!(t1.tags["team"], "qa");
    assert_eq!(t1.trace_metadata["m.k"], "m.v");
    assert!(t1.request_time.unwrap() > 1_700_000_000_000);
    assert!(t1.execution_duration.unwrap() > 0);
    assert_eq!(t1.assessments.len(), 5);
    assert_eq!(
        src.get_trace_info(&t1.trace_id).await.unwrap().as_ref(),
        Some(t1)
    );
    let filtered: Vec<TraceInfo> = src
        .search_traces(std::slice::from_ref(&src_exp), Some("tags.team = 'qa'"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(filtered.len(), 2);

    let dst_exp = dst
        .create_experiment(&unique("traces-copy"), None, &[])
        .await
        .unwrap();
    // The last trace's spans (6 MB) travel in two OTLP requests.
    let mut documents = Vec::new();
    for info in &infos {
        let id = &info.trace_id;
        let doc = document(&src, id).await.expect("span data");
        let sent = dst.log_spans(&dst_exp, id, &doc).await.unwrap();
        let mut copy = info.clone();
        copy.experiment_id = dst_exp.clone();
        for tag in [
            "mlflow.artifactLocation",
            "mlflow.trace.spansLocation",
            "mlflow.trace.archiveLocation",
            "mlflow.trace.archivalFailure",
        ] {
            copy.tags.remove(tag);
        }
        let assessments = std::mem::take(&mut copy.assessments);
        let answer = dst.start_trace(&copy).await.unwrap();
        assert_eq!(answer.experiment_id, dst_exp);
        match sent {
            Ok(()) => assert_ne!(id, artifact_only),
            Err(reason) => {
                assert_eq!(id, artifact_only, "{reason}");
                assert!(reason.contains("64 bits"), "{reason}");
                let root = ArtifactRoot::parse(&answer.tags["mlflow.artifactLocation"]).unwrap();
                dst.upload_artifact_bytes(&root, "traces.json", Bytes::from(doc.clone()))
                    .await
                    .unwrap();
            }
        }
        for i in assessment_order(&assessments) {
            dst.create_assessment(id, &assessments[i]).await.unwrap();
        }
        documents.push(doc);
    }
    // An attachment, referred to from the spans, is copied into the trace's artifacts.
    let doc = &documents[ids.iter().position(|i| i == with_attachment).unwrap()];
    let text = String::from_utf8_lossy(doc);
    let at = text
        .find("mlflow-attachment://")
        .expect("an attachment reference")
        + 20;
    let uuid = &text[at..at + 36];
    let read = |c: Client, uuid: String| async move {
        let d = c
            .download_trace_data(with_attachment, Some(&uuid))
            .await
            .unwrap()?;
        let chunks: Vec<Bytes> = d.body.try_collect().await.unwrap();
        Some(chunks.concat())
    };
    let bytes = read(src.clone(), uuid.to_string())
        .await
        .expect("the attachment");
    assert_eq!(bytes, b"\x89PNG not really");
    let info = dst.get_trace_info(with_attachment).await.unwrap().unwrap();
    let root = ArtifactRoot::parse(&info.tags["mlflow.artifactLocation"]).unwrap();
    dst.upload_artifact_bytes(
        &root,
        &format!("attachments/{uuid}"),
        Bytes::from(bytes.clone()),
    )
    .await
    .unwrap();
    assert_eq!(read(dst.clone(), uuid.to_string()).await, Some(bytes));
    let absent = "3f2c5a8e-1b2c-4d5e-8f90-123456789abc".to_string();
    assert_eq!(read(dst.clone(), absent).await, None);

    // The stored documents come back byte for byte.
    for (id, doc) in ids.iter().zip(&documents) {
        let back = document(&dst, id).await.unwrap();
        assert!(back == *doc, "{id}: {}", String::from_utf8_lossy(&back));
    }

    let seen = python(COMPARE, &[&pair.src.uri, &pair.dst.uri, &ids.join(",")]).await;
    assert_eq!(seen["diffs"], serde_json::json!([]), "{seen:#}");
    let counts = &seen["counts"];
    assert_eq!(counts["traces"], 5);
    assert_eq!(counts["spans"], 2 * 4 + 1 + 1 + 4);
    assert_eq!(counts["assessments"], 6);
    assert_eq!(counts["invalid"], 1, "the overridden feedback");

    // Sending an assessment again is settled by looking it up (the server refuses the id).
    dst.create_assessment(t1.trace_id.as_str(), &t1.assessments[0])
        .await
        .unwrap();
    // Absent traces and data.
    let nothing = "tr-00000000000000000000000000000000";
    assert_eq!(dst.get_trace_info(nothing).await.unwrap(), None);
    assert!(
        dst.download_trace_data(nothing, None)
            .await
            .unwrap()
            .is_none()
    );

    // Links to runs and prompts, found by the server's filters.
    let run = dst
        .create_run(&CreateRun {
            experiment_id: dst_exp.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
    dst.link_traces_to_run(&ids[..1], &run.info.run_id)
        .await
        .unwrap();
    dst.link_prompts_to_trace(&ids[0], &[("greet".into(), "1".into())])
        .await
        .unwrap();
    for filter in [
        format!("run_id = '{}'", run.info.run_id),
        "prompt = 'greet/1'".to_string(),
    ] {
        let hits: Vec<TraceInfo> = dst
            .search_traces(std::slice::from_ref(&dst_exp), Some(&filter))
            .try_collect()
            .await
            .unwrap();
        let hits: Vec<&str> = hits.iter().map(|t| t.trace_id.as_str()).collect();
        assert_eq!(hits, [ids[0].as_str()], "{filter}");
    }
}
