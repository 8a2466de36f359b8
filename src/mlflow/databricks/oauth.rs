//! OAuth machine-to-machine for a Databricks service principal: the client-credentials grant at
//! the workspace's token endpoint (`POST <host>/oidc/v1/token`, found through
//! `<host>/oidc/.well-known/oauth-authorization-server`), `Authorization: Basic` with the client id
//! and secret, scope `all-apis`. A token is asked for again shortly before it expires
//! (Databricks refuses tokens within 30 s of their end), and once more when the workspace refuses
//! one (a revoked token, a clock that disagrees).

use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::mlflow::config::Secret;

/// Tokens of one service principal on one workspace.
#[derive(Debug)]
pub(crate) struct TokenSource {
    client_id: String,
    secret: Secret,
    host: Url,
    state: tokio::sync::Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    endpoint: Option<Url>,
    token: Option<Token>,
}

#[derive(Debug, Clone)]
struct Token {
    header: HeaderValue,
    got: Instant,
    lifetime: Duration,
}

impl Token {
    /// Still good for a request: more than `min(40 s, a quarter of its lifetime)` left.
    fn fresh(&self) -> bool {
        let margin = Duration::from_secs(40).min(self.lifetime / 4);
        self.got.elapsed() + margin < self.lifetime
    }
}

#[derive(Deserialize)]
struct Discovery {
    #[serde(default)]
    token_endpoint: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    token_type: String,
    #[serde(default)]
    expires_in: Option<f64>,
}

impl TokenSource {
    pub(crate) fn new(host: Url, client_id: String, secret: Secret) -> Self {
        TokenSource {
            client_id,
            secret,
            host,
            state: tokio::sync::Mutex::new(State::default()),
        }
    }

    /// The `Authorization` header to send now: the held token while it is fresh, else a new one.
    pub(crate) async fn header(
        &self,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<HeaderValue> {
        let mut state = self.state.lock().await;
        if let Some(t) = state.token.as_ref().filter(|t| t.fresh()) {
            return Ok(t.header.clone());
        }
        let endpoint = match &state.endpoint {
            Some(e) => e.clone(),
            None => {
                let e = self.discover(http, timeout).await;
                state.endpoint = Some(e.clone());
                e
            }
        };
        let token = self.request(http, &endpoint, timeout).await?;
        let header = token.header.clone();
        state.token = Some(token);
        Ok(header)
    }

    /// Forgets the token `used` (the workspace refused it), so the next request asks anew.
    pub(crate) async fn forget(&self, used: &HeaderValue) {
        let mut state = self.state.lock().await;
        if state.token.as_ref().is_some_and(|t| t.header == *used) {
            state.token = None;
        }
    }

    /// The token endpoint the workspace publishes, when it is on the workspace's own host (the
    /// client secret goes nowhere else); else the documented `<host>/oidc/v1/token`.
    async fn discover(&self, http: &reqwest::Client, timeout: Duration) -> Url {
        let fallback = self
            .host
            .join("oidc/v1/token")
            .unwrap_or_else(|_| self.host.clone());
        let Ok(url) = self
            .host
            .join("oidc/.well-known/oauth-authorization-server")
        else {
            return fallback;
        };
        let found = async {
            let resp = http.get(url).timeout(timeout).send().await.ok()?;
            if !resp.status().is_success() {
                return None;
            }
            let bytes = resp.bytes().await.ok()?;
            let d: Discovery = serde_json::from_slice(&bytes).ok()?;
            let e = Url::parse(&d.token_endpoint).ok()?;
            (e.scheme() == self.host.scheme()
                && e.host_str() == self.host.host_str()
                && e.port_or_known_default() == self.host.port_or_known_default())
            .then_some(e)
        };
        match found.await {
            Some(e) => e,
            None => {
                tracing::debug!(
                    "{}: no usable OAuth discovery document; using {fallback}",
                    self.host
                );
                fallback
            }
        }
    }

    async fn request(
        &self,
        http: &reqwest::Client,
        endpoint: &Url,
        timeout: Duration,
    ) -> Result<Token> {
        use base64::Engine as _;
        let host = self.host.as_str().trim_end_matches('/');
        let what = format!(
            "OAuth token for service principal {:?} from {host}",
            self.client_id
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{}",
            self.client_id,
            self.secret.expose()
        ));
        let mut auth = HeaderValue::from_str(&format!("Basic {basic}")).map_err(|_| {
            Error::Config(format!(
                "{what}: the client id or secret has characters that cannot be sent"
            ))
        })?;
        auth.set_sensitive(true);
        let mut tries = 0;
        let resp = loop {
            let sent = http
                .post(endpoint.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body("grant_type=client_credentials&scope=all-apis")
                // Every request of the process waits for this one: not for long.
                .timeout(timeout.min(Duration::from_secs(30)))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_server_error() && tries < 2 => tries += 1,
                Ok(r) => break r,
                Err(_) if tries < 2 => tries += 1,
                Err(e) => {
                    let (_, cause) = crate::mlflow::http::classify(&e);
                    return Err(Error::Config(format!("{what}: {cause}")));
                }
            }
            tokio::time::sleep(Duration::from_millis(500 * (1 << tries))).await;
        };
        let status = resp.status();
        let body = resp.bytes().await.unwrap_or_default();
        if !status.is_success() {
            let e = crate::mlflow::http::api_error_from(
                &format!("POST {}", endpoint.path()),
                host,
                status,
                &body[..body.len().min(4096)],
            );
            let said = [e.error_code, e.message]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(": ");
            return Err(Error::Config(format!(
                "{what}: the workspace refused the client credentials (HTTP {}{})",
                status.as_u16(),
                if said.is_empty() {
                    String::new()
                } else {
                    format!(": {said}")
                }
            )));
        }
        let a: TokenAnswer = serde_json::from_slice(&body).map_err(|e| Error::Protocol {
            call: format!("POST {}", endpoint.path()),
            server: host.to_string(),
            detail: format!("the token answer is not OAuth's JSON ({e})"),
        })?;
        if a.access_token.is_empty() {
            return Err(Error::Protocol {
                call: format!("POST {}", endpoint.path()),
                server: host.to_string(),
                detail: "the token answer has no access_token".into(),
            });
        }
        let kind = if a.token_type.is_empty() || a.token_type.eq_ignore_ascii_case("bearer") {
            "Bearer"
        } else {
            a.token_type.as_str()
        };
        let mut header =
            HeaderValue::from_str(&format!("{kind} {}", a.access_token)).map_err(|_| {
                Error::Protocol {
                    call: format!("POST {}", endpoint.path()),
                    server: host.to_string(),
                    detail: "the access token has characters that cannot be sent".into(),
                }
            })?;
        header.set_sensitive(true);
        let lifetime = a
            .expires_in
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(Duration::from_secs(3600), |s| {
                Duration::from_secs_f64(s.min(86_400.0))
            });
        tracing::debug!("{what}: a token valid {} s", lifetime.as_secs());
        Ok(Token {
            header,
            got: Instant::now(),
            lifetime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_renewed_before_its_end() {
        let header = HeaderValue::from_static("Bearer x");
        let t = Token {
            header: header.clone(),
            got: Instant::now(),
            lifetime: Duration::from_secs(3600),
        };
        assert!(t.fresh());
        let old = Token {
            got: Instant::now() - Duration::from_secs(3600 - 39),
            ..t.clone()
        };
        assert!(!old.fresh());
        // A short-lived token is kept for three quarters of its life.
        let short = Token {
            lifetime: Duration::from_secs(8),
            got: Instant::now() - Duration::from_secs(5),
            ..t
        };
        assert!(short.fresh());
        let short = Token {
            got: Instant::now() - Duration::from_millis(6100),
            ..short
        };
        assert!(!short.fresh());
    }
}
