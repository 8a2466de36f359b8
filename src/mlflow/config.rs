//! Where a tracking server is and how to authenticate, from MLflow's own conventions.
//!
//! | source | meaning |
//! |---|---|
//! | `--src-uri` / `--dst-uri` | the server's address; overrides `MLFLOW_TRACKING_URI` |
//! | `MLFLOW_TRACKING_URI` | the server's address when no explicit URI is given |
//! | `http://user:pass@host/` | basic credentials in the URI itself (taken out of the URI at once) |
//! | `MLFLOW_TRACKING_TOKEN` | a bearer token |
//! | `MLFLOW_TRACKING_USERNAME`, `MLFLOW_TRACKING_PASSWORD` | basic credentials |
//! | `MLFLOW_TRACKING_INSECURE_TLS` | `true` skips certificate verification |
//! | `MLFLOW_TRACKING_SERVER_CERT_PATH` | a PEM file of certificates to trust |
//!
//! Credentials in the URI win over the environment; a token wins over a username and password.
//! Nothing here ever prints a credential: [`Secret`] hides itself in `Debug`, and
//! [`TrackingConfig::display_uri`] has no user information.

use std::fmt;
use std::path::PathBuf;

use url::Url;

use super::databricks;
pub use super::databricks::{Registry, Workspace as DatabricksWorkspace};
use crate::error::{Error, Result};

/// A value that must not be shown: its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// How to authenticate to the server.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Auth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>` (`MLFLOW_TRACKING_TOKEN`).
    Bearer(Secret),
    /// HTTP basic authentication (`MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// OAuth machine-to-machine (a Databricks service principal): short-lived tokens from the
    /// workspace's token endpoint, asked for again before they expire.
    OAuthM2M {
        /// The service principal's application (client) id.
        client_id: String,
        /// Its OAuth secret.
        client_secret: Secret,
    },
}

/// A tracking server to talk to.
#[derive(Debug, Clone)]
pub struct TrackingConfig {
    /// The server's base address, ending with `/`, without user information.
    pub base: Url,
    /// The credentials.
    pub auth: Auth,
    /// Skip TLS certificate verification (`MLFLOW_TRACKING_INSECURE_TLS`).
    pub insecure_tls: bool,
    /// Extra certificates to trust, PEM (`MLFLOW_TRACKING_SERVER_CERT_PATH`).
    pub ca_cert: Option<PathBuf>,
    /// Set when the server is a Databricks workspace (a `databricks…` URI).
    pub databricks: Option<DatabricksWorkspace>,
}

/// The Databricks variables (as Databricks' SDK and CLI read them). Empty values count as unset.
#[derive(Debug, Clone, Default)]
pub struct DatabricksEnv {
    /// `DATABRICKS_HOST`.
    pub host: Option<String>,
    /// `DATABRICKS_TOKEN`.
    pub token: Option<String>,
    /// `DATABRICKS_CLIENT_ID`.
    pub client_id: Option<String>,
    /// `DATABRICKS_CLIENT_SECRET`.
    pub client_secret: Option<String>,
    /// `DATABRICKS_USERNAME`.
    pub username: Option<String>,
    /// `DATABRICKS_PASSWORD`.
    pub password: Option<String>,
    /// `DATABRICKS_AUTH_TYPE`.
    pub auth_type: Option<String>,
    /// `DATABRICKS_CONFIG_PROFILE`.
    pub config_profile: Option<String>,
    /// `DATABRICKS_CONFIG_FILE`.
    pub config_file: Option<String>,
}

impl DatabricksEnv {
    /// The variables as the keys of a configuration-file profile.
    pub(crate) fn as_values(&self) -> std::collections::BTreeMap<String, String> {
        [
            ("host", &self.host),
            ("token", &self.token),
            ("client_id", &self.client_id),
            ("client_secret", &self.client_secret),
            ("username", &self.username),
            ("password", &self.password),
            ("auth_type", &self.auth_type),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k.to_string(), v)))
        .collect()
    }
}

/// The environment variables this module reads, as a snapshot (so tests need not touch the real
/// environment).
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// `MLFLOW_TRACKING_URI`.
    pub tracking_uri: Option<String>,
    /// `MLFLOW_TRACKING_TOKEN`.
    pub token: Option<String>,
    /// `MLFLOW_TRACKING_USERNAME`.
    pub username: Option<String>,
    /// `MLFLOW_TRACKING_PASSWORD`.
    pub password: Option<String>,
    /// `MLFLOW_TRACKING_INSECURE_TLS`.
    pub insecure_tls: Option<String>,
    /// `MLFLOW_TRACKING_SERVER_CERT_PATH`.
    pub cert_path: Option<String>,
    /// `MLFLOW_REGISTRY_URI` (read for Databricks: `databricks-uc` picks Unity Catalog when the
    /// tracking URI came from `MLFLOW_TRACKING_URI`).
    pub registry_uri: Option<String>,
    /// `HOME` (where `~/.databrickscfg` is).
    pub home: Option<String>,
    /// The `DATABRICKS_*` variables.
    pub databricks: DatabricksEnv,
}

impl Env {
    /// Reads the variables from the process environment. Empty values count as unset.
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Env {
            tracking_uri: get("MLFLOW_TRACKING_URI"),
            token: get("MLFLOW_TRACKING_TOKEN"),
            username: get("MLFLOW_TRACKING_USERNAME"),
            password: get("MLFLOW_TRACKING_PASSWORD"),
            insecure_tls: get("MLFLOW_TRACKING_INSECURE_TLS"),
            cert_path: get("MLFLOW_TRACKING_SERVER_CERT_PATH"),
            registry_uri: get("MLFLOW_REGISTRY_URI"),
            home: get("HOME"),
            databricks: DatabricksEnv {
                host: get("DATABRICKS_HOST"),
                token: get("DATABRICKS_TOKEN"),
                client_id: get("DATABRICKS_CLIENT_ID"),
                client_secret: get("DATABRICKS_CLIENT_SECRET"),
                username: get("DATABRICKS_USERNAME"),
                password: get("DATABRICKS_PASSWORD"),
                auth_type: get("DATABRICKS_AUTH_TYPE"),
                config_profile: get("DATABRICKS_CONFIG_PROFILE"),
                config_file: get("DATABRICKS_CONFIG_FILE"),
            },
        }
    }
}

impl TrackingConfig {
    /// The configuration for `explicit_uri` (a `--src-uri`/`--dst-uri` value) or, without one,
    /// `MLFLOW_TRACKING_URI`, with credentials and TLS settings from `env`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when there is no URI (neither `explicit_uri` nor
    /// `MLFLOW_TRACKING_URI`), for a URI this client cannot use, for a username without a
    /// password (or the reverse), or for TLS settings that are invalid or contradict each other.
    pub fn resolve(explicit_uri: Option<&str>, env: &Env) -> Result<Self> {
        let raw = explicit_uri
            .filter(|u| !u.is_empty())
            .or(env.tracking_uri.as_deref())
            .ok_or_else(|| {
                Error::Config(
                    "no tracking server given: pass --src-uri/--dst-uri or set MLFLOW_TRACKING_URI (e.g. http://127.0.0.1:5000)"
                        .into(),
                )
            })?;
        if let Some((registry, profile)) = databricks::parse_uri(raw)? {
            let registry = match env.registry_uri.as_deref().map(databricks::parse_uri) {
                // `MLFLOW_REGISTRY_URI` speaks for the `MLFLOW_TRACKING_URI` it goes with.
                Some(Ok(Some((r, p))))
                    if explicit_uri.is_none_or(str::is_empty) && p == profile =>
                {
                    r
                }
                _ => registry,
            };
            let (base, auth, profile) = databricks::resolve(profile.as_deref(), env)?;
            return Ok(TrackingConfig {
                base,
                auth,
                insecure_tls: false,
                ca_cert: None,
                databricks: Some(DatabricksWorkspace { profile, registry }),
            });
        }
        let (base, uri_auth) = parse_server_uri(raw)?;
        let auth = match uri_auth {
            Some(a) => a,
            None => match (&env.token, &env.username, &env.password) {
                (Some(t), _, _) => Auth::Bearer(Secret::new(t.clone())),
                (None, Some(u), Some(p)) => Auth::Basic {
                    username: u.clone(),
                    password: Secret::new(p.clone()),
                },
                (None, Some(_), None) => {
                    return Err(Error::Config(
                        "MLFLOW_TRACKING_USERNAME is set but MLFLOW_TRACKING_PASSWORD is not"
                            .into(),
                    ));
                }
                (None, None, Some(_)) => {
                    return Err(Error::Config(
                        "MLFLOW_TRACKING_PASSWORD is set but MLFLOW_TRACKING_USERNAME is not"
                            .into(),
                    ));
                }
                (None, None, None) => Auth::None,
            },
        };
        let insecure_tls = match env.insecure_tls.as_deref().map(str::to_ascii_lowercase) {
            None => false,
            Some(v) if matches!(v.as_str(), "true" | "1" | "yes") => true,
            Some(v) if matches!(v.as_str(), "false" | "0" | "no") => false,
            Some(v) => {
                return Err(Error::Config(format!(
                    "MLFLOW_TRACKING_INSECURE_TLS must be true or false, not {v:?}"
                )));
            }
        };
        if insecure_tls && env.cert_path.is_some() {
            return Err(Error::Config(
                "MLFLOW_TRACKING_INSECURE_TLS and MLFLOW_TRACKING_SERVER_CERT_PATH are both set: choose one".into(),
            ));
        }
        Ok(TrackingConfig {
            base,
            auth,
            insecure_tls,
            ca_cert: env.cert_path.as_ref().map(PathBuf::from),
            databricks: None,
        })
    }

    /// A configuration for `uri` with no credentials, for tests and tools.
    ///
    /// # Errors
    ///
    /// As [`TrackingConfig::resolve`].
    pub fn for_uri(uri: &str) -> Result<Self> {
        Self::resolve(Some(uri), &Env::default())
    }

    /// The server's address as it may be shown: no user information, no trailing slash.
    pub fn display_uri(&self) -> String {
        let base = self.base.as_str().trim_end_matches('/');
        match &self.databricks {
            None => base.to_string(),
            Some(d) => {
                let scheme = match d.registry {
                    Registry::Workspace => "databricks",
                    Registry::UnityCatalog => "databricks-uc",
                };
                match &d.profile {
                    Some(p) => format!("{scheme}://{p} ({base})"),
                    None => format!("{scheme} ({base})"),
                }
            }
        }
    }

    /// Whether the server is a Databricks workspace.
    pub fn is_databricks(&self) -> bool {
        self.databricks.is_some()
    }
}

/// Splits a tracking URI into a base URL (ending in `/`, no credentials, no query) and the
/// credentials it carried, if any.
fn parse_server_uri(raw: &str) -> Result<(Url, Option<Auth>)> {
    let mut url = Url::parse(raw).map_err(|e| {
        Error::Config(format!(
            "tracking URI {:?} is not a URL ({e}): give the tracking server's address, e.g. http://127.0.0.1:5000",
            redact(raw)
        ))
    })?;
    match url.scheme() {
        "http" | "https" => {}
        "file" | "sqlite" | "postgresql" | "mysql" | "mssql" => {
            return Err(Error::Config(format!(
                "tracking URI {:?} names a backend store, not a server: mlflow-archive talks to `mlflow server` over REST; start one on that store and pass its http:// address",
                redact(raw)
            )));
        }
        other => {
            return Err(Error::Config(format!(
                "tracking URI {:?} has scheme {other:?}: only http:// and https:// tracking servers are supported",
                redact(raw)
            )));
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::Config(format!(
            "tracking URI {:?} has no host",
            redact(raw)
        )));
    }
    let auth = if !url.username().is_empty() || url.password().is_some() {
        let username = percent_decode(url.username());
        let password = Secret::new(percent_decode(url.password().unwrap_or("")));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        Some(Auth::Basic { username, password })
    } else {
        None
    };
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok((url, auth))
}

fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `raw` with any user information replaced by `***`, for messages about a URI that may hold
/// credentials, whatever its shape: `http://u:p@h`, `//u:p@h`, `u:p@h` (no scheme), or a password
/// with unescaped `/`, `?` or `#` in it. Everything from the start of the authority (after `://`,
/// after a leading `//`, or the start) to the last `@` is masked: when that `@` belongs to a path
/// or a query instead, masking too much is the safe mistake.
pub fn redact(raw: &str) -> String {
    let Some(at) = raw.rfind('@') else {
        return raw.to_string();
    };
    let start = match raw.find("://") {
        Some(i) if i < at => i + 3,
        _ if raw.starts_with("//") => 2,
        _ => 0,
    };
    format!("{}***{}", &raw[..start], &raw[at..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_uri_wins_and_is_normalised() {
        let env = Env {
            tracking_uri: Some("http://other:1".into()),
            ..Env::default()
        };
        let c = TrackingConfig::resolve(Some("http://127.0.0.1:5000/prefix?x=1"), &env).unwrap();
        assert_eq!(c.base.as_str(), "http://127.0.0.1:5000/prefix/");
        assert_eq!(c.display_uri(), "http://127.0.0.1:5000/prefix");
        assert_eq!(c.auth, Auth::None);
    }

    #[test]
    fn credentials_in_uri_are_taken_out() {
        let c = TrackingConfig::for_uri("https://al%40ice:p%3Ass@host:8443").unwrap();
        assert_eq!(c.base.as_str(), "https://host:8443/");
        assert_eq!(
            c.auth,
            Auth::Basic {
                username: "al@ice".into(),
                password: Secret::new("p:ss")
            }
        );
        assert!(!format!("{c:?}").contains("p:ss"));
    }

    #[test]
    fn token_beats_basic_and_half_basic_is_an_error() {
        let env = Env {
            token: Some("tok".into()),
            username: Some("u".into()),
            password: Some("p".into()),
            ..Env::default()
        };
        let c = TrackingConfig::resolve(Some("http://h"), &env).unwrap();
        assert_eq!(c.auth, Auth::Bearer(Secret::new("tok")));
        let env = Env {
            username: Some("u".into()),
            ..Env::default()
        };
        let e = TrackingConfig::resolve(Some("http://h"), &env).unwrap_err();
        assert!(
            e.to_string().contains("MLFLOW_TRACKING_PASSWORD is not"),
            "{e}"
        );
    }

    #[test]
    fn bad_uris_say_what_to_do_and_hide_secrets() {
        for (uri, want) in [
            ("sqlite:///tmp/x.db", "backend store"),
            ("ftp://u:hunter2@h/", "only http"),
            ("not a uri", "not a URL"),
            ("databricks://a:b", "secret scope"),
        ] {
            let e = TrackingConfig::for_uri(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        let e = TrackingConfig::resolve(None, &Env::default()).unwrap_err();
        assert!(e.to_string().contains("MLFLOW_TRACKING_URI"));
    }

    #[test]
    fn tls_flags() {
        let env = Env {
            insecure_tls: Some("TRUE".into()),
            ..Env::default()
        };
        assert!(
            TrackingConfig::resolve(Some("https://h"), &env)
                .unwrap()
                .insecure_tls
        );
        let env = Env {
            insecure_tls: Some("maybe".into()),
            ..Env::default()
        };
        assert!(TrackingConfig::resolve(Some("https://h"), &env).is_err());
    }

    #[test]
    fn redact_hides_userinfo() {
        assert_eq!(redact("http://u:p@h:1/x"), "http://***@h:1/x");
        assert_eq!(redact("http://h:1/x"), "http://h:1/x");
        // An `@` further on may be a path's: masked too, the safe mistake.
        assert_eq!(redact("http://h:1/x@y"), "http://***@y");
    }

    #[test]
    fn redact_hides_userinfo_of_uris_without_a_scheme() {
        for (raw, want) in [
            ("user:SECRET@127.0.0.1:5290", "***@127.0.0.1:5290"),
            ("//user:SECRET@host", "//***@host"),
            ("user:SE/CR?E#T@host:1/p", "***@host:1/p"),
            ("http://user:SE/CRET@host", "http://***@host"),
            ("http:user:SECRET@host", "***@host"),
        ] {
            assert_eq!(redact(raw), want, "{raw}");
        }
    }

    #[test]
    fn errors_about_uris_without_a_scheme_hide_the_password() {
        // Issue 12, item 5: `user:SECRET@host` parses as scheme "user", `//user:SECRET@host` as
        // no URL at all, and both messages showed the password.
        for uri in [
            "user:SECRET@127.0.0.1:5290",
            "//user:SECRET@host",
            "user:SECRET@host/x",
            "ftp://user:SE/CRET@host",
            "databricks://user:SECRET@ws",
            "sqlite://user:SECRET@h/db",
            "http://user:SECRET@",
        ] {
            for e in [
                TrackingConfig::for_uri(uri).unwrap_err(),
                TrackingConfig::resolve(
                    None,
                    &Env {
                        tracking_uri: Some(uri.into()),
                        ..Env::default()
                    },
                )
                .unwrap_err(),
            ] {
                let text = e.to_string();
                assert!(!text.contains("SECRET"), "{uri}: {text}");
                assert!(!format!("{e:?}").contains("SECRET"), "{uri}: {e:?}");
                assert!(text.contains("***@"), "{uri}: {text}");
            }
        }
    }
}
