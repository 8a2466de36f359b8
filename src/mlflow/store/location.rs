//! Artifact locations as MLflow writes them, parsed into the store they name and the key prefix
//! inside it.

use std::fmt;

use crate::error::{Error, Result};

/// Where an object's artifacts are: the tracking server's proxy, or a store the client reads and
/// writes itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// `mlflow-artifacts:/<path>`: through the server's artifact proxy.
    Proxy {
        /// The path under the proxy, without leading or trailing `/`.
        path: String,
    },
    /// `dbfs:/databricks/mlflow-tracking/...`: a Databricks workspace's artifacts, read and
    /// written through the short-lived signed URLs the workspace hands out for one run or logged
    /// model.
    Databricks {
        /// The run or logged model whose credentials open it.
        owner: DbfsOwner,
        /// The path under the owner's artifact root, without leading or trailing `/` (`""` for
        /// the root itself).
        path: String,
    },
    /// A store the client reaches directly.
    Store {
        /// The bucket, container or file system.
        store: StoreId,
        /// The key prefix inside it, without leading or trailing `/` (`""` for its top).
        prefix: String,
    },
}

/// Whose artifact credentials open a `dbfs:/databricks/mlflow-tracking/...` location.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DbfsOwner {
    /// A run (`.../<experiment>/<run>/artifacts`).
    Run(String),
    /// A logged model (`.../<experiment>/logged_models/<model>/artifacts`).
    LoggedModel(String),
}

/// One bucket, container or file system: what a store client is built for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum StoreId {
    /// `s3://bucket/...` (and `s3a://`, `s3n://`).
    S3 {
        /// The bucket.
        bucket: String,
    },
    /// `wasbs://container@account.blob.core.windows.net/...` or
    /// `abfss://container@account.dfs.core.windows.net/...`.
    Azure {
        /// The storage account.
        account: String,
        /// The container (file system, for ADLS Gen2).
        container: String,
        /// The cloud's storage domain after `blob.` or `dfs.`: `core.windows.net`, or a
        /// sovereign cloud's (`core.chinacloudapi.cn`, `core.usgovcloudapi.net`).
        domain: String,
    },
    /// `gs://bucket/...`.
    Gcs {
        /// The bucket.
        bucket: String,
    },
    /// A local (or mounted shared) file system: `file:///path` or `/path`; the prefix is the
    /// absolute path without its leading `/`.
    Local,
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreId::S3 { bucket } => write!(f, "s3 bucket {bucket:?}"),
            StoreId::Azure {
                account, container, ..
            } => {
                write!(f, "azure container {container:?} of account {account:?}")
            }
            StoreId::Gcs { bucket } => write!(f, "gcs bucket {bucket:?}"),
            StoreId::Local => f.write_str("the local file system"),
        }
    }
}

/// Schemes MLflow knows that this client cannot reach, with what to do instead.
const UNREACHABLE: &[(&str, &str)] = &[
    ("hdfs", "HDFS"),
    ("viewfs", "HDFS"),
    ("sftp", "SFTP"),
    ("ftp", "FTP"),
    ("runs", "a runs:/ reference"),
    ("models", "a models:/ reference"),
    ("http", "a plain HTTP artifact server"),
    ("https", "a plain HTTP artifact server"),
    ("uc-volumes", "a Unity Catalog volume"),
    ("oci", "OCI object storage"),
];

impl Location {
    /// Parses an artifact location: `mlflow-artifacts:` (through the server), `s3://`, `s3a://`,
    /// `s3n://`, `gs://`, `wasbs://` / `wasb://`, `abfss://` / `abfs://`, `file:` and absolute
    /// paths.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a scheme this client cannot reach (`hdfs:`, `sftp:`, `ftp:`,
    /// `dbfs:`, ...), a location without its bucket or container, a relative path, or a path with
    /// `.` or `..` segments.
    pub fn parse(uri: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("artifact location {uri:?} {why}"));
        if uri.starts_with('/') {
            return local(uri.trim_start_matches('/'), uri);
        }
        let Some((scheme, rest)) = uri.split_once(':') else {
            return Err(bad(
                "is a relative path: a store location (s3://, gs://, wasbs://, ...) or an absolute path is needed",
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        let location = match scheme.as_str() {
            "mlflow-artifacts" => {
                let path = match rest.strip_prefix("//") {
                    Some(after_host) => after_host.split_once('/').map(|(_, p)| p).unwrap_or(""),
                    None => rest,
                };
                Location::Proxy {
                    path: clean(path, uri)?,
                }
            }
            "s3" | "s3a" | "s3n" => {
                let (bucket, path) = authority(rest).ok_or_else(|| bad("names no bucket"))?;
                Location::Store {
                    store: StoreId::S3 {
                        bucket: bucket.to_string(),
                    },
                    prefix: clean(path, uri)?,
                }
            }
            "gs" => {
                let (bucket, path) = authority(rest).ok_or_else(|| bad("names no bucket"))?;
                Location::Store {
                    store: StoreId::Gcs {
                        bucket: bucket.to_string(),
                    },
                    prefix: clean(path, uri)?,
                }
            }
            "wasbs" | "wasb" | "abfss" | "abfs" => {
                let (host, path) = authority(rest).ok_or_else(|| bad("names no container"))?;
                let (container, host) = host.split_once('@').ok_or_else(|| {
                    bad("names no container: the form is wasbs://<container>@<account>.blob.core.windows.net/<path>")
                })?;
                let (account, service) = host.split_once('.').unwrap_or((host, ""));
                if container.is_empty() || account.is_empty() {
                    return Err(bad("names no container or no storage account"));
                }
                let domain = service
                    .strip_prefix("blob.")
                    .or_else(|| service.strip_prefix("dfs."))
                    .filter(|d| !d.is_empty())
                    .unwrap_or("core.windows.net");
                Location::Store {
                    store: StoreId::Azure {
                        account: account.to_string(),
                        container: container.to_string(),
                        domain: domain.to_string(),
                    },
                    prefix: clean(path, uri)?,
                }
            }
            "dbfs" => dbfs(rest, uri)?,
            "file" => {
                // file:///abs, file:/abs, file://localhost/abs.
                let path = match rest.strip_prefix("//") {
                    Some(r) => {
                        let (host, path) = r.split_once('/').unwrap_or((r, ""));
                        if !host.is_empty() && host != "localhost" {
                            return Err(bad(
                                "names another host: only local (or mounted) paths can be read",
                            ));
                        }
                        path
                    }
                    None => rest.strip_prefix('/').ok_or_else(|| {
                        bad("is a relative path: a file: location must be absolute")
                    })?,
                };
                return local(path, uri);
            }
            other => {
                let what = UNREACHABLE
                    .iter()
                    .find(|(s, _)| *s == other)
                    .map(|(_, w)| format!(" ({w})"))
                    .unwrap_or_default();
                return Err(Error::Config(format!(
                    "artifact location {uri:?}: the scheme {other}:{what} is not supported; mlflow-archive reads and writes mlflow-artifacts: (the server's proxy), s3://, gs://, wasbs://, abfss://, file: and absolute paths"
                )));
            }
        };
        Ok(location)
    }

    /// Checks that the runs of an experiment whose artifact root is `uri` can have their files
    /// read and written: the root parses, or it is a Databricks workspace's
    /// `dbfs:/databricks/mlflow-tracking/<experiment>` (its runs' roots are under it).
    ///
    /// # Errors
    ///
    /// As [`Location::parse`].
    pub fn check_experiment_root(uri: &str) -> Result<()> {
        let tracking = [
            "dbfs:/databricks/mlflow-tracking/",
            "dbfs:///databricks/mlflow-tracking/",
        ];
        if tracking.iter().any(|p| uri.starts_with(p)) && !uri.contains("/../") {
            return Ok(());
        }
        Location::parse(uri).map(drop)
    }

    /// The scheme name of the store, as shown in messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Location::Proxy { .. } => "mlflow-artifacts",
            Location::Databricks { .. } => "dbfs",
            Location::Store { store, .. } => match store {
                StoreId::S3 { .. } => "s3",
                StoreId::Azure { .. } => "azure",
                StoreId::Gcs { .. } => "gs",
                StoreId::Local => "file",
            },
        }
    }
}

/// `dbfs:/databricks/mlflow-tracking/<experiment>/<run>/artifacts[/path]` or
/// `.../<experiment>/logged_models/<model>/artifacts[/path]` (also `dbfs://[PROFILE@]databricks/...`):
/// the only DBFS paths MLflow hands out credentials for.
fn dbfs(rest: &str, uri: &str) -> Result<Location> {
    let path = match rest.strip_prefix("//") {
        Some(r) => {
            let (netloc, path) = r.split_once('/').unwrap_or((r, ""));
            let host = netloc.rsplit('@').next().unwrap_or("");
            if host != "databricks" {
                return Err(Error::Config(format!(
                    "artifact location {:?}: a dbfs: location with a host names the workspace as dbfs://PROFILE@databricks/...",
                    crate::mlflow::config::redact(uri)
                )));
            }
            path
        }
        None => rest,
    };
    let clean_path = clean(path, uri)?;
    let segs: Vec<&str> = clean_path.split('/').collect();
    let owner = match segs.as_slice() {
        [
            "databricks",
            "mlflow-tracking",
            _exp,
            "logged_models",
            model,
            "artifacts",
            ..,
        ] => Some((DbfsOwner::LoggedModel((*model).to_string()), 6)),
        ["databricks", "mlflow-tracking", _exp, run, "artifacts", ..] => {
            Some((DbfsOwner::Run((*run).to_string()), 5))
        }
        _ => None,
    };
    let Some((owner, skip)) = owner else {
        return Err(Error::Config(format!(
            "artifact location {uri:?}: only the DBFS locations of runs and logged models (dbfs:/databricks/mlflow-tracking/<experiment>/<run>/artifacts) can be reached, through the workspace's artifact credentials"
        )));
    };
    Ok(Location::Databricks {
        owner,
        path: segs[skip..].join("/"),
    })
}

/// `//authority/path` split at the first `/` after the authority.
fn authority(rest: &str) -> Option<(&str, &str)> {
    let r = rest.strip_prefix("//")?;
    let (host, path) = r.split_once('/').unwrap_or((r, ""));
    (!host.is_empty()).then_some((host, path))
}

fn local(path: &str, uri: &str) -> Result<Location> {
    let decoded = percent_decode(path);
    Ok(Location::Store {
        store: StoreId::Local,
        prefix: clean(&decoded, uri)?,
    })
}

/// `%20` and friends in a `file:` URI (MLflow writes `file:///a%20b/...` for paths with spaces).
fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

/// The path without its outer `/` and query, refusing `.` and `..` segments.
fn clean(path: &str, uri: &str) -> Result<String> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let path = path.trim_matches('/');
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err(Error::Config(format!(
            "artifact location {uri:?} has a relative segment"
        )));
    }
    Ok(path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(uri: &str) -> (StoreId, String) {
        match Location::parse(uri).unwrap() {
            Location::Store { store, prefix } => (store, prefix),
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn locations_mlflow_writes() {
        assert_eq!(
            Location::parse("mlflow-artifacts://h:5000/1/models/m-1/artifacts/").unwrap(),
            Location::Proxy {
                path: "1/models/m-1/artifacts".into()
            }
        );
        let s3 = |b: &str| StoreId::S3 { bucket: b.into() };
        assert_eq!(
            store("s3://b/p/1/r/artifacts"),
            (s3("b"), "p/1/r/artifacts".into())
        );
        assert_eq!(store("s3a://b"), (s3("b"), String::new()));
        assert_eq!(
            store("gs://g/x/"),
            (StoreId::Gcs { bucket: "g".into() }, "x".into())
        );
        let az = StoreId::Azure {
            account: "acct".into(),
            container: "c".into(),
            domain: "core.windows.net".into(),
        };
        assert_eq!(
            store("wasbs://c@acct.blob.core.windows.net/mlruns/1"),
            (az.clone(), "mlruns/1".into())
        );
        assert_eq!(
            store("abfss://c@acct.dfs.core.windows.net/mlruns/1"),
            (az, "mlruns/1".into())
        );
        assert_eq!(
            store("wasbs://c@acct.blob.core.chinacloudapi.cn/m").0,
            StoreId::Azure {
                account: "acct".into(),
                container: "c".into(),
                domain: "core.chinacloudapi.cn".into(),
            }
        );
        assert_eq!(
            store("/srv/ml runs/1"),
            (StoreId::Local, "srv/ml runs/1".into())
        );
        assert_eq!(
            store("file:///srv/ml%20runs/1"),
            (StoreId::Local, "srv/ml runs/1".into())
        );
        assert_eq!(store("file:/srv/x"), (StoreId::Local, "srv/x".into()));
        assert_eq!(
            store("file://localhost/srv/x"),
            (StoreId::Local, "srv/x".into())
        );
    }

    #[test]
    fn dbfs_locations_name_their_run_or_model() {
        let run = |id: &str, path: &str| Location::Databricks {
            owner: DbfsOwner::Run(id.into()),
            path: path.into(),
        };
        assert_eq!(
            Location::parse("dbfs:/databricks/mlflow-tracking/3022/abc/artifacts").unwrap(),
            run("abc", "")
        );
        assert_eq!(
            Location::parse(
                "dbfs://prod@databricks/databricks/mlflow-tracking/3/abc/artifacts/model/"
            )
            .unwrap(),
            run("abc", "model")
        );
        assert_eq!(
            Location::parse("dbfs:/databricks/mlflow-tracking/3/logged_models/m-1/artifacts/a/b")
                .unwrap(),
            Location::Databricks {
                owner: DbfsOwner::LoggedModel("m-1".into()),
                path: "a/b".into()
            }
        );
    }

    #[test]
    fn unreachable_locations_name_their_scheme() {
        for (uri, want) in [
            ("hdfs://nn:8020/x", "the scheme hdfs: (HDFS)"),
            ("sftp://u@h/x", "sftp: (SFTP)"),
            ("dbfs:/databricks/mlflow", "only the DBFS locations of runs"),
            (
                "dbfs:/mnt/x/1/r/artifacts",
                "only the DBFS locations of runs",
            ),
            ("dbfs://other/databricks/x", "dbfs://PROFILE@databricks"),
            ("ftp://h/x", "ftp: (FTP)"),
            ("weird://x", "the scheme weird: is not supported"),
            ("relative/path", "relative path"),
            ("s3://", "names no bucket"),
            ("wasbs://acct.blob.core.windows.net/x", "names no container"),
            ("file://otherhost/x", "another host"),
            ("s3://b/a/../c", "relative segment"),
        ] {
            let e = Location::parse(uri).unwrap_err().to_string();
            assert!(e.contains(want), "{uri}: {e}");
            assert!(e.contains(uri), "{uri}: {e}");
        }
    }
}
