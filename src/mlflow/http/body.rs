//! Reading answer bodies: whole JSON answers within a size limit, each chunk within the answer
//! timeout; a body cut or stalled midway is a [`Cut`] saying where.

use futures_util::StreamExt;
use reqwest::Response;
use serde::de::DeserializeOwned;

use super::Client;
use super::errors::classify;
use crate::error::{Error, Result, TransportKind};
use crate::mlflow::json;

/// An answer body that did not arrive whole.
pub(crate) enum BodyFail {
    /// The connection broke or stalled in the middle of it.
    Cut(Cut),
    /// Anything else (an answer too large).
    Other(Error),
}

/// Where and how an answer was cut.
#[derive(Debug, Clone)]
pub(crate) struct Cut {
    /// Bytes received before the cut.
    pub(crate) after: u64,
    pub(crate) kind: TransportKind,
    pub(crate) cause: String,
}

impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the answer was cut after {} bytes: {}",
            self.after, self.cause
        )
    }
}

impl Client {
    /// Decodes a JSON answer.
    pub(crate) fn parse<T: DeserializeOwned>(&self, bytes: &[u8], call: &str) -> Result<T> {
        if looks_like_html(bytes) {
            return Err(self.protocol(
                call,
                "the server answered an HTML page, not the MLflow REST API: is the URI the tracking server's base address?".into(),
            ));
        }
        let body: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            bytes
        };
        json::parse(body)
            .map_err(|e| self.protocol(call, format!("malformed JSON ({e}): {}", excerpt(bytes))))
    }

    /// Reads a whole answer body of at most `limit` bytes; each chunk must come within the
    /// answer timeout.
    pub(super) async fn read_body(
        &self,
        resp: Response,
        limit: usize,
        call: &str,
    ) -> std::result::Result<Vec<u8>, BodyFail> {
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        loop {
            let chunk = match tokio::time::timeout(self.inner.answer_timeout, stream.next()).await {
                Ok(None) => return Ok(out),
                Ok(Some(Ok(chunk))) => chunk,
                Ok(Some(Err(e))) => {
                    let (kind, cause) = classify(&e);
                    return Err(BodyFail::Cut(Cut {
                        after: out.len() as u64,
                        kind,
                        cause,
                    }));
                }
                Err(_) => {
                    return Err(BodyFail::Cut(Cut {
                        after: out.len() as u64,
                        kind: TransportKind::Timeout,
                        cause: format!(
                            "it stalled: no byte within {} s",
                            self.inner.answer_timeout.as_secs_f64()
                        ),
                    }));
                }
            };
            if out.len() + chunk.len() > limit {
                return Err(BodyFail::Other(
                    self.protocol(call, format!("answer larger than {limit} bytes")),
                ));
            }
            out.extend_from_slice(&chunk);
        }
    }
}

pub(super) fn looks_like_html(body: &[u8]) -> bool {
    let start: Vec<u8> = body
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(15)
        .map(u8::to_ascii_lowercase)
        .collect();
    start.starts_with(b"<!doctype") || start.starts_with(b"<html") || start.starts_with(b"<head")
}

/// A short, single-line excerpt of a body for error messages.
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(300)]);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > 300 {
        format!("{one_line}…")
    } else if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}
