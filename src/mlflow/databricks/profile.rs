//! Which Databricks workspace a `databricks[-uc][://PROFILE]` URI names, and its credentials, the
//! way Databricks' SDK and MLflow's client find them:
//!
//! 1. a profile (the URI's, else `DATABRICKS_CONFIG_PROFILE`): that section of
//!    `DATABRICKS_CONFIG_FILE` (default `~/.databrickscfg`), and nothing else;
//! 2. no profile and `DATABRICKS_HOST` set: the environment (`DATABRICKS_TOKEN`, or
//!    `DATABRICKS_CLIENT_ID` + `DATABRICKS_CLIENT_SECRET`, or `DATABRICKS_USERNAME` +
//!    `DATABRICKS_PASSWORD`);
//! 3. otherwise the file's `[__settings__] default_profile`, else its `[DEFAULT]` section.
//!
//! Inside the chosen set, `auth_type` (`pat`, `oauth-m2m`, `basic`) decides; without it a token
//! means a personal access token and a client id and secret mean OAuth machine-to-machine (both
//! at once is an error, as in the SDK). Profiles do not inherit from `[DEFAULT]`. Values are taken
//! literally (no `%` interpolation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use url::Url;

use super::super::config::{Auth, Env, Secret};
use crate::error::{Error, Result};

/// Which model registry a Databricks URI names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Registry {
    /// The workspace model registry (`databricks[://PROFILE]`): stages, no aliases.
    Workspace,
    /// Unity Catalog (`databricks-uc[://PROFILE]`): three-level names, aliases, no stages.
    UnityCatalog,
}

/// A Databricks workspace as a URI named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workspace {
    /// The profile the credentials came from, if any (`None`: the environment).
    pub profile: Option<String>,
    /// The model registry to use.
    pub registry: Registry,
}

/// The parts of a `databricks…` URI: the registry it names and its profile, if any; `None` when
/// the URI is not a Databricks one.
///
/// # Errors
///
/// [`Error::Config`] for a malformed Databricks URI, and for the secret-scope form
/// (`databricks://scope:prefix`), which only works inside a Databricks cluster.
pub fn parse_uri(raw: &str) -> Result<Option<(Registry, Option<String>)>> {
    let lower = raw.to_ascii_lowercase();
    let (registry, rest) = if let Some(rest) = lower.strip_prefix("databricks-uc") {
        (Registry::UnityCatalog, &raw[raw.len() - rest.len()..])
    } else if let Some(rest) = lower.strip_prefix("databricks") {
        (Registry::Workspace, &raw[raw.len() - rest.len()..])
    } else {
        return Ok(None);
    };
    if rest.is_empty() {
        return Ok(Some((registry, None)));
    }
    let shown = super::super::config::redact(raw);
    let Some(profile) = rest.strip_prefix("://") else {
        return Err(Error::Config(format!(
            "tracking URI {shown:?}: a Databricks URI is `databricks`, `databricks://PROFILE`, `databricks-uc` or `databricks-uc://PROFILE`"
        )));
    };
    let profile = profile.trim_end_matches('/');
    if profile.contains('@') {
        return Err(Error::Config(format!(
            "tracking URI {shown:?}: a Databricks URI names a profile, not credentials; put them in ~/.databrickscfg or DATABRICKS_TOKEN"
        )));
    }
    if profile.contains(':') {
        return Err(Error::Config(format!(
            "tracking URI {shown:?} names a secret scope (databricks://SCOPE:PREFIX), which only Databricks clusters can read; use a profile (databricks://PROFILE) or DATABRICKS_HOST with DATABRICKS_TOKEN"
        )));
    }
    if profile.is_empty() || profile.contains(['/', ' ', '?', '#']) {
        return Err(Error::Config(format!(
            "tracking URI {shown:?}: {profile:?} is not a profile name (no '/', ':' or spaces)"
        )));
    }
    Ok(Some((registry, Some(profile.to_string()))))
}

/// Resolves the workspace address and credentials for `profile` (from the URI, or `None`).
///
/// # Errors
///
/// [`Error::Config`] naming the file, the profile or the variables when they do not give a host
/// and one way to authenticate. Never shows a credential.
pub fn resolve(profile: Option<&str>, env: &Env) -> Result<(Url, Auth, Option<String>)> {
    let file = config_file(env);
    let profile = profile
        .map(str::to_string)
        .or_else(|| env.databricks.config_profile.clone());
    let (values, chosen) = match profile {
        Some(p) => {
            let sections = read_file(&file)?.ok_or_else(|| {
                Error::Config(format!(
                    "Databricks profile {p:?}: the configuration file {} does not exist (set DATABRICKS_CONFIG_FILE or run `databricks configure --profile {p}`)",
                    file.display()
                ))
            })?;
            let values = sections.get(&p).cloned().ok_or_else(|| {
                Error::Config(format!(
                    "Databricks profile {p:?} is not in {} (it has: {})",
                    file.display(),
                    names(&sections)
                ))
            })?;
            if env.databricks.host.is_some() || env.databricks.token.is_some() {
                tracing::info!(
                    "Databricks profile {p:?}: DATABRICKS_HOST/DATABRICKS_TOKEN are ignored, the profile alone is used"
                );
            }
            (values, Some(p))
        }
        None if env.databricks.host.is_some() => (env.databricks.as_values(), None),
        None => {
            let sections = read_file(&file)?.unwrap_or_default();
            let default = sections
                .get("__settings__")
                .and_then(|s| s.get("default_profile"))
                .cloned()
                .unwrap_or_else(|| "DEFAULT".to_string());
            match sections.get(&default) {
                Some(v) if !v.is_empty() => (v.clone(), Some(default)),
                _ => {
                    return Err(Error::Config(format!(
                        "no Databricks workspace configured: set DATABRICKS_HOST with DATABRICKS_TOKEN (or DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET), or use databricks://PROFILE with a profile in {}",
                        file.display()
                    )));
                }
            }
        }
    };
    let from = match &chosen {
        Some(p) => format!("Databricks profile {p:?} of {}", file.display()),
        None => "the DATABRICKS_* variables".to_string(),
    };
    let host = values
        .get("host")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| Error::Config(format!("{from} has no host")))?;
    let host = normalize_host(host).map_err(|e| Error::Config(format!("{from}: {e}")))?;
    let auth = auth_of(&values, &from)?;
    Ok((host, auth, chosen))
}

/// The credentials a set of values names.
fn auth_of(v: &BTreeMap<String, String>, from: &str) -> Result<Auth> {
    let get = |k: &str| v.get(k).filter(|s| !s.is_empty()).cloned();
    let token = get("token");
    let client = match (get("client_id"), get("client_secret")) {
        (Some(id), Some(secret)) => Some((id, secret)),
        (Some(_), None) | (None, Some(_)) => {
            return Err(Error::Config(format!(
                "{from}: OAuth needs both client_id and client_secret"
            )));
        }
        (None, None) => None,
    };
    let basic = match (get("username"), get("password")) {
        (Some(u), Some(p)) => Some((u, p)),
        _ => None,
    };
    let pat = |t: String| Auth::Bearer(Secret::new(t));
    let m2m = |(client_id, secret): (String, String)| Auth::OAuthM2M {
        client_id,
        client_secret: Secret::new(secret),
    };
    let basic_auth = |(username, p): (String, String)| Auth::Basic {
        username,
        password: Secret::new(p),
    };
    let missing = |what: &str| Error::Config(format!("{from}: auth_type {what} needs its values"));
    match get("auth_type").as_deref() {
        Some("pat") => token.map(pat).ok_or_else(|| missing("pat (token)")),
        Some("oauth-m2m") => client
            .map(m2m)
            .ok_or_else(|| missing("oauth-m2m (client_id, client_secret)")),
        Some("basic") => basic
            .map(basic_auth)
            .ok_or_else(|| missing("basic (username, password)")),
        Some(other) => Err(Error::Config(format!(
            "{from}: auth_type {other:?} is not supported; use pat (a token) or oauth-m2m (a service principal's client_id and client_secret)"
        ))),
        None => match (token, client, basic) {
            (Some(_), Some(_), _) => Err(Error::Config(format!(
                "{from}: more than one authorization method configured (a token and an OAuth client); set auth_type to pat or oauth-m2m"
            ))),
            (Some(t), None, _) => Ok(pat(t)),
            (None, Some(c), _) => Ok(m2m(c)),
            (None, None, Some(b)) => Ok(basic_auth(b)),
            (None, None, None) => Err(Error::Config(format!(
                "{from} has a host but no credentials: give a token, or client_id and client_secret"
            ))),
        },
    }
}

/// `https://` added when there is no scheme; no trailing `/`, no `:443`; ends with `/` as a base.
fn normalize_host(raw: &str) -> std::result::Result<Url, String> {
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("https://{raw}")
    };
    let mut url =
        Url::parse(&with_scheme).map_err(|e| format!("host {raw:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!("host {raw:?} is not an http(s) address"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the host carries credentials; give them as a token instead".into());
    }
    if url.scheme() == "https" && url.port() == Some(443) {
        let _ = url.set_port(None);
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let p = format!("{}/", url.path());
        url.set_path(&p);
    }
    Ok(url)
}

fn config_file(env: &Env) -> PathBuf {
    match (&env.databricks.config_file, &env.home) {
        (Some(f), _) => PathBuf::from(f),
        (None, Some(home)) => Path::new(home).join(".databrickscfg"),
        (None, None) => PathBuf::from(".databrickscfg"),
    }
}

fn names(sections: &BTreeMap<String, BTreeMap<String, String>>) -> String {
    let n: Vec<&str> = sections
        .keys()
        .map(String::as_str)
        .filter(|s| *s != "__settings__")
        .collect();
    if n.is_empty() {
        "no profiles".into()
    } else {
        n.join(", ")
    }
}

type Sections = BTreeMap<String, BTreeMap<String, String>>;

/// The largest configuration file read (a real one is a few hundred bytes per profile).
const MAX_FILE: u64 = 1 << 20;

/// How long a configuration file that is not a regular file (a fifo, a device) may take to be
/// read: `<(command)` works, a fifo nobody writes to is an error, not a hang.
const SLOW_FILE: std::time::Duration = std::time::Duration::from_secs(10);

/// The file's sections, or `None` when it does not exist.
fn read_file(path: &Path) -> Result<Option<Sections>> {
    let bad = |why: String| {
        Error::Config(format!(
            "Databricks configuration file {}: {why}",
            path.display()
        ))
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(e.to_string())),
    };
    if meta.is_dir() {
        return Err(bad(
            "a directory, not a file (DATABRICKS_CONFIG_FILE names the file itself)".into(),
        ));
    }
    let read = |path: PathBuf| -> std::io::Result<Vec<u8>> {
        use std::io::Read as _;
        let mut bytes = Vec::new();
        std::fs::File::open(path)?
            .take(MAX_FILE + 1)
            .read_to_end(&mut bytes)?;
        Ok(bytes)
    };
    let bytes = if meta.is_file() {
        read(path.to_path_buf())
    } else {
        let (tx, rx) = std::sync::mpsc::channel();
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(read(owned));
        });
        rx.recv_timeout(SLOW_FILE).map_err(|_| {
            bad(format!(
                "nothing could be read within {} s (a fifo nobody writes to?)",
                SLOW_FILE.as_secs()
            ))
        })?
    }
    .map_err(|e| bad(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(bad(format!(
            "larger than {} MiB, which no configuration file is",
            MAX_FILE >> 20
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| bad("not UTF-8 text".into()))?;
    parse_ini(&text).map(Some).map_err(bad)
}

/// An INI file as Python's `configparser` reads `~/.databrickscfg`: `[section]` headers,
/// `key = value` or `key: value`, `#` and `;` comment lines, keys in any case (kept lower case),
/// values trimmed and literal. Indented lines continue the previous value.
fn parse_ini(text: &str) -> std::result::Result<Sections, String> {
    let mut out = Sections::new();
    let mut section: Option<String> = None;
    let mut last_key: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.len() < line.len()
            && let (Some(s), Some(k)) = (&section, &last_key)
        {
            if let Some(v) = out.get_mut(s).and_then(|m| m.get_mut(k)) {
                v.push('\n');
                v.push_str(trimmed);
            }
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('[') {
            let name = name
                .strip_suffix(']')
                .ok_or_else(|| format!("line {}: a section header without `]`", n + 1))?;
            out.entry(name.to_string()).or_default();
            section = Some(name.to_string());
            last_key = None;
            continue;
        }
        let Some(i) = trimmed.find(['=', ':']) else {
            return Err(format!(
                "line {}: neither a section nor `key = value`",
                n + 1
            ));
        };
        let Some(s) = &section else {
            return Err(format!("line {}: a value before any [section]", n + 1));
        };
        let key = trimmed[..i].trim().to_ascii_lowercase();
        let value = trimmed[i + 1..].trim().to_string();
        out.entry(s.clone()).or_default().insert(key.clone(), value);
        last_key = Some(key);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::super::config::DatabricksEnv;
    use super::*;

    fn env_with_file(text: &str) -> (tempfile::TempDir, Env) {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cfg");
        std::fs::write(&f, text).unwrap();
        let env = Env {
            databricks: DatabricksEnv {
                config_file: Some(f.display().to_string()),
                ..DatabricksEnv::default()
            },
            ..Env::default()
        };
        (dir, env)
    }

    #[test]
    fn uris() {
        assert_eq!(parse_uri("http://h").unwrap(), None);
        assert_eq!(
            parse_uri("databricks").unwrap(),
            Some((Registry::Workspace, None))
        );
        assert_eq!(
            parse_uri("databricks-uc://prod").unwrap(),
            Some((Registry::UnityCatalog, Some("prod".into())))
        );
        for bad in [
            "databricks://scope:prefix",
            "databricks:/x",
            "databricks://",
            "databricks://a/b",
            "databricks://u:SECRET@ws",
        ] {
            let e = parse_uri(bad).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
            assert!(e.contains("tracking URI"), "{bad}: {e}");
        }
        assert!(
            parse_uri("databricks://scope:prefix")
                .unwrap_err()
                .to_string()
                .contains("secret scope")
        );
    }

    #[test]
    fn a_profile_is_read_alone_and_does_not_inherit() {
        let (_d, mut env) = env_with_file(
            "[DEFAULT]\nhost = https://default.cloud.databricks.com\ntoken = d\n\n[a]\nhost = adb-1.azuredatabricks.net:443/\ntoken : tok-a\n; comment\n[b]\nhost = http://127.0.0.1:9\nclient_id = cid\nclient_secret = s%ecret\n[c]\ntoken = t\n",
        );
        env.databricks.host = Some("https://env".into());
        let (host, auth, p) = resolve(Some("a"), &env).unwrap();
        assert_eq!(host.as_str(), "https://adb-1.azuredatabricks.net/");
        assert_eq!(auth, Auth::Bearer(Secret::new("tok-a")));
        assert_eq!(p.as_deref(), Some("a"));
        let (host, auth, _) = resolve(Some("b"), &env).unwrap();
        assert_eq!(host.as_str(), "http://127.0.0.1:9/");
        assert_eq!(
            auth,
            Auth::OAuthM2M {
                client_id: "cid".into(),
                client_secret: Secret::new("s%ecret")
            }
        );
        let e = resolve(Some("c"), &env).unwrap_err().to_string();
        assert!(e.contains("has no host"), "{e}");
        let e = resolve(Some("zz"), &env).unwrap_err().to_string();
        assert!(
            e.contains("\"zz\" is not in") && e.contains("a, b, c"),
            "{e}"
        );
    }

    #[test]
    fn without_a_profile_env_then_default_profile_then_default() {
        let (_d, mut env) = env_with_file(
            "[__settings__]\ndefault_profile = b\n[DEFAULT]\nhost = h0\ntoken = t0\n[b]\nhost = hb\ntoken = tb\n",
        );
        let (host, _, p) = resolve(None, &env).unwrap();
        assert_eq!((host.as_str(), p.as_deref()), ("https://hb/", Some("b")));
        env.databricks.config_profile = Some("DEFAULT".into());
        let (host, _, _) = resolve(None, &env).unwrap();
        assert_eq!(host.as_str(), "https://h0/");
        env.databricks.config_profile = None;
        env.databricks.host = Some("https://env-host".into());
        env.databricks.token = Some("SECRET".into());
        let (host, auth, p) = resolve(None, &env).unwrap();
        assert_eq!((host.as_str(), p), ("https://env-host/", None));
        assert_eq!(auth, Auth::Bearer(Secret::new("SECRET")));
    }

    #[test]
    fn contradictions_and_gaps_are_errors_without_secrets() {
        let (_d, env) = env_with_file(
            "[both]\nhost = h\ntoken = SECRET1\nclient_id = c\nclient_secret = SECRET2\n[half]\nhost = h\nclient_id = c\n[odd]\nhost = h\nauth_type = azure-cli\n[none]\nhost = h\n",
        );
        for (p, want) in [
            ("both", "more than one authorization method"),
            ("half", "both client_id and client_secret"),
            ("odd", "not supported"),
            ("none", "no credentials"),
        ] {
            let e = resolve(Some(p), &env).unwrap_err().to_string();
            assert!(e.contains(want), "{p}: {e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
        let missing = Env {
            databricks: DatabricksEnv {
                config_file: Some("/nonexistent/cfg".into()),
                ..DatabricksEnv::default()
            },
            ..Env::default()
        };
        let e = resolve(Some("p"), &missing).unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/cfg") && e.contains("does not exist"),
            "{e}"
        );
        let e = resolve(None, &missing).unwrap_err().to_string();
        assert!(e.contains("DATABRICKS_HOST"), "{e}");
    }
    /// Adversarial pass: a binary, huge, directory or fifo configuration file is a clear error
    /// naming the file (the fifo hung forever, the huge one was read whole), never a secret.
    #[test]
    fn hostile_configuration_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let tail = "\n[p]\nhost = http://127.0.0.1:1\ntoken = dapiSECRET\n";
        let garbage = dir.path().join("garbage");
        let mut bytes: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        bytes.extend_from_slice(tail.as_bytes());
        std::fs::write(&garbage, bytes).unwrap();
        let huge = dir.path().join("huge");
        std::fs::write(&huge, format!("{tail}[x]\nk = {}\n", "v".repeat(2 << 20))).unwrap();
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        let mut cases = vec![
            (garbage, "not UTF-8 text"),
            (huge, "larger than 1 MiB"),
            (dir.path().to_path_buf(), "a directory"),
        ];
        if made.is_ok_and(|s| s.success()) {
            cases.push((fifo, "nothing could be read within 10 s"));
        }
        for (path, want) in cases {
            let env = Env {
                databricks: DatabricksEnv {
                    config_file: Some(path.display().to_string()),
                    ..DatabricksEnv::default()
                },
                ..Env::default()
            };
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || tx.send(resolve(Some("p"), &env).map(|_| ())));
            let got = rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("{}: still reading after 30 s", path.display()));
            let e = got.unwrap_err().to_string();
            assert!(
                e.contains(want) && e.contains(&path.display().to_string()),
                "{want}: {e}"
            );
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
