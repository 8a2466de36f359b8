//! The library's one error type.
//!
//! Every variant names what was being done and to which object, and carries the cause. Messages are
//! lowercase, one line, and never contain a credential: server addresses are shown without user
//! information, and HTTP client errors are stripped of their URL before they are wrapped.

use std::fmt;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// An error from mlflow-archive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The tracking server answered with an error (an MLflow `{error_code, message}` body or an
    /// HTTP error status).
    #[error("{0}")]
    Api(Box<ApiError>),

    /// The server could not be reached, did not answer in time, or the connection broke.
    #[error("{call}: {}{server}: {cause}{hint}", transport_verb(.kind), hint = transport_hint(.kind))]
    Transport {
        /// The request, e.g. `GET experiments/get (experiment '3')`.
        call: String,
        /// The server's address, without credentials.
        server: String,
        /// What went wrong on the connection.
        kind: TransportKind,
        /// The underlying cause, already free of URLs.
        cause: String,
    },

    /// The server answered something that is not the MLflow API (HTML, malformed JSON, a wrong
    /// size).
    #[error("{call}: unexpected answer from {server}: {detail}")]
    Protocol {
        /// The request.
        call: String,
        /// The server's address, without credentials.
        server: String,
        /// What was wrong with the answer.
        detail: String,
    },

    /// An artifact store the client reads or writes itself (S3, Azure Blob, GCS, a local path)
    /// refused a request, or could not be reached after the retries.
    #[error("{call}: {cause}")]
    Store {
        /// What was being done, with the object's location and the store.
        call: String,
        /// How it failed.
        failure: StoreFailure,
        /// The store's own words, free of URLs' queries and credentials.
        cause: String,
    },

    /// A create request may or may not have taken effect, and reconciling by lookup did not settle it.
    #[error(
        "{call}: the outcome on {server} is unknown ({cause}): the request may have taken effect; look for the object before retrying"
    )]
    Ambiguous {
        /// The request.
        call: String,
        /// The server's address, without credentials.
        server: String,
        /// The failure that made the outcome unknown.
        cause: String,
    },

    /// An archive is not valid: it breaks a rule of spec/format.md, is truncated or corrupt.
    #[error("{}", format_error(.offset, .member, .object, .detail))]
    Format {
        /// The offset in the tar stream (the decompressed archive) where the problem was found.
        offset: Option<u64>,
        /// The member being read, if any.
        member: Option<String>,
        /// The object (unit) the member belongs to, e.g. `run 0a1b…`.
        object: Option<String>,
        /// What is wrong, with the spec section.
        detail: String,
    },

    /// An error while handling an object: names the object (e.g. the run being imported).
    #[error("{object}: {source}")]
    About {
        /// The object, e.g. `run 0a1b… "train" (destination run 9f8e…)`.
        object: String,
        /// What went wrong.
        #[source]
        source: Box<Error>,
    },

    /// The settings are unusable: a tracking URI, credentials, certificates, an option or a
    /// name the caller gave (a bad setting; fix it and try again).
    #[error("{0}")]
    Config(String),

    /// The library was used in a way it does not allow: a writer used after it finished or
    /// failed, a record where the format's order forbids it (a bug in the calling code).
    #[error("{0}")]
    Usage(String),

    /// Input that is not what it must be, outside the archive format's own checks (those are
    /// [`Error::Format`]): a tree, zip or JSON file of the Python tool, an answer field, an input
    /// that changed while it was read.
    #[error("invalid input: {0}")]
    Input(String),

    /// A fault inside this crate: a channel between its own tasks closed unexpectedly. (A task or
    /// thread of its own that panicked is not turned into this: the panic is raised again in the
    /// caller.)
    #[error("internal error: {0} (a bug in mlflow-archive: please report it)")]
    Internal(String),

    /// Local I/O failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// JSON that this crate wrote or read locally could not be (de)serialised.
    #[error("{what}: {source}")]
    Json {
        /// What was being encoded or decoded.
        what: String,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

/// How a request to an artifact store failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreFailure {
    /// The object is not there.
    NotFound,
    /// The credentials were refused or are missing.
    Denied,
    /// Anything else (a bad key, a size that differs, an operation the store lacks).
    Other,
}

/// How a connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection could be opened: nothing was sent.
    Connect,
    /// The server did not answer in time (no answer began, or an answer stalled).
    Timeout,
    /// The connection broke while the request or the answer was under way (an answer cut in
    /// its middle too).
    Broken,
    /// TLS could not be set up.
    Tls,
}

/// `text` as it may reach a terminal or a log: control characters (ESC, NUL, newlines, DEL, C1)
/// and the characters that reorder text (bidirectional overrides) escaped as `\u{1b}`. Member
/// names, paths and model names come from the input, and an archive may hold any of them.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let hostile = |c: char| {
        c.is_control()
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(hostile) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hostile(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

fn format_error(
    offset: &Option<u64>,
    member: &Option<String>,
    object: &Option<String>,
    detail: &str,
) -> String {
    let mut s = String::from("invalid archive");
    if let Some(o) = offset {
        s.push_str(&format!(" at byte {o} of the tar stream"));
    }
    let (member, object) = (
        member.as_deref().map(printable),
        object.as_deref().map(printable),
    );
    match (member, object) {
        (Some(m), Some(o)) => s.push_str(&format!(" (member {m}, {o})")),
        (Some(m), None) => s.push_str(&format!(" (member {m})")),
        (None, Some(o)) => s.push_str(&format!(" ({o})")),
        (None, None) => {}
    }
    s.push_str(": ");
    s.push_str(&printable(detail));
    s
}

fn transport_verb(kind: &TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect | TransportKind::Tls => "cannot reach ",
        TransportKind::Timeout => "no answer from ",
        TransportKind::Broken => "connection lost to ",
    }
}

fn transport_hint(kind: &TransportKind) -> &'static str {
    match kind {
        TransportKind::Connect => " (is the server running, and is the tracking URI right?)",
        TransportKind::Timeout => {
            " (is the server overloaded? MLFLOW_HTTP_REQUEST_TIMEOUT sets how long to wait, in seconds)"
        }
        TransportKind::Tls => {
            " (check MLFLOW_TRACKING_SERVER_CERT_PATH, or set MLFLOW_TRACKING_INSECURE_TLS=true for a self-signed certificate)"
        }
        _ => "",
    }
}

/// An error answer from the tracking server.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The request, e.g. `GET experiments/get (experiment '3')`.
    pub call: String,
    /// The server's address, without credentials.
    pub server: String,
    /// The HTTP status.
    pub status: u16,
    /// MLflow's `error_code` (`RESOURCE_DOES_NOT_EXIST`, ...), or empty when the body had none.
    pub error_code: String,
    /// MLflow's `message`, or a short excerpt of a non-MLflow body.
    pub message: String,
}

impl ApiError {
    /// True when the server says the object does not exist.
    /// Only MLflow's own answer counts: a 404 without an MLflow error body (an HTML page, a
    /// proxy's text) says the address is not the MLflow API, not that the object is absent.
    pub fn is_not_found(&self) -> bool {
        self.error_code == "RESOURCE_DOES_NOT_EXIST"
    }

    /// True when the server says the object exists already.
    pub fn is_already_exists(&self) -> bool {
        matches!(
            self.error_code.as_str(),
            "RESOURCE_ALREADY_EXISTS" | "ALREADY_EXISTS"
        )
    }

    /// True when the server says it does not offer this feature at all, whatever the object:
    /// `FEATURE_DISABLED` (MLflow's answer, as HTTP 500, for what its file store lacks, e.g.
    /// evaluation datasets), `NOT_IMPLEMENTED`, or `ENDPOINT_NOT_FOUND` (Databricks' answer for an
    /// unknown endpoint). Trying again does not help.
    pub fn is_unsupported(&self) -> bool {
        matches!(
            self.error_code.as_str(),
            "FEATURE_DISABLED" | "NOT_IMPLEMENTED" | "ENDPOINT_NOT_FOUND"
        )
    }

    fn hint(&self) -> &'static str {
        match self.status {
            401 => {
                " (wrong or missing credentials: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN)"
            }
            403 if self.error_code.is_empty() || self.error_code == "PERMISSION_DENIED" => {
                " (permission denied: the user lacks rights on this object, or the server refuses this Host header; see --allowed-hosts)"
            }
            _ => "",
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}: ", self.call, self.server)?;
        if self.error_code.is_empty() {
            write!(f, "HTTP {}", self.status)?;
        } else {
            write!(f, "{} (HTTP {})", self.error_code, self.status)?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        f.write_str(self.hint())
    }
}

impl Error {
    /// The server's error answer, when this is one.
    pub fn api(&self) -> Option<&ApiError> {
        match self.root() {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// True when the server says the object does not exist.
    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
            || matches!(
                self.root(),
                Error::Store {
                    failure: StoreFailure::NotFound,
                    ..
                }
            )
    }

    /// True when the server says the object exists already.
    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    /// True when the server says it does not offer this feature (see
    /// [`ApiError::is_unsupported`]).
    pub fn is_unsupported(&self) -> bool {
        self.api().is_some_and(ApiError::is_unsupported)
    }

    /// True when the server has no such endpoint at all (an older MLflow, or a store without
    /// the feature): [`is_unsupported`](Self::is_unsupported), or a bare 404, 405 or 501 that is
    /// not an MLflow error (no such route).
    pub fn is_endpoint_absent(&self) -> bool {
        self.is_unsupported()
            || self
                .api()
                .is_some_and(|a| a.error_code.is_empty() && matches!(a.status, 404 | 405 | 501))
    }

    /// True when trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self.root() {
            Error::Api(e) => {
                crate::mlflow::retry::is_transient_status(e.status) && !e.is_unsupported()
            }
            Error::Transport { .. } => true,
            _ => false,
        }
    }

    /// This error, said to concern `object` (kept as is when it already names one).
    pub fn about(self, object: String) -> Self {
        match self {
            Error::About { .. } => self,
            other => Error::About {
                object,
                source: Box::new(other),
            },
        }
    }

    /// This error as part of handling `outer`: an error that already names an object (an
    /// artifact, say) names both, outer first.
    pub fn within(self, outer: String) -> Self {
        match self {
            Error::About { object, source } => Error::About {
                object: format!("{outer}, {object}"),
                source,
            },
            other => Error::About {
                object: outer,
                source: Box::new(other),
            },
        }
    }

    /// The innermost error (under any [`Error::About`]).
    pub fn root(&self) -> &Error {
        match self {
            Error::About { source, .. } => source.root(),
            other => other,
        }
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
impl Error {
    /// An API refusal with `status`, `error_code` and `message`, for unit tests.
    pub(crate) fn api_refusal(status: u16, error_code: &str, message: &str) -> Error {
        Error::Api(Box::new(ApiError {
            call: "c".into(),
            server: "s".into(),
            status,
            error_code: error_code.into(),
            message: message.into(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn names_from_the_input_never_reach_a_terminal_raw() {
        let e = Error::Format {
            offset: Some(3),
            member: Some("runs/x/artifacts/\u{1b}[31mred\u{0}".into()),
            object: Some("run \u{202e}evil".into()),
            detail: "bad name \u{7}".into(),
        };
        let text = e.to_string();
        assert!(
            !text.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{text:?}"
        );
        assert!(text.contains("\\u{1b}[31mred\\u{0}"), "{text}");
    }
}
