//! Unity Catalog model versions' files: a version is created `PENDING_REGISTRATION` with a
//! `storage_location`, the client uploads the files there itself with temporary credentials the
//! registry hands out for that version (`generate-temporary-credentials`), then finalizes it.
//! Also the signature check MLflow's client makes before registering into Unity Catalog.
//!
//! As MLflow's client does (`store/_unity_catalog/registry/rest_store.py`): AWS credentials
//! (access key, secret, session token) go to an S3 client whose endpoint is this side's
//! (`MLFLOW_S3_ENDPOINT_URL`, `MLFLOW_ARCHIVE_DST_*`), with the server-side encryption the answer
//! names; a file the store refuses because the credentials expired or were refused is sent once
//! more with new ones. Azure, GCP and R2 credentials and Databricks' default storage are refused
//! with an error naming them.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result, StoreFailure};
use crate::mlflow::api::registry::RegistryKind;
use crate::mlflow::config::Secret;
use crate::mlflow::http::Body;
use crate::mlflow::json;
use crate::mlflow::retry::Idempotency::{Safe, Unsafe};
use crate::mlflow::store::{Location, Rooted, StoreId};
use crate::mlflow::types::ModelVersion;
use crate::mlflow::{ArtifactFile, ArtifactRoot, Client};

/// The header in which a Databricks workspace names itself on every answer.
const ORG_ID_HEADER: &str = "x-databricks-org-id";

/// The largest `MLmodel` read for its signature.
pub const MAX_MLMODEL: usize = 16 << 20;

/// What `generate-temporary-credentials` answered, secrets wrapped.
#[derive(Debug)]
pub struct TemporaryCredentials {
    /// The credentials themselves, by kind.
    pub kind: CredentialKind,
    /// When they expire (milliseconds since the epoch), if said.
    pub expiration_time: Option<i64>,
    /// `CUSTOMER_HOSTED` or `DEFAULT_STORAGE`.
    pub storage_mode: String,
    /// The server-side encryption uploads must ask for: `AES256` or `aws:kms` (with a key).
    pub sse: Option<(String, Option<String>)>,
}

/// The kind of temporary credentials.
#[derive(Debug)]
pub enum CredentialKind {
    /// `aws_temp_credentials`.
    Aws {
        /// The access key id.
        access_key_id: Secret,
        /// The secret access key.
        secret_access_key: Secret,
        /// The session token.
        session_token: Secret,
    },
    /// Another kind (`azure_user_delegation_sas`, `gcp_oauth_token`, `r2_temp_credentials`), or
    /// none: its name.
    Other(&'static str),
}

#[derive(Deserialize)]
struct CredentialsAnswer {
    #[serde(default)]
    credentials: RawCredentials,
}

#[derive(Deserialize, Default)]
struct RawCredentials {
    #[serde(default)]
    aws_temp_credentials: Option<RawAws>,
    #[serde(default)]
    azure_user_delegation_sas: Option<serde_json::Value>,
    #[serde(default)]
    gcp_oauth_token: Option<serde_json::Value>,
    #[serde(default)]
    r2_temp_credentials: Option<serde_json::Value>,
    #[serde(default, deserialize_with = "json::int64::deserialize")]
    expiration_time: Option<i64>,
    #[serde(default)]
    storage_mode: String,
    #[serde(default)]
    encryption_details: Option<RawEncryption>,
}

#[derive(Deserialize, Default)]
struct RawAws {
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    secret_access_key: String,
    #[serde(default)]
    session_token: String,
}

#[derive(Deserialize, Default)]
struct RawEncryption {
    #[serde(default)]
    sse_encryption_details: Option<RawSse>,
}

#[derive(Deserialize, Default)]
struct RawSse {
    #[serde(default)]
    algorithm: String,
    #[serde(default)]
    aws_kms_key_arn: String,
}

impl From<RawCredentials> for TemporaryCredentials {
    fn from(r: RawCredentials) -> Self {
        let kind = match (
            r.aws_temp_credentials,
            &r.azure_user_delegation_sas,
            &r.gcp_oauth_token,
            &r.r2_temp_credentials,
        ) {
            (Some(a), ..) => CredentialKind::Aws {
                access_key_id: Secret::new(a.access_key_id),
                secret_access_key: Secret::new(a.secret_access_key),
                session_token: Secret::new(a.session_token),
            },
            (None, Some(_), ..) => CredentialKind::Other("azure_user_delegation_sas"),
            (None, None, Some(_), _) => CredentialKind::Other("gcp_oauth_token"),
            (None, None, None, Some(_)) => CredentialKind::Other("r2_temp_credentials"),
            (None, None, None, None) => CredentialKind::Other("none"),
        };
        let sse = r
            .encryption_details
            .and_then(|e| e.sse_encryption_details)
            .and_then(|s| match s.algorithm.as_str() {
                "AWS_SSE_S3" => Some(("AES256".to_string(), None)),
                "AWS_SSE_KMS" => Some((
                    "aws:kms".to_string(),
                    Some(s.aws_kms_key_arn).filter(|k| !k.is_empty()),
                )),
                _ => None,
            });
        TemporaryCredentials {
            kind,
            expiration_time: r.expiration_time,
            storage_mode: r.storage_mode,
            sse,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A store client for one version's storage location, with the credentials it was built from.
struct VersionStore {
    root: Rooted,
    /// When to ask for new credentials before the next file (milliseconds since the epoch).
    renew_at: Option<i64>,
}

/// What [`Client::upload_model_version_files`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uploaded {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Times new temporary credentials were asked for after the first.
    pub renewals: u64,
}

impl Client {
    fn require_uc(&self, call: &str) -> Result<()> {
        if self.registry_kind() == RegistryKind::UnityCatalog {
            Ok(())
        } else {
            Err(Error::Usage(format!(
                "{call}: only Unity Catalog has this endpoint ({} is not a databricks-uc registry)",
                self.server()
            )))
        }
    }

    /// Temporary credentials for the storage of Unity Catalog version `name`/`version`, to read
    /// it, or to read and write it when `write`.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); [`Error::Usage`] on a
    /// client whose registry is not Unity Catalog.
    pub async fn generate_temporary_credentials(
        &self,
        name: &str,
        version: &str,
        write: bool,
    ) -> Result<TemporaryCredentials> {
        let call = format!(
            "POST model-versions/generate-temporary-credentials (model {name:?} version {version})"
        );
        self.require_uc(&call)?;
        let operation = if write {
            "MODEL_VERSION_OPERATION_READ_WRITE"
        } else {
            "MODEL_VERSION_OPERATION_READ"
        };
        let a: CredentialsAnswer = self
            .registry_call(
                Method::POST,
                "model-versions/generate-temporary-credentials",
                &json!({ "name": name, "version": version, "operation": operation }),
                &call,
                Safe,
            )
            .await?;
        Ok(a.credentials.into())
    }

    /// Marks Unity Catalog version `name`/`version` `READY` once its files are uploaded. A lost
    /// answer is settled by reading the version.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); [`Error::Usage`] on a
    /// client whose registry is not Unity Catalog.
    pub async fn finalize_model_version(&self, name: &str, version: &str) -> Result<ModelVersion> {
        #[derive(Deserialize)]
        struct Answer {
            model_version: ModelVersion,
        }
        let call = format!("POST model-versions/finalize (model {name:?} version {version})");
        self.require_uc(&call)?;
        let body = json!({ "name": name, "version": version });
        let (call, body) = (&call, &body);
        self.create_reconciled(
            call,
            move || async move {
                let a: Answer = self
                    .registry_call(Method::POST, "model-versions/finalize", body, call, Unsafe)
                    .await?;
                Ok(a.model_version)
            },
            Some(move || async move {
                let v = self.get_model_version(name, version).await?;
                Ok(Some(v).filter(|v| v.status == "READY"))
            }),
        )
        .await
    }

    /// The Databricks workspace id of the tracking server that holds `run_id` (what Unity
    /// Catalog calls `run_tracking_server_id`): the `x-databricks-org-id` header of its
    /// `runs/get` answer, as MLflow's client reads it; `None` on a server that is not a
    /// Databricks workspace or does not say.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors).
    pub async fn tracking_server_id(&self, run_id: &str) -> Result<Option<String>> {
        if !self.config().is_databricks() {
            return Ok(None);
        }
        let call = format!("GET runs/get (run {run_id})");
        let mut url = self.api_url("runs/get");
        url.query_pairs_mut().append_pair("run_id", run_id);
        let resp = self.send(Method::GET, url, Body::None, &call, Safe).await?;
        Ok(resp
            .headers()
            .get(ORG_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|v| !v.is_empty() && *v != "0")
            .map(str::to_string))
    }

    /// The first `limit` bytes at most of file `rel` of the artifact tree at `root`, and whether
    /// it is longer; `None` when there is no such file.
    ///
    /// # Errors
    ///
    /// As [`Client::download_artifact`].
    pub async fn read_artifact_head(
        &self,
        root: &ArtifactRoot,
        rel: &str,
        limit: usize,
    ) -> Result<Option<(Bytes, bool)>> {
        let d = match self.download_artifact(root, rel, None).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut body = d.body;
        let mut buf = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            if buf.len() + chunk.len() > limit {
                let take = limit - buf.len();
                buf.extend_from_slice(&chunk[..take]);
                return Ok(Some((buf.freeze(), true)));
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(Some((buf.freeze(), false)))
    }

    /// A store client for the storage of Unity Catalog version `name`/`version`, with new
    /// read-write temporary credentials.
    async fn version_store(
        &self,
        name: &str,
        version: &str,
        storage_location: &str,
    ) -> Result<VersionStore> {
        let what = format!("model {name:?} version {version}");
        let creds = self
            .generate_temporary_credentials(name, version, true)
            .await?;
        if creds.storage_mode == "DEFAULT_STORAGE" {
            return Err(Error::Config(format!(
                "{what}: Unity Catalog keeps it in Databricks' default storage (storage mode DEFAULT_STORAGE, written through the Files API's presigned URLs), which mlflow-archive does not write (README \"Not carried\")"
            )));
        }
        let (key, secret, token) = match &creds.kind {
            CredentialKind::Aws {
                access_key_id,
                secret_access_key,
                session_token,
            } => (access_key_id, secret_access_key, session_token),
            CredentialKind::Other(kind) => {
                return Err(Error::Config(format!(
                    "{what}: Unity Catalog handed out temporary credentials of kind {kind} for {storage_location}; mlflow-archive writes Unity Catalog storage on AWS S3 only (README \"Not carried\")"
                )));
            }
        };
        let (id, prefix) = match Location::parse(storage_location)? {
            Location::Store {
                store: id @ StoreId::S3 { .. },
                prefix,
            } => (id, prefix),
            _ => {
                return Err(Error::Protocol {
                    call: format!("{what}: storage location"),
                    server: self.server().to_string(),
                    detail: format!(
                        "AWS credentials were handed out for {storage_location:?}, which is not an s3:// location"
                    ),
                });
            }
        };
        let sse_value;
        let kms_key;
        let mut vars: Vec<(&str, &Secret)> = vec![
            ("AWS_ACCESS_KEY_ID", key),
            ("AWS_SECRET_ACCESS_KEY", secret),
        ];
        if !token.expose().is_empty() {
            vars.push(("AWS_SESSION_TOKEN", token));
        }
        if let Some((algorithm, key_id)) = &creds.sse {
            sse_value = Secret::new(algorithm.clone());
            vars.push(("AWS_SERVER_SIDE_ENCRYPTION", &sse_value));
            if let Some(k) = key_id {
                kms_key = Secret::new(k.clone());
                vars.push(("AWS_SSE_KMS_KEY_ID", &kms_key));
            }
        }
        let root =
            self.inner
                .stores
                .root_with_credentials(&id, &prefix, storage_location, "s3", &vars)?;
        Ok(VersionStore {
            root,
            renew_at: creds.expiration_time.map(|exp| renew_at(now_ms(), exp)),
        })
    }

    /// Copies every file of the artifact tree at `from` (read with this client: the proxy, a
    /// store, Databricks' signed URLs) into the storage location of Unity Catalog version
    /// `name`/`version`, with temporary credentials asked for that version. Credentials near
    /// their end are renewed before the next file; a file the store refuses because of its
    /// credentials (expired, denied) is sent once more with new ones.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); [`Error::Config`] for
    /// credentials of a kind other than AWS, or Databricks' default storage; [`Error::Store`]
    /// when the storage refuses a file, also with new credentials.
    pub async fn upload_model_version_files(
        &self,
        name: &str,
        version: &str,
        storage_location: &str,
        from: &ArtifactRoot,
    ) -> Result<Uploaded> {
        let mut store = self.version_store(name, version, storage_location).await?;
        let mut done = Uploaded::default();
        let mut files = self.walk_artifacts(from);
        while let Some(f) = files.next().await {
            let f = f?;
            if store.renew_at.is_some_and(|at| now_ms() >= at) {
                store = self.version_store(name, version, storage_location).await?;
                done.renewals += 1;
            }
            match self.copy_file(&store.root, from, &f).await {
                Ok(()) => {}
                Err(e) if credentials_refused(&e) => {
                    tracing::info!(
                        "model {name:?} version {version}: the storage refused the temporary credentials for {} ({}); asking for new ones",
                        f.path,
                        e.root()
                    );
                    store = self.version_store(name, version, storage_location).await?;
                    done.renewals += 1;
                    self.copy_file(&store.root, from, &f).await.map_err(|e| {
                        e.within(format!(
                            "model {name:?} version {version}: uploading {} with renewed temporary credentials",
                            f.path
                        ))
                    })?;
                }
                Err(e) => return Err(e),
            }
            done.files += 1;
            done.bytes += f.size;
        }
        Ok(done)
    }

    async fn copy_file(&self, to: &Rooted, from: &ArtifactRoot, f: &ArtifactFile) -> Result<()> {
        let d = self.download_artifact(from, &f.path, Some(f.size)).await?;
        to.upload(&f.path, f.size, d.body).await
    }
}

/// When to renew credentials that expire at `expires` (got at `now`): a quarter of their life
/// before, at most a minute before.
fn renew_at(now: i64, expires: i64) -> i64 {
    let life = (expires - now).max(0);
    expires - (life / 4).min(60_000)
}

/// Whether a store refused a write because of its credentials: denied (401/403), or a
/// `400 ExpiredToken` (S3's answer to an expired session token).
fn credentials_refused(e: &Error) -> bool {
    let Error::Store {
        call,
        failure,
        cause,
    } = e.root()
    else {
        return false;
    };
    call.starts_with("uploading")
        && (*failure == StoreFailure::Denied
            || [
                "ExpiredToken",
                "InvalidToken",
                "TokenRefreshRequired",
                "AccessDenied",
                "InvalidAccessKeyId",
            ]
            .iter()
            .any(|c| cause.contains(c)))
}

/// Why an `MLmodel` does not satisfy Unity Catalog, or `None` when its signature has inputs and
/// outputs. Reads the YAML MLflow writes (block style, `signature:` at the top level), and the
/// flow style too.
pub fn signature_problem(mlmodel: &str) -> Option<&'static str> {
    let lines: Vec<&str> = mlmodel.lines().collect();
    let Some(start) = lines.iter().position(|l| {
        l.strip_prefix("signature")
            .is_some_and(|r| r.trim_start().starts_with(':'))
    }) else {
        return Some("its MLmodel has no signature");
    };
    let inline = lines[start]
        .split_once(':')
        .map(|(_, v)| v.trim())
        .unwrap_or("");
    let (inputs, outputs) = if !inline.is_empty() && !inline.starts_with('#') {
        if is_null(inline) {
            return Some("its MLmodel has no signature");
        }
        (flow_value(inline, "inputs"), flow_value(inline, "outputs"))
    } else {
        let block: Vec<&str> = lines[start + 1..]
            .iter()
            .copied()
            .take_while(|l| l.trim().is_empty() || l.starts_with([' ', '\t']))
            .collect();
        (
            block_value(&block, "inputs"),
            block_value(&block, "outputs"),
        )
    };
    match (inputs, outputs) {
        (true, true) => None,
        (false, false) => Some("its MLmodel has no signature"),
        (true, false) => Some("its MLmodel's signature has inputs only"),
        (false, true) => Some("its MLmodel's signature has outputs only"),
    }
}

fn is_null(v: &str) -> bool {
    matches!(
        v.trim(),
        "" | "null" | "Null" | "NULL" | "~" | "''" | "\"\"" | "[]" | "'[]'" | "\"[]\"" | "{}"
    )
}

/// Whether key `key` of the block's first level has a value that is not null.
fn block_value(block: &[&str], key: &str) -> bool {
    let indent = block
        .iter()
        .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| l.len() - l.trim_start().len())
        .unwrap_or(0);
    for (i, l) in block.iter().enumerate() {
        let depth = l.len() - l.trim_start().len();
        if depth != indent {
            continue;
        }
        let Some(rest) = l.trim_start().strip_prefix(key) else {
            continue;
        };
        let Some(value) = rest.trim_start().strip_prefix(':') else {
            continue;
        };
        let value = value.trim();
        if !value.is_empty() && !value.starts_with('#') {
            return !is_null(value);
        }
        // The value is on the lines below, indented further.
        return block[i + 1..]
            .iter()
            .find(|n| !n.trim().is_empty())
            .is_some_and(|n| {
                let d = n.len() - n.trim_start().len();
                d > indent || (d == indent && n.trim_start().starts_with("- "))
            });
    }
    false
}

/// Whether `key` has a value that is not null in a flow mapping (`{inputs: '...', ...}`).
fn flow_value(text: &str, key: &str) -> bool {
    let mut from = 0;
    while let Some(i) = text[from..].find(key) {
        let at = from + i;
        from = at + key.len();
        let before = text[..at].trim_end();
        if !(before.ends_with('{') || before.ends_with(',')) {
            continue;
        }
        let Some(rest) = text[at + key.len()..].trim_start().strip_prefix(':') else {
            continue;
        };
        let value = rest.split([',', '}']).next().unwrap_or("").trim();
        return !is_null(value);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_as_mlflow_writes_them() {
        let full = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.sklearn\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\", \"required\": true}]'\n  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1]}}]'\n  params: null\nmlflow_version: 3.17.2\n";
        assert_eq!(signature_problem(full), None);
        let inputs_only = full.replace(
            "  outputs: '[{\"type\": \"tensor\", \"tensor-spec\": {\"dtype\": \"float64\", \"shape\": [-1]}}]'",
            "  outputs: null",
        );
        assert_eq!(
            signature_problem(&inputs_only),
            Some("its MLmodel's signature has inputs only")
        );
        let none =
            "artifact_path: model\nflavors:\n  python_function: {}\nmlflow_version: 3.17.2\n";
        assert_eq!(
            signature_problem(none),
            Some("its MLmodel has no signature")
        );
        assert_eq!(
            signature_problem("signature: null\n"),
            Some("its MLmodel has no signature")
        );
        // A key named like it deeper down is not the signature.
        let nested = "flavors:\n  x:\n    signature:\n      inputs: a\n      outputs: b\n";
        assert_eq!(
            signature_problem(nested),
            Some("its MLmodel has no signature")
        );
        // Values on the following lines (a block scalar, a list).
        let multi = "signature:\n  inputs: |\n    [{\"type\": \"double\"}]\n  outputs:\n  - a\nsaved_input_example_info: null\n";
        assert_eq!(signature_problem(multi), None);
        let flow = "signature: {inputs: '[{\"type\": \"long\"}]', outputs: '[1]'}\n";
        assert_eq!(signature_problem(flow), None);
        let flow_half = "signature: {inputs: '[1]', outputs: null}\n";
        assert_eq!(
            signature_problem(flow_half),
            Some("its MLmodel's signature has inputs only")
        );
    }

    #[test]
    fn credentials_are_renewed_a_quarter_of_their_life_before_they_end() {
        assert_eq!(renew_at(0, 2_000), 1_500);
        assert_eq!(renew_at(0, 3_600_000), 3_540_000);
        assert_eq!(renew_at(10, 5), 5);
    }

    #[test]
    fn answers_read_by_kind_without_showing_secrets() {
        let raw: CredentialsAnswer = serde_json::from_str(
            r#"{"credentials": {"aws_temp_credentials": {"access_key_id": "AK", "secret_access_key": "SECRET", "session_token": "TOKEN"}, "expiration_time": "1700000000000", "storage_mode": "CUSTOMER_HOSTED", "encryption_details": {"sse_encryption_details": {"algorithm": "AWS_SSE_KMS", "aws_kms_key_arn": "arn:k"}}}}"#,
        )
        .unwrap();
        let c: TemporaryCredentials = raw.credentials.into();
        assert!(matches!(c.kind, CredentialKind::Aws { .. }));
        assert_eq!(c.expiration_time, Some(1_700_000_000_000));
        assert_eq!(
            c.sse,
            Some(("aws:kms".to_string(), Some("arn:k".to_string())))
        );
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("SECRET") && !shown.contains("TOKEN"),
            "{shown}"
        );
        for (field, kind) in [
            ("azure_user_delegation_sas", "azure_user_delegation_sas"),
            ("gcp_oauth_token", "gcp_oauth_token"),
            ("r2_temp_credentials", "r2_temp_credentials"),
        ] {
            let raw: CredentialsAnswer =
                serde_json::from_str(&format!(r#"{{"credentials": {{"{field}": {{}}}}}}"#))
                    .unwrap();
            let c: TemporaryCredentials = raw.credentials.into();
            assert!(
                matches!(c.kind, CredentialKind::Other(k) if k == kind),
                "{c:?}"
            );
        }
    }

    #[test]
    fn only_a_refused_upload_counts_as_refused_credentials() {
        let store = |call: &str, failure, cause: &str| Error::Store {
            call: call.into(),
            failure,
            cause: cause.into(),
        };
        assert!(credentials_refused(&store(
            "uploading s3://b/k/MLmodel",
            StoreFailure::Other,
            "Server returned non-2xx status code: 400 Bad Request: <Error><Code>ExpiredToken</Code></Error>"
        )));
        assert!(credentials_refused(&store(
            "uploading s3://b/k/x",
            StoreFailure::Denied,
            "403"
        )));
        assert!(!credentials_refused(&store(
            "downloading s3://b/k/x",
            StoreFailure::Denied,
            "403"
        )));
        assert!(!credentials_refused(&store(
            "uploading s3://b/k/x",
            StoreFailure::Other,
            "500 InternalError"
        )));
    }
}
