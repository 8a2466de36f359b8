//! Sending a request: credentials, retries of transient failures as the request's idempotency
//! allows, and creates reconciled by lookup when their outcome is unknown.

use std::sync::atomic::Ordering;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RANGE, RETRY_AFTER};
use reqwest::{Method, Response};
use url::Url;

use super::body::BodyFail;
use super::errors::{api_error_from, classify, outcome_unknown};
use super::limit::{MAX_SAMPLED_BODY, Outcome};
use super::trace::{trace_request, tracing_retry};
use super::{Answer, Body, Client, Credentials, MAX_JSON_ANSWER};
use crate::error::{Error, Result, TransportKind};
use crate::mlflow::retry::{
    Backoff, Idempotency, RetryConfig, is_transient_status, parse_retry_after,
};

/// The header that names the MLflow workspace of a request (MLflow 3.17, `--enable-workspaces`).
pub const WORKSPACE_HEADER: &str = "X-MLFLOW-WORKSPACE";

/// Retries of a request that got no answer at all within the answer timeout: each costs a whole
/// timeout, and a server that holds connections without answering rarely recovers in minutes.
const NO_ANSWER_RETRIES: u32 = 2;

/// Retries of a refused connection before the server was ever reached.
const RETRIES_BEFORE_FIRST_CONTACT: u32 = 2;

/// The retries of one operation (a request, a body read that starts over, a resumed download):
/// one backoff for all its failures, and at most [`NO_ANSWER_RETRIES`] tries that got no answer.
#[derive(Debug)]
pub(crate) struct Retries {
    pub(crate) backoff: Backoff,
    timeouts: u32,
}

impl Retries {
    pub(crate) fn new(config: &RetryConfig) -> Self {
        Retries {
            backoff: Backoff::new(config),
            timeouts: 0,
        }
    }

    /// The wait before trying again after a failure of `kind`, or `None` when the retries are
    /// used up.
    pub(crate) fn after(
        &mut self,
        kind: TransportKind,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        if kind == TransportKind::Timeout {
            if self.timeouts >= NO_ANSWER_RETRIES {
                return None;
            }
            self.timeouts += 1;
        }
        self.backoff.next_delay(retry_after)
    }

    /// The final cause, saying how many tries it took.
    pub(crate) fn give_up(&self, cause: String) -> String {
        match self.backoff.attempts() {
            0 => cause,
            n => format!("{cause} ({} tries)", n + 1),
        }
    }
}

/// Whether an error answer refuses the credentials themselves (a token expired, revoked or
/// unknown: 401, or Databricks' 403 `{"error_code": 403, "message": "Invalid access token."}`),
/// rather than what they may do (a 403 `PERMISSION_DENIED` on one object).
fn token_refused(status: u16, err: &Error) -> bool {
    match (status, err) {
        (401, _) => true,
        (403, Error::Api(a)) => {
            a.error_code == "403"
                || a.error_code.is_empty()
                || a.message.to_ascii_lowercase().contains("token")
        }
        _ => false,
    }
}

/// Whether an error answer says the server ran out of database connections: MLflow's SQL store
/// answers `400 BAD_REQUEST` "QueuePool limit of size 5 overflow 10 reached, connection timed
/// out" when more requests wait for its connection pool than it holds (measured with 32 requests
/// in flight at a 2-worker server). The server did not take the request: it is an overload, to
/// be sent again later like a 503, not a refusal of the request.
fn pool_exhausted(err: &Error) -> bool {
    matches!(err, Error::Api(a) if a.message.contains("QueuePool limit"))
}

/// Reports the outcome of a request's slot, once.
fn take(slot: &mut Option<super::limit::Slot<'_>>, outcome: Outcome) {
    if let Some(s) = slot.take() {
        s.done(outcome);
    }
}

impl Client {
    /// Sends a request and reads its whole (JSON-sized) answer, retrying transient failures as
    /// `idem` allows: failures before the answer, error statuses, and answers cut or stalled in
    /// the middle of their body (a safe request is sent again; an unsafe one whose success
    /// status arrived is done, and its lost answer makes the outcome [`Error::Ambiguous`] when
    /// the caller needs it).
    pub(super) async fn fetch(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
        call: &str,
        idem: Idempotency,
        answer: Answer,
    ) -> Result<Vec<u8>> {
        let mut retries = Retries::new(&self.inner.retry);
        // A JSON API call: its round trip is the server's (unless its body takes long to send).
        let sampled = match &body {
            Body::None => true,
            Body::Json(b) => b.len() <= MAX_SAMPLED_BODY,
            Body::Bytes(_) | Body::Typed(..) => false,
        };
        loop {
            let resp = self
                .send_gated(
                    &mut retries,
                    method.clone(),
                    url.clone(),
                    &body,
                    None,
                    call,
                    idem,
                    sampled,
                )
                .await?;
            let cut = match self.read_body(resp, MAX_JSON_ANSWER, call).await {
                Ok(bytes) => return Ok(bytes),
                Err(BodyFail::Other(e)) => return Err(e),
                Err(BodyFail::Cut(cut)) => cut,
            };
            if answer == Answer::Ignored {
                // The status said the server did it; the rest of the answer is not needed.
                return Ok(Vec::new());
            }
            let cause = cut.to_string();
            if idem == Idempotency::Unsafe {
                return Err(Error::Ambiguous {
                    call: call.to_string(),
                    server: self.inner.server.clone(),
                    cause,
                });
            }
            if let Some(d) = retries.after(cut.kind, None) {
                tracing_retry(call, &cause, d);
                tokio::time::sleep(d).await;
                continue;
            }
            return Err(self.transport_error(call, cut.kind, retries.give_up(cause)));
        }
    }

    /// Sends a request, retrying transient failures as `idem` allows, and returns a successful
    /// answer (status 2xx) with its body unread.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Body<'_>,
        call: &str,
        idem: Idempotency,
    ) -> Result<Response> {
        let mut retries = Retries::new(&self.inner.retry);
        self.send_with(&mut retries, method, url, &body, None, call, idem)
            .await
    }

    /// [`Client::send`], counting against the retries of a larger operation (a body read that
    /// started over, a download resumed from byte `range_from`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn send_with(
        &self,
        retries: &mut Retries,
        method: Method,
        url: Url,
        body: &Body<'_>,
        range_from: Option<u64>,
        call: &str,
        idem: Idempotency,
    ) -> Result<Response> {
        self.send_gated(retries, method, url, body, range_from, call, idem, false)
            .await
    }

    /// [`Client::send_with`]; with `sample`, the request is a JSON API call whose round trip
    /// (against others of its API path) tells the concurrency limit how the server is doing
    /// (see [`super::limit`]).
    #[allow(clippy::too_many_arguments)]
    async fn send_gated(
        &self,
        retries: &mut Retries,
        method: Method,
        url: Url,
        body: &Body<'_>,
        range_from: Option<u64>,
        call: &str,
        idem: Idempotency,
        sample: bool,
    ) -> Result<Response> {
        let mut renewed = false;
        loop {
            let (req, used) = self.authorized(method.clone(), url.clone()).await?;
            let req = match body {
                Body::None => req,
                Body::Json(b) => req.header(CONTENT_TYPE, "application/json").body(b.clone()),
                Body::Bytes(b) => req.body((*b).clone()),
                Body::Typed(b, headers) => req.headers((*headers).clone()).body((*b).clone()),
            };
            let req = match range_from {
                Some(from) => req.header(RANGE, format!("bytes={from}-")),
                None => req,
            };
            // A slot from sending to the answer's headers; the answer timeout starts once sent.
            let slot = self.inner.limit.acquire(sample.then(|| url.path())).await;
            let started = std::time::Instant::now();
            self.inner.requests.fetch_add(1, Ordering::Relaxed);
            let sent = match tokio::time::timeout(self.inner.answer_timeout, req.send()).await {
                Ok(Ok(resp)) => Ok(resp),
                Ok(Err(e)) => Err(classify(&e)),
                Err(_) => Err((TransportKind::Timeout, self.no_answer())),
            };
            // An error answer keeps its slot until its body says what it is (a 400 may be an
            // overload: `pool_exhausted`).
            let mut slot = Some(slot);
            match &sent {
                Ok(resp) if !resp.status().is_success() => {}
                Ok(resp) => take(&mut slot, Outcome::Answer(resp.status().as_u16())),
                Err((kind, _)) => take(&mut slot, Outcome::Failed(*kind)),
            }
            trace_request(
                &method,
                &url,
                sent.as_ref().ok().map(|r| r.status().as_u16()),
                started,
            );
            if sent.is_ok() {
                self.inner.reached.store(true, Ordering::Relaxed);
            }
            match sent {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(parse_retry_after);
                    // 429 and 503 say the server did not take the request: safe to send again.
                    let may_retry = is_transient_status(status)
                        && (idem == Idempotency::Safe || status == 429 || status == 503);
                    let err = self.api_error(resp, call).await;
                    let exhausted = err.as_ref().is_ok_and(pool_exhausted);
                    take(
                        &mut slot,
                        Outcome::Answer(if exhausted { 503 } else { status }),
                    );
                    let may_retry = may_retry || exhausted;
                    let err = match err {
                        Ok(err) => err,
                        // The error answer itself was cut: which error it was is unknown (a
                        // "not found" reads as a bare 404), so a safe request is sent again.
                        Err(cut) if idem == Idempotency::Safe => {
                            if let Some(d) = retries.after(cut.kind, None) {
                                tracing_retry(call, &cut.to_string(), d);
                                tokio::time::sleep(d).await;
                                continue;
                            }
                            let cause = retries.give_up(cut.to_string());
                            return Err(self.transport_error(call, cut.kind, cause));
                        }
                        Err(cut) => Error::Api(Box::new(api_error_from(
                            call,
                            &self.inner.server,
                            reqwest::StatusCode::from_u16(status)
                                .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR),
                            format!("({cut})").as_bytes(),
                        ))),
                    };
                    if !renewed
                        && token_refused(status, &err)
                        && self.renew_credentials(used.as_ref()).await
                    {
                        // A short-lived token the workspace no longer takes: once more with a
                        // new one.
                        renewed = true;
                        tracing::info!(
                            "{call}: {} refused the OAuth token ({status}); asking for a new one",
                            self.inner.server,
                        );
                        continue;
                    }
                    // A server that lacks the feature says so with a 500 (`FEATURE_DISABLED`):
                    // final, not transient.
                    let may_retry = may_retry && !err.is_unsupported();
                    if may_retry && let Some(d) = retries.backoff.next_delay(retry_after) {
                        tracing_retry(call, &err.to_string(), d);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    return Err(err);
                }
                Err((kind, cause)) => {
                    let never_reached = kind == TransportKind::Connect
                        && !self.inner.reached.load(Ordering::Relaxed)
                        && retries.backoff.attempts() >= RETRIES_BEFORE_FIRST_CONTACT;
                    let may_retry = kind != TransportKind::Tls
                        && !never_reached
                        && (idem == Idempotency::Safe || kind == TransportKind::Connect);
                    if may_retry && let Some(d) = retries.after(kind, None) {
                        tracing_retry(call, &cause, d);
                        tokio::time::sleep(d).await;
                        continue;
                    }
                    let cause = retries.give_up(cause);
                    if idem == Idempotency::Unsafe && kind != TransportKind::Connect {
                        return Err(Error::Ambiguous {
                            call: call.to_string(),
                            server: self.inner.server.clone(),
                            cause,
                        });
                    }
                    return Err(self.transport_error(call, kind, cause));
                }
            }
        }
    }

    /// A request with the credentials applied, naming the client's workspace if it has one.
    /// With OAuth, the token is asked for first when the one held is near its end.
    pub(crate) async fn authorized(
        &self,
        method: Method,
        url: Url,
    ) -> Result<(reqwest::RequestBuilder, Option<HeaderValue>)> {
        let mut req = self.inner.http.request(method, url);
        if let Some(ws) = &self.workspace {
            req = req.header(WORKSPACE_HEADER, ws.as_ref());
        }
        let header = match &self.inner.auth {
            Credentials::None => None,
            Credentials::Fixed(h) => Some(h.clone()),
            Credentials::OAuth(source) => Some(
                source
                    .header(&self.inner.http, self.inner.answer_timeout)
                    .await?,
            ),
        };
        Ok(match header {
            Some(h) => (req.header(AUTHORIZATION, h.clone()), Some(h)),
            None => (req, None),
        })
    }

    /// After the server refused the credentials `used` (401 or 403): true when they were a
    /// short-lived token, now forgotten, so that sending again asks for a new one.
    pub(crate) async fn renew_credentials(&self, used: Option<&HeaderValue>) -> bool {
        match (&self.inner.auth, used) {
            (Credentials::OAuth(source), Some(h)) => {
                source.forget(h).await;
                true
            }
            _ => false,
        }
    }

    /// Passes a successful answer through and turns any other into an [`Error::Api`].
    pub(crate) async fn check_status(&self, resp: Response, call: &str) -> Result<Response> {
        if resp.status().is_success() {
            Ok(resp)
        } else {
            Err(match self.api_error(resp, call).await {
                Ok(err) => err,
                Err(cut) => self.transport_error(call, cut.kind, cut.to_string()),
            })
        }
    }

    /// Runs a create that is not safe to repeat blindly. When its outcome is unknown (the answer
    /// was lost, or the server failed in a way that may come after it acted), `lookup` is asked
    /// whether the object exists now, and only if it does not is the create sent again. Without
    /// a `lookup` (nothing identifies the object), an unknown outcome is returned as
    /// [`Error::Ambiguous`] and nothing is repeated.
    pub(crate) async fn create_reconciled<T, C, CF, L, LF>(
        &self,
        call: &str,
        create: C,
        lookup: Option<L>,
    ) -> Result<T>
    where
        C: Fn() -> CF,
        CF: Future<Output = Result<T>>,
        L: Fn() -> LF,
        LF: Future<Output = Result<Option<T>>>,
    {
        let mut backoff = Backoff::new(&self.inner.retry);
        loop {
            match create().await {
                Ok(v) => return Ok(v),
                Err(e) if outcome_unknown(&e) => {
                    let Some(lookup) = &lookup else {
                        return Err(match e {
                            Error::Ambiguous { .. } => e,
                            other => Error::Ambiguous {
                                call: call.to_string(),
                                server: self.inner.server.clone(),
                                cause: other.to_string(),
                            },
                        });
                    };
                    if let Some(v) = lookup().await? {
                        return Ok(v);
                    }
                    match backoff.next_delay(None) {
                        Some(d) => {
                            tracing_retry(call, &e.to_string(), d);
                            tokio::time::sleep(d).await;
                        }
                        None => return Err(e),
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> Error {
        Error::api_refusal(status, code, message)
    }

    #[test]
    fn only_a_refused_token_asks_for_a_new_one() {
        assert!(token_refused(401, &api(401, "UNAUTHENTICATED", "")));
        assert!(token_refused(
            403,
            &api(403, "403", "Invalid access token.")
        ));
        assert!(token_refused(
            403,
            &api(
                403,
                "",
                "Token is expiring within 30 seconds. (token expired)"
            )
        ));
        // A denial of one object is not the token's fault: no new token for it.
        assert!(!token_refused(
            403,
            &api(
                403,
                "PERMISSION_DENIED",
                "User sp-1 does not have Manage permissions on experiment 7"
            )
        ));
        assert!(!token_refused(
            404,
            &api(404, "RESOURCE_DOES_NOT_EXIST", "token")
        ));
    }
}
