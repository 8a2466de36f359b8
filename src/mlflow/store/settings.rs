//! Store credentials and endpoints, read the way MLflow's own client reads them, for one side of
//! a transfer.
//!
//! Each side (the source, the destination) reads the plain variables (`AWS_ACCESS_KEY_ID`,
//! `AZURE_STORAGE_CONNECTION_STRING`, `GOOGLE_APPLICATION_CREDENTIALS`, ...) unless it has its
//! own: `MLFLOW_ARCHIVE_SRC_<NAME>` for the source and `MLFLOW_ARCHIVE_DST_<NAME>` for the
//! destination replace `<NAME>` for that side alone. When a side sets any credential variable of
//! a store kind for itself, it takes none of the plain credential variables of that kind (the key
//! of one account never goes with the secret or token of another); endpoints, regions and TLS
//! settings fall back one by one.

use std::collections::BTreeMap;
use std::fmt;

use crate::mlflow::config::Secret;

/// Which side's variables to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Only the plain variables (a library user with one set of credentials).
    Plain,
    /// The source: `MLFLOW_ARCHIVE_SRC_<NAME>` first.
    Source,
    /// The destination: `MLFLOW_ARCHIVE_DST_<NAME>` first.
    Destination,
}

impl Side {
    /// The prefix of this side's own variables.
    pub fn prefix(self) -> Option<&'static str> {
        match self {
            Side::Plain => None,
            Side::Source => Some("MLFLOW_ARCHIVE_SRC_"),
            Side::Destination => Some("MLFLOW_ARCHIVE_DST_"),
        }
    }
}

/// The store variables one side uses, as a snapshot. Values are secrets: `Debug` shows names only.
#[derive(Clone, Default)]
pub struct StoreSettings {
    vars: BTreeMap<String, Secret>,
}

impl fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.vars.keys()).finish()
    }
}

/// The variables that say who the client is, per store kind: a side that sets any of a kind's for
/// itself takes none of that kind's plain ones.
fn credential_kind(name: &str) -> Option<&'static str> {
    const S3: &[&str] = &[
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    ];
    if S3.contains(&name) {
        Some("s3")
    } else if name.starts_with("AZURE_") && name != "AZURE_STORAGE_ENDPOINT" {
        Some("azure")
    } else if name == "GOOGLE_APPLICATION_CREDENTIALS" || name == "GOOGLE_SERVICE_ACCOUNT" {
        Some("gcs")
    } else {
        None
    }
}

/// Whether a plain variable is one a store reads.
fn is_store_var(name: &str) -> bool {
    name.starts_with("AWS_")
        || name.starts_with("AZURE_")
        || name.starts_with("MLFLOW_S3_")
        || name.starts_with("GOOGLE_")
        || name == "STORAGE_EMULATOR_HOST"
        || name == "MLFLOW_GCS_DEFAULT_TIMEOUT"
}

impl StoreSettings {
    /// The settings of `side` from the process environment (read once, now).
    pub fn from_process(side: Side) -> Self {
        Self::from_vars(
            side,
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// The settings of `side` from the given variables (for tests and for callers with their own
    /// configuration). Empty values count as unset.
    pub fn from_vars(side: Side, vars: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut own = BTreeMap::new();
        let mut plain = BTreeMap::new();
        for (k, v) in vars {
            if v.is_empty() {
                continue;
            }
            if let Some(name) = side.prefix().and_then(|p| k.strip_prefix(p)) {
                if is_store_var(name) {
                    own.insert(name.to_string(), Secret::new(v));
                }
            } else if is_store_var(&k) {
                plain.insert(k, Secret::new(v));
            }
        }
        let own_kinds: Vec<&str> = own.keys().filter_map(|k| credential_kind(k)).collect();
        for (k, v) in plain {
            let taken_over = credential_kind(&k).is_some_and(|kind| own_kinds.contains(&kind));
            if !taken_over {
                own.entry(k).or_insert(v);
            }
        }
        StoreSettings { vars: own }
    }

    /// A variable's value for this side.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(Secret::expose)
    }

    /// Every variable whose name starts with `prefix`, for this side.
    pub fn with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.vars
            .iter()
            .filter(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// Whether `name` is set.
    pub fn has(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }

    /// These settings with every credential variable of store kind `kind` (`"s3"`, `"azure"`,
    /// `"gcs"`) replaced by `credentials` (temporary ones a server handed out): endpoints,
    /// regions and TLS settings stay as this side has them.
    pub(crate) fn with_credentials(&self, kind: &str, credentials: &[(&str, &Secret)]) -> Self {
        let mut vars: BTreeMap<String, Secret> = self
            .vars
            .iter()
            .filter(|(k, _)| credential_kind(k) != Some(kind))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in credentials {
            vars.insert((*k).to_string(), (*v).clone());
        }
        StoreSettings { vars }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn each_side_reads_its_own_then_the_plain_variables() {
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "plain-key"),
            ("AWS_SECRET_ACCESS_KEY", "plain-secret"),
            ("AWS_SESSION_TOKEN", "plain-token"),
            ("MLFLOW_S3_ENDPOINT_URL", "http://plain:9000"),
            ("AWS_REGION", "eu-west-1"),
            ("MLFLOW_ARCHIVE_DST_AWS_ACCESS_KEY_ID", "dst-key"),
            ("MLFLOW_ARCHIVE_DST_AWS_SECRET_ACCESS_KEY", "dst-secret"),
            (
                "MLFLOW_ARCHIVE_DST_MLFLOW_S3_ENDPOINT_URL",
                "http://dst:9000",
            ),
            (
                "MLFLOW_ARCHIVE_SRC_AZURE_STORAGE_CONNECTION_STRING",
                "src-conn",
            ),
            ("HOME", "/root"),
            ("MLFLOW_ARCHIVE_DST_HOME", "/nope"),
        ]);
        let src = StoreSettings::from_vars(Side::Source, env.clone());
        assert_eq!(src.get("AWS_ACCESS_KEY_ID"), Some("plain-key"));
        assert_eq!(src.get("AWS_SESSION_TOKEN"), Some("plain-token"));
        assert_eq!(src.get("AZURE_STORAGE_CONNECTION_STRING"), Some("src-conn"));
        assert_eq!(src.get("HOME"), None);
        let dst = StoreSettings::from_vars(Side::Destination, env.clone());
        assert_eq!(dst.get("AWS_ACCESS_KEY_ID"), Some("dst-key"));
        assert_eq!(dst.get("AWS_SECRET_ACCESS_KEY"), Some("dst-secret"));
        // The plain token belongs to the plain key: it does not go with the destination's.
        assert_eq!(dst.get("AWS_SESSION_TOKEN"), None);
        // Settings that are not credentials fall back one by one.
        assert_eq!(dst.get("MLFLOW_S3_ENDPOINT_URL"), Some("http://dst:9000"));
        assert_eq!(dst.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(dst.get("AZURE_STORAGE_CONNECTION_STRING"), None);
        let plain = StoreSettings::from_vars(Side::Plain, env);
        assert_eq!(plain.get("AWS_ACCESS_KEY_ID"), Some("plain-key"));
        let shown = format!("{dst:?}");
        assert!(
            !shown.contains("dst-secret") && shown.contains("AWS_ACCESS_KEY_ID"),
            "{shown}"
        );
    }

    #[test]
    fn temporary_credentials_replace_every_credential_of_their_kind() {
        let env = vars(&[
            ("AWS_ACCESS_KEY_ID", "plain-key"),
            ("AWS_SECRET_ACCESS_KEY", "plain-secret"),
            ("AWS_PROFILE", "dev"),
            (
                "MLFLOW_ARCHIVE_DST_MLFLOW_S3_ENDPOINT_URL",
                "http://dst:9000",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("AZURE_STORAGE_ACCESS_KEY", "az"),
        ]);
        let dst = StoreSettings::from_vars(Side::Destination, env);
        let key = Secret::new("tmp-key");
        let token = Secret::new("tmp-token");
        let t = dst.with_credentials(
            "s3",
            &[("AWS_ACCESS_KEY_ID", &key), ("AWS_SESSION_TOKEN", &token)],
        );
        assert_eq!(t.get("AWS_ACCESS_KEY_ID"), Some("tmp-key"));
        assert_eq!(t.get("AWS_SESSION_TOKEN"), Some("tmp-token"));
        assert_eq!(t.get("AWS_SECRET_ACCESS_KEY"), None);
        assert_eq!(t.get("AWS_PROFILE"), None);
        assert_eq!(t.get("MLFLOW_S3_ENDPOINT_URL"), Some("http://dst:9000"));
        assert_eq!(t.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(t.get("AZURE_STORAGE_ACCESS_KEY"), Some("az"));
    }
}
