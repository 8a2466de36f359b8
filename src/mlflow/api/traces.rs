//! Traces (MLflow 3): their info (`TraceInfoV3`, with tags, metadata and assessments), their
//! span data, and their links to runs and prompts.
//!
//! A trace is read as its info (from the search, which gives it whole) and the raw bytes of its
//! span document (`get-trace-artifact`, whatever the server keeps them in). It is written spans
//! first ([`Client::log_spans`], OTLP, when the document can travel that way), then its info
//! ([`Client::start_trace`], an upsert), then its assessments one by one in
//! [`assessment_order`]. The measured behaviour behind each call is in research-traces.md.

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt, future};
use reqwest::Method;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::mlflow::api::artifacts::ArtifactDownload;
use crate::mlflow::api::logged_models::path_segment;
use crate::mlflow::http::Body;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::types::TraceInfo;
use crate::mlflow::{Client, otlp, paginate};

/// The largest OTLP request body (JSON, before gzip) [`Client::log_spans`] sends; a single span
/// larger than this travels alone.
pub const MAX_OTLP_REQUEST: usize = 4 << 20;

/// The tag the server derives for every trace (where its artifacts are); sending it fails
/// StartTraceV3.
pub const ARTIFACT_LOCATION_TAG: &str = "mlflow.artifactLocation";

/// The server's limit of trace ids in one link-to-run call.
const MAX_TRACE_LINKS: usize = 100;

/// The header naming the experiment of OTLP spans.
const EXPERIMENT_HEADER: &str = "x-mlflow-experiment-id";

#[derive(Deserialize, Default)]
struct SearchAnswer {
    #[serde(default)]
    traces: Vec<TraceInfo>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct TraceAnswer {
    trace: TraceBody,
}

#[derive(Deserialize)]
struct TraceBody {
    trace_info: TraceInfo,
}

impl Client {
    /// Every trace of some experiments (`POST /api/3.0/mlflow/traces/search`, 500 a page,
    /// oldest first), with an optional filter (`trace.status = "OK"`, `run_id = "…"`,
    /// `prompt = "name/1"`, ...); pages are fetched as the stream is consumed. Each item is the
    /// whole info, assessments included. Paging is by offset, so a trace may come twice while
    /// traces are added: each id is given once (the ids seen are kept, some 100 bytes a trace).
    pub fn search_traces(
        &self,
        experiment_ids: &[String],
        filter: Option<&str>,
    ) -> impl Stream<Item = Result<TraceInfo>> + Send + 'static {
        let client = self.clone();
        let ids = experiment_ids.to_vec();
        let filter = filter.map(str::to_string);
        let pages = paginate::items(move |token: Option<String>| {
            let client = client.clone();
            let mut body = json!({
                "locations": ids
                    .iter()
                    .map(|id| json!({
                        "type": "MLFLOW_EXPERIMENT",
                        "mlflow_experiment": { "experiment_id": id },
                    }))
                    .collect::<Vec<_>>(),
                "max_results": client.page(500),
                "order_by": ["timestamp_ms ASC"],
            });
            if let Some(f) = &filter {
                body["filter"] = f.as_str().into();
            }
            if let Some(t) = token {
                body["page_token"] = t.into();
            }
            let call = format!("POST traces/search (experiments {ids:?})");
            let empty = ids.is_empty();
            let first = body.get("page_token").is_none();
            async move {
                if empty {
                    return Ok((Vec::new(), None));
                }
                let answer = client
                    .call_url::<_, SearchAnswer>(
                        Method::POST,
                        client.url("api/3.0/mlflow/traces/search"),
                        &body,
                        &call,
                        Safe,
                    )
                    .await;
                match answer {
                    Ok(a) => Ok((a.traces, a.next_page_token)),
                    // A server without MLflow 3's trace search (older, or a store without
                    // traces) holds none of them.
                    Err(e) if first && e.is_endpoint_absent() => Ok((Vec::new(), None)),
                    Err(e) => Err(e),
                }
            }
        });
        let mut seen = std::collections::HashSet::new();
        pages.try_filter(move |t| future::ready(seen.insert(t.trace_id.clone())))
    }

    /// One trace's info (`GET /api/3.0/mlflow/traces/{id}`); `None` when the server has no such
    /// trace.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn get_trace_info(&self, trace_id: &str) -> Result<Option<TraceInfo>> {
        let call = format!("GET traces (trace {trace_id})");
        let url = self.url(&format!("api/3.0/mlflow/traces/{}", path_segment(trace_id)));
        match self.get_url::<TraceAnswer>(url, &call).await {
            Ok(a) => Ok(Some(a.trace.trace_info)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Starts downloading a trace's stored data: its span document (`path` `None`: the JSON
    /// `{"spans":[...]}` of `Span.to_dict`, the exact bytes of `traces.json` when the server
    /// keeps it as an artifact) or one attachment (`path` its uuid), through
    /// `GET /ajax-api/3.0/mlflow/get-trace-artifact`. `None` when the server says it has no such
    /// data (404 `NOT_FOUND`) or no such trace (404 `RESOURCE_DOES_NOT_EXIST`). The size is the
    /// answer's `Content-Length`, and the body is checked against it as it is read.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API; [`Error::Protocol`] when the
    /// answer announces no size.
    pub async fn download_trace_data(
        &self,
        trace_id: &str,
        path: Option<&str>,
    ) -> Result<Option<ArtifactDownload>> {
        let mut url = self.url("ajax-api/3.0/mlflow/get-trace-artifact");
        url.query_pairs_mut().append_pair("request_id", trace_id);
        if let Some(p) = path {
            url.query_pairs_mut().append_pair("path", p);
        }
        let what = match path {
            None => format!("the span data of trace {trace_id}"),
            Some(p) => format!("attachment {p} of trace {trace_id}"),
        };
        let call = format!("GET get-trace-artifact ({what})");
        match self
            .download_url(url, call.clone(), format!("download of {what}"), None)
            .await
        {
            Ok(d) if d.size.is_some() => Ok(Some(d)),
            Ok(_) => Err(self.protocol(
                &call,
                format!("the answer announces no size (no Content-Length) for {what}"),
            )),
            Err(e)
                if e.api().is_some_and(|a| {
                    a.status == 404
                        && matches!(
                            a.error_code.as_str(),
                            "NOT_FOUND" | "RESOURCE_DOES_NOT_EXIST"
                        )
                }) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    }

    /// Creates or updates a trace's info (StartTraceV3, `POST /api/3.0/mlflow/traces`) with
    /// `info` as given: its id, experiment, times, state, previews, metadata, tags, and any
    /// assessments in it. The server adds `mlflow.artifactLocation` and
    /// `mlflow.trace.infoFinalized`; tags and metadata are merged with what the trace already
    /// holds, never deleted. A trace of that id in another experiment is **moved** by the
    /// server: look it up first ([`Client::get_trace_info`]). Returns the server's answer (its
    /// tags hold `mlflow.artifactLocation`). Repeating it is harmless (an upsert).
    ///
    /// Assessments given here are kept but all come back valid: create them with
    /// [`Client::create_assessment`] instead, in [`assessment_order`].
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (no
    /// such experiment), a failed connection, an answer that is not the MLflow API;
    /// [`Error::Usage`] when `info` carries the tag `mlflow.artifactLocation`.
    pub async fn start_trace(&self, info: &TraceInfo) -> Result<TraceInfo> {
        let call = format!(
            "POST traces (trace {} in experiment id {:?})",
            info.trace_id, info.experiment_id
        );
        if info.tags.contains_key(ARTIFACT_LOCATION_TAG) {
            return Err(Error::Usage(format!(
                "{call}: the tag {ARTIFACT_LOCATION_TAG} is the server's own and sending it fails the call: remove it"
            )));
        }
        let body = json!({ "trace": { "trace_info": info } });
        let a: TraceAnswer = self
            .call_url(
                Method::POST,
                self.url("api/3.0/mlflow/traces"),
                &body,
                &call,
                Safe,
            )
            .await?;
        Ok(a.trace.trace_info)
    }

    /// Writes a trace's spans through OTLP (`POST /v1/traces`, JSON, gzip, in requests of at
    /// most [`MAX_OTLP_REQUEST`] bytes before compression), converting MLflow's stored span
    /// document (`{"spans":[...]}` as [`Client::download_trace_data`] gives it) so that the
    /// server stores the same spans again. Spans are upserted by id, so repeating it is
    /// harmless. Send the spans before [`Client::start_trace`]: OTLP ingest fills in a trace's
    /// times and state only until the info is written.
    ///
    /// Returns `Ok(Err(reason))`, having sent nothing, when the document cannot travel by OTLP
    /// and come back the same: the trace id is not `"tr-"` and the spans' own trace id in hex,
    /// an attribute holds what OTLP cannot type (an integer beyond 64 bits, `NaN`/`Infinity`) or
    /// is not written as the server would write it again, a span is of the v2 schema (a
    /// `"context"` field) or unfinished, or the document holds no spans. The caller then uploads
    /// the document's bytes as the artifact `traces.json` under the trace's
    /// `mlflow.artifactLocation` instead (after [`Client::start_trace`] without a
    /// `mlflow.trace.spansLocation` tag), as MLflow's own client does.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection; [`Error::Input`] when `experiment_id` cannot be sent in a header. When a
    /// request of several fails, the ones before it are stored.
    pub async fn log_spans(
        &self,
        experiment_id: &str,
        trace_id: &str,
        spans_document: &[u8],
    ) -> Result<std::result::Result<(), String>> {
        let bodies = match otlp::requests(trace_id, spans_document, MAX_OTLP_REQUEST) {
            Ok(b) => b,
            Err(reason) => return Ok(Err(reason)),
        };
        let experiment = HeaderValue::from_str(experiment_id).map_err(|_| {
            Error::Input(format!(
                "experiment id {experiment_id:?} cannot be sent in an HTTP header"
            ))
        })?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        headers.insert(HeaderName::from_static(EXPERIMENT_HEADER), experiment);
        let n = bodies.len();
        for (i, body) in bodies.into_iter().enumerate() {
            let gz = Bytes::from(gzip(&body)?);
            drop(body);
            let call = format!(
                "POST v1/traces (spans of trace {trace_id} into experiment id {experiment_id:?}, request {} of {n}, {} bytes)",
                i + 1,
                gz.len()
            );
            let resp = self
                .send(
                    Method::POST,
                    self.url("v1/traces"),
                    Body::Typed(&gz, &headers),
                    &call,
                    Safe,
                )
                .await?;
            // The answer is an empty protobuf message; reading it lets the connection be reused.
            let _ = resp.bytes().await;
        }
        Ok(Ok(()))
    }

    /// Creates one assessment on a trace (`POST /api/3.0/mlflow/traces/{id}/assessments`) as
    /// given: its id, times, source, span, value or error, rationale, metadata and `overrides`
    /// are kept; the server sets its `trace_id` from the path and its `valid` to true (and
    /// marks the assessment it overrides invalid). Not safe to repeat: when the answer is lost,
    /// the trace is looked up for the assessment's id before anything is sent again; an
    /// assessment without an id cannot be looked up.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (the
    /// assessment it overrides does not exist), a failed connection, an answer that is not the
    /// MLflow API. A lost answer is settled by looking the object up; when that cannot settle it,
    /// the error is [`Error::Ambiguous`].
    pub async fn create_assessment(&self, trace_id: &str, assessment: &Value) -> Result<()> {
        let id = assessment.get("assessment_id").and_then(Value::as_str);
        let call = format!(
            "POST traces/assessments (assessment {} on trace {trace_id})",
            id.unwrap_or("without an id")
        );
        let url = self.url(&format!(
            "api/3.0/mlflow/traces/{}/assessments",
            path_segment(trace_id)
        ));
        let body = json!({ "assessment": assessment });
        let (call, url, body) = (&call, &url, &body);
        self.create_reconciled(
            call,
            move || async move {
                self.call_unit_url(Method::POST, url.clone(), body, call, Unsafe)
                    .await
            },
            id.map(|id| {
                move || async move {
                    let info = self.get_trace_info(trace_id).await?;
                    let found = info.is_some_and(|t| {
                        t.assessments
                            .iter()
                            .any(|a| a.get("assessment_id").and_then(Value::as_str) == Some(id))
                    });
                    Ok(found.then_some(()))
                }
            }),
        )
        .await
    }

    /// Links prompt versions (`(name, version)`) to a trace
    /// (`POST /api/2.0/mlflow/traces/link-prompts`): the association that the filter
    /// `prompt = "name/version"` finds. Repeating it is harmless.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal (no
    /// such trace), a failed connection, an answer that is not the MLflow API.
    pub async fn link_prompts_to_trace(
        &self,
        trace_id: &str,
        versions: &[(String, String)],
    ) -> Result<()> {
        if versions.is_empty() {
            return Ok(());
        }
        let call = format!(
            "POST traces/link-prompts (trace {trace_id}, {} prompt versions)",
            versions.len()
        );
        let prompt_versions: Vec<Value> = versions
            .iter()
            .map(|(name, version)| json!({ "name": name, "version": version }))
            .collect();
        self.call_unit(
            Method::POST,
            "traces/link-prompts",
            &json!({ "trace_id": trace_id, "prompt_versions": prompt_versions }),
            &call,
            Safe,
        )
        .await
    }

    /// Links traces to a run (`POST /api/2.0/mlflow/traces/link-to-run`, at most 100 ids a
    /// call): the association that the filter `run_id = "…"` finds besides the metadata
    /// `mlflow.sourceRun`. Repeating it is harmless.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API. When a call of several fails, the
    /// ones before it are done.
    pub async fn link_traces_to_run(&self, trace_ids: &[String], run_id: &str) -> Result<()> {
        for chunk in trace_ids.chunks(MAX_TRACE_LINKS) {
            let call = format!(
                "POST traces/link-to-run ({} traces to run {run_id})",
                chunk.len()
            );
            self.call_unit(
                Method::POST,
                "traces/link-to-run",
                &json!({ "trace_ids": chunk, "run_id": run_id }),
                &call,
                Safe,
            )
            .await?;
        }
        Ok(())
    }
}

/// The assessments in an order the server can create them in: each after the one it
/// `overrides` (when that one is in the list), otherwise in the given order. An override cycle
/// (which no server holds) is broken where it is found. Pure.
pub fn assessment_order(assessments: &[Value]) -> Vec<usize> {
    fn id_of(a: &Value) -> Option<&str> {
        a.get("assessment_id").and_then(Value::as_str)
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, a) in assessments.iter().enumerate() {
        if let Some(id) = id_of(a) {
            index.entry(id).or_insert(i);
        }
    }
    let target = |i: usize| {
        assessments[i]
            .get("overrides")
            .and_then(Value::as_str)
            .and_then(|id| index.get(id).copied())
            .filter(|t| *t != i)
    };
    // 0: not yet placed, 1: on the current chain, 2: placed.
    let mut state = vec![0u8; assessments.len()];
    let mut order = Vec::with_capacity(assessments.len());
    for start in 0..assessments.len() {
        let mut chain = Vec::new();
        let mut at = Some(start);
        while let Some(i) = at {
            if state[i] != 0 {
                break;
            }
            state[i] = 1;
            chain.push(i);
            at = target(i);
        }
        for i in chain.into_iter().rev() {
            state[i] = 2;
            order.push(i);
        }
    }
    order
}

fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 4),
        flate2::Compression::fast(),
    );
    enc.write_all(data)
        .and_then(|()| enc.finish())
        .map_err(|e| Error::Io {
            what: "compressing an OTLP request".into(),
            source: e,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str, overrides: Option<&str>) -> Value {
        match overrides {
            Some(o) => json!({ "assessment_id": id, "overrides": o }),
            None => json!({ "assessment_id": id }),
        }
    }

    #[test]
    fn assessments_come_after_the_ones_they_override() {
        // Already in order: unchanged.
        assert_eq!(
            assessment_order(&[a("a", None), a("b", None), a("c", Some("a"))]),
            [0, 1, 2]
        );
        // An override before its target: the target moves ahead of it.
        assert_eq!(
            assessment_order(&[a("x", None), a("c", Some("a")), a("b", None), a("a", None)]),
            [0, 3, 1, 2]
        );
        // Chains: c overrides b overrides a, listed backwards.
        assert_eq!(
            assessment_order(&[a("c", Some("b")), a("b", Some("a")), a("a", None)]),
            [2, 1, 0]
        );
        // A target not in the list, no id, a self-override and a cycle: all kept, once each.
        let odd = [
            a("p", Some("gone")),
            json!({ "assessment_name": "no id" }),
            a("s", Some("s")),
            a("m", Some("n")),
            a("n", Some("m")),
        ];
        let order = assessment_order(&odd);
        assert_eq!(order[..3], [0, 1, 2]);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [0, 1, 2, 3, 4]);
        assert!(assessment_order(&[]).is_empty());
        // A long chain does not recurse.
        let n = 100_000;
        let chain: Vec<Value> = (0..n)
            .map(|i| a(&format!("a{i}"), Some(&format!("a{}", i + 1))))
            .collect();
        let order = assessment_order(&chain);
        assert_eq!(order.first(), Some(&(n - 1)));
        assert_eq!(order.last(), Some(&0));
    }

    #[tokio::test]
    async fn what_cannot_be_sent_is_refused_before_any_request() {
        // Nothing listens on the discard port: a request would fail with a connection error.
        let config = crate::mlflow::TrackingConfig::for_uri("http://127.0.0.1:9").unwrap();
        let c = crate::mlflow::ClientBuilder::new(config)
            .retry(crate::mlflow::RetryConfig {
                max_retries: 0,
                ..Default::default()
            })
            .build()
            .unwrap();
        let doc = br#"{"spans": [{"trace_id": "SewXk9Y8KoQNLf7C0NfA5g==", "span_id": "1pbkLC1E8T8=", "parent_span_id": null, "name": "big", "start_time_unix_nano": 1, "end_time_unix_nano": 2, "events": [], "status": {"code": "STATUS_CODE_OK", "message": ""}, "attributes": {"mlflow.traceRequestId": "\"tr-49ec1793d63c2a840d2dfec2d0d7c0e6\"", "big": "1180591620717411303424"}, "links": []}]}"#;
        let refused = c
            .log_spans("1", "tr-49ec1793d63c2a840d2dfec2d0d7c0e6", doc)
            .await
            .unwrap()
            .unwrap_err();
        assert!(refused.contains("64 bits"), "{refused}");
        // The same document with a small integer is sent (and fails to connect).
        let small = String::from_utf8_lossy(doc).replace("1180591620717411303424", "7");
        let e = c
            .log_spans("1", "tr-49ec1793d63c2a840d2dfec2d0d7c0e6", small.as_bytes())
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Transport { .. }), "{e}");
        let mut info = TraceInfo {
            trace_id: "tr-1".into(),
            ..Default::default()
        };
        info.tags
            .insert(ARTIFACT_LOCATION_TAG.into(), "mlflow-artifacts:/1/x".into());
        let e = c.start_trace(&info).await.unwrap_err();
        assert!(matches!(e, Error::Usage(_)), "{e}");
        assert!(e.to_string().contains("remove it"), "{e}");
    }

    #[test]
    fn trace_info_reads_and_writes_the_proto_json_shape() {
        let text = br#"{"trace_id":"tr-a7d1","trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"1"}},
            "request_time":"2026-12-01T06:02:27.111Z","execution_duration":"0.037s","state":"OK",
            "trace_metadata":{"mlflow.user":"root"},"tags":{"mlflow.traceName":"with_att"},
            "request_preview":"{}","assessments":[{"assessment_id":"a-1","create_time":"2026-12-01T06:02:30.376Z","feedback":{"value":0.8}}]}"#;
        let t: TraceInfo = crate::mlflow::json::parse(text).unwrap();
        assert_eq!(t.trace_id, "tr-a7d1");
        assert_eq!(t.experiment_id, "1");
        assert_eq!(t.request_time, Some(1_796_104_947_111));
        assert_eq!(t.execution_duration, Some(37));
        assert_eq!(t.state, "OK");
        assert_eq!(t.client_request_id, None);
        assert_eq!(t.request_preview.as_deref(), Some("{}"));
        assert_eq!(t.response_preview, None);
        assert_eq!(t.tags["mlflow.traceName"], "with_att");
        assert_eq!(t.assessments[0]["create_time"], "2026-12-01T06:02:30.376Z");
        let back = serde_json::to_value(&t).unwrap();
        assert_eq!(
            back,
            json!({"trace_id":"tr-a7d1","trace_location":{"type":"MLFLOW_EXPERIMENT","mlflow_experiment":{"experiment_id":"1"}},
                "request_time":"2026-12-01T06:02:27.111Z","execution_duration":"0.037s","state":"OK",
                "trace_metadata":{"mlflow.user":"root"},"tags":{"mlflow.traceName":"with_att"},"request_preview":"{}",
                "assessments":[{"assessment_id":"a-1","create_time":"2026-12-01T06:02:30.376Z","feedback":{"value":0.8}}]})
        );
        let bare: TraceInfo = crate::mlflow::json::parse(br#"{"trace_id":"t"}"#).unwrap();
        assert_eq!(bare.state, "STATE_UNSPECIFIED");
        assert_eq!((bare.request_time, bare.execution_duration), (None, None));
        let e = crate::mlflow::json::parse::<TraceInfo>(
            br#"{"trace_id":"t","request_time":"yesterday"}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("trace t: request_time \"yesterday\""), "{e}");
    }
}
