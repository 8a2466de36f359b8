//! The typed errors of answers (MLflow's `{error_code, message}` or a bare status) and of
//! connections (sorted by kind, with no URL in their cause).

use reqwest::{Response, StatusCode};

use super::Client;
use super::body::{BodyFail, Cut, excerpt, looks_like_html};
use crate::error::{ApiError, Error, TransportKind};

impl Client {
    /// The cause of a try that got no answer within the answer timeout.
    pub(crate) fn no_answer(&self) -> String {
        format!(
            "no answer within {} s",
            self.inner.answer_timeout.as_secs_f64()
        )
    }

    pub(crate) fn transport_error(&self, call: &str, kind: TransportKind, cause: String) -> Error {
        Error::Transport {
            call: call.to_string(),
            server: self.inner.server.clone(),
            kind,
            cause,
        }
    }

    pub(crate) fn protocol(&self, call: &str, detail: String) -> Error {
        Error::Protocol {
            call: call.to_string(),
            server: self.inner.server.clone(),
            detail,
        }
    }

    pub(crate) fn transport(&self, call: &str, e: &reqwest::Error) -> Error {
        let (kind, cause) = classify(e);
        self.transport_error(call, kind, cause)
    }

    /// The typed error of an error answer; `Err` when its body was cut or stalled.
    pub(super) async fn api_error(
        &self,
        resp: Response,
        call: &str,
    ) -> std::result::Result<Error, Cut> {
        let status = resp.status();
        let bytes = match self.read_body(resp, 64 << 10, call).await {
            Ok(bytes) => bytes,
            Err(BodyFail::Cut(cut)) => return Err(cut),
            // Longer than any error body: what was read is not kept; the status says enough.
            Err(BodyFail::Other(_)) => Vec::new(),
        };
        Ok(Error::Api(Box::new(api_error_from(
            call,
            &self.inner.server,
            status,
            &bytes,
        ))))
    }
}

/// Builds the typed error for an error answer.
pub(crate) fn api_error_from(
    call: &str,
    server: &str,
    status: StatusCode,
    body: &[u8],
) -> ApiError {
    // MLflow's `{error_code, message}`; Databricks also answers a numeric `error_code`
    // (`{"error_code": 403, "message": "Invalid access token."}`), and OAuth and older APIs
    // `{"error": ..., "error_description": ...}`.
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        error_code: serde_json::Value,
        #[serde(default)]
        message: String,
        #[serde(default)]
        error: serde_json::Value,
        #[serde(default)]
        error_description: String,
    }
    let text = |v: serde_json::Value| match v {
        serde_json::Value::String(s) => s,
        serde_json::Value::Number(n) => n.to_string(),
        _ => String::new(),
    };
    let parsed = serde_json::from_slice::<Body>(body).ok().map(|b| {
        let code = text(b.error_code);
        let error = text(b.error);
        match (code.is_empty() && b.message.is_empty(), error.is_empty()) {
            (true, false) if b.error_description.is_empty() => (String::new(), error),
            (true, false) => (error, b.error_description),
            _ => (code, b.message),
        }
    });
    let (error_code, message) = match parsed {
        Some((c, m)) if !c.is_empty() || !m.is_empty() => (c, m),
        _ if looks_like_html(body) => (
            String::new(),
            if status == StatusCode::NOT_FOUND {
                "the server answered an HTML page: this address does not serve the MLflow REST API (is the URI the tracking server's base address?)".into()
            } else {
                "the server answered an HTML page, not the MLflow REST API".into()
            },
        ),
        _ => (String::new(), excerpt(body)),
    };
    ApiError {
        call: call.to_string(),
        server: server.to_string(),
        status: status.as_u16(),
        error_code,
        message,
    }
}

/// True when a failed request may have taken effect on the server.
pub(crate) fn outcome_unknown(e: &Error) -> bool {
    match e {
        Error::Ambiguous { .. } => true,
        Error::Transport { kind, .. } => {
            *kind != TransportKind::Connect && *kind != TransportKind::Tls
        }
        Error::Api(a) => matches!(a.status, 408 | 500 | 502 | 503 | 504) && !a.is_unsupported(),
        _ => false,
    }
}

/// Sorts a connection failure into a kind and a cause with no URL in it.
pub(crate) fn classify(e: &reqwest::Error) -> (TransportKind, String) {
    use std::error::Error as _;
    let mut parts = vec![e.to_string()];
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        src = s.source();
    }
    // reqwest's own message names the URL; ours names the server instead.
    let first = parts.remove(0);
    let first = match first.find(" for url (") {
        Some(i) => first[..i].to_string(),
        None => first,
    };
    parts.insert(0, first);
    let cause = parts.join(": ");
    let lower = cause.to_ascii_lowercase();
    let kind =
        if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
            TransportKind::Tls
        } else if e.is_connect() {
            TransportKind::Connect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Broken
        };
    (kind, cause)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_become_typed_errors() {
        let e = api_error_from(
            "GET experiments/get (experiment '9')",
            "http://h:1",
            StatusCode::NOT_FOUND,
            br#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"No Experiment with id=9 exists"}"#,
        );
        assert!(e.is_not_found());
        assert_eq!(
            e.to_string(),
            "GET experiments/get (experiment '9') on http://h:1: RESOURCE_DOES_NOT_EXIST (HTTP 404): No Experiment with id=9 exists"
        );
        let e = api_error_from(
            "GET x",
            "http://h",
            StatusCode::NOT_FOUND,
            b"<!DOCTYPE html><html>",
        );
        assert!(
            e.to_string().contains("does not serve the MLflow REST API"),
            "{e}"
        );
        let e = api_error_from(
            "GET x",
            "http://h",
            StatusCode::UNAUTHORIZED,
            b"You are not authenticated.",
        );
        assert!(e.to_string().contains("MLFLOW_TRACKING_USERNAME"), "{e}");
    }

    #[test]
    fn outcome_is_unknown_only_when_the_server_may_have_acted() {
        let t = |kind| Error::Transport {
            call: "c".into(),
            server: "s".into(),
            kind,
            cause: "x".into(),
        };
        assert!(!outcome_unknown(&t(TransportKind::Connect)));
        let api = |status, code: &str| {
            Error::Api(Box::new(ApiError {
                call: "c".into(),
                server: "s".into(),
                status,
                error_code: code.into(),
                message: String::new(),
            }))
        };
        assert!(outcome_unknown(&api(500, "INTERNAL_ERROR")));
        // What a file store answers for datasets: it did nothing, and never will.
        assert!(!outcome_unknown(&api(500, "FEATURE_DISABLED")));
        assert!(!api(500, "FEATURE_DISABLED").is_retryable());
        assert!(api(500, "FEATURE_DISABLED").is_unsupported());
        assert!(api(500, "").is_retryable());
        assert!(outcome_unknown(&t(TransportKind::Broken)));
        assert!(outcome_unknown(&t(TransportKind::Timeout)));
    }
}
