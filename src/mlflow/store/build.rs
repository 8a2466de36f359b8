//! Store clients built from one side's settings, as MLflow's client would find its credentials.

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, ObjectStore};

use super::location::StoreId;
use super::settings::StoreSettings;
use crate::error::{Error, Result};

pub(super) struct Options {
    pub retry: object_store::RetryConfig,
    pub read_timeout: Duration,
    pub connect_timeout: Duration,
}

impl Options {
    fn client(&self, settings: &StoreSettings) -> Result<ClientOptions> {
        // A stalled read fails (and is retried) after `read_timeout`; a whole request may take as
        // long as its file needs.
        let mut o = ClientOptions::new()
            .with_timeout_disabled()
            .with_read_timeout(self.read_timeout)
            .with_connect_timeout(self.connect_timeout);
        if truthy("MLFLOW_S3_IGNORE_TLS", settings.get("MLFLOW_S3_IGNORE_TLS"))? {
            o = o.with_allow_invalid_certificates(true);
        }
        Ok(o)
    }
}

fn truthy(name: &str, v: Option<&str>) -> Result<bool> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("false" | "0" | "no") => Ok(false),
        Some("true" | "1" | "yes") => Ok(true),
        Some(other) => Err(Error::Config(format!(
            "{name} must be true or false, not {other:?}"
        ))),
    }
}

fn config_error(store: &StoreId, e: object_store::Error) -> Error {
    Error::Config(format!(
        "cannot set up a client for {store}: {}",
        super::scrub(&e.to_string())
    ))
}

/// A client for one bucket, container or file system.
pub(super) fn store(
    id: &StoreId,
    settings: &StoreSettings,
    options: &Options,
) -> Result<Arc<dyn ObjectStore>> {
    // reqwest is built without a default TLS provider; ring is ours (as for the tracking client).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = options.client(settings)?;
    let store: Arc<dyn ObjectStore> = match id {
        StoreId::Local => Arc::new(LocalFileSystem::new()),
        StoreId::S3 { bucket } => Arc::new(
            s3(bucket, settings, client)?
                .with_retry(options.retry.clone())
                .build()
                .map_err(|e| config_error(id, e))?,
        ),
        StoreId::Azure {
            account,
            container,
            domain,
        } => Arc::new(
            azure(account, container, domain, settings, client)?
                .with_retry(options.retry.clone())
                .build()
                .map_err(|e| config_error(id, e))?,
        ),
        StoreId::Gcs { bucket } => Arc::new(
            gcs(bucket, settings, client)
                .with_retry(options.retry.clone())
                .build()
                .map_err(|e| config_error(id, e))?,
        ),
    };
    Ok(store)
}

/// S3: every `AWS_*` variable `object_store` knows (keys, token, region, web identity, container
/// credentials, `AWS_ENDPOINT_URL`), `MLFLOW_S3_ENDPOINT_URL` over `AWS_ENDPOINT_URL` (as MLflow),
/// and a profile of `~/.aws/credentials` / `~/.aws/config` when no key is set.
fn s3(bucket: &str, settings: &StoreSettings, client: ClientOptions) -> Result<AmazonS3Builder> {
    // Client options first: the settings below adjust them.
    let mut b = AmazonS3Builder::new().with_client_options(client);
    for (k, v) in settings.with_prefix("AWS_") {
        if let Ok(key) = k.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    let endpoint = settings
        .get("MLFLOW_S3_ENDPOINT_URL")
        .or(settings.get("AWS_ENDPOINT_URL_S3"))
        .or(settings.get("AWS_ENDPOINT_URL"));
    if let Some(e) = endpoint {
        b = b
            .with_endpoint(e.trim_end_matches('/'))
            .with_allow_http(e.starts_with("http://"));
    }
    let has_keys = settings.has("AWS_ACCESS_KEY_ID");
    let has_region = settings.has("AWS_REGION") || settings.has("AWS_DEFAULT_REGION");
    if (!has_keys || !has_region)
        && let Some(p) = profile::read(settings)?
    {
        if !has_keys && let (Some(id), Some(secret)) = (&p.key_id, &p.secret) {
            b = b
                .with_access_key_id(id.expose())
                .with_secret_access_key(secret.expose());
            if let Some(t) = &p.token {
                b = b.with_token(t.expose());
            }
        }
        if !has_region && let Some(r) = &p.region {
            b = b.with_region(r);
        }
    }
    Ok(b.with_bucket_name(bucket))
}

/// Azure Blob / ADLS Gen2: `AZURE_STORAGE_CONNECTION_STRING` (account key, SAS, blob endpoint),
/// `AZURE_STORAGE_ACCESS_KEY` (MLflow's name for the account key), and every `AZURE_*` variable
/// `object_store` knows (service principal: `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`,
/// `AZURE_TENANT_ID`; federated tokens; managed identity). The account is the location's.
fn azure(
    account: &str,
    container: &str,
    domain: &str,
    settings: &StoreSettings,
    client: ClientOptions,
) -> Result<MicrosoftAzureBuilder> {
    let mut b = MicrosoftAzureBuilder::new().with_client_options(client);
    if domain != "core.windows.net" {
        // A sovereign cloud: its own blob endpoint (a connection string's `BlobEndpoint` wins).
        b = b.with_endpoint(format!("https://{account}.blob.{domain}"));
    }
    for (k, v) in settings.with_prefix("AZURE_") {
        if k == "AZURE_STORAGE_CONNECTION_STRING" || k == "AZURE_STORAGE_ACCOUNT_NAME" {
            continue;
        }
        if let Ok(key) = k.to_ascii_lowercase().parse::<AzureConfigKey>() {
            b = b.with_config(key, v);
        }
    }
    if let Some(cs) = settings.get("AZURE_STORAGE_CONNECTION_STRING") {
        let mut endpoint = None;
        for part in cs.split(';') {
            let Some((k, v)) = part.split_once('=') else {
                continue;
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "accountkey" => b = b.with_access_key(v.trim()),
                "sharedaccesssignature" => {
                    b = b.with_config(AzureConfigKey::SasKey, v.trim().trim_start_matches('?'));
                }
                "blobendpoint" => endpoint = Some(v.trim().trim_end_matches('/').to_string()),
                "usedevelopmentstorage" if v.trim().eq_ignore_ascii_case("true") => {
                    b = b.with_use_emulator(true);
                }
                "accountname" if !v.trim().eq_ignore_ascii_case(account) => {
                    return Err(Error::Config(format!(
                        "AZURE_STORAGE_CONNECTION_STRING is for the storage account {:?}, the artifact location names {account:?}",
                        v.trim()
                    )));
                }
                _ => {}
            }
        }
        if let Some(e) = endpoint {
            b = b.with_allow_http(e.starts_with("http://")).with_endpoint(e);
        }
    }
    Ok(b.with_account(account).with_container_name(container))
}

/// GCS: `GOOGLE_APPLICATION_CREDENTIALS` (a service account or user credentials file), else the
/// well-known gcloud file or the metadata server; `STORAGE_EMULATOR_HOST` as the Python client.
fn gcs(bucket: &str, settings: &StoreSettings, client: ClientOptions) -> GoogleCloudStorageBuilder {
    let emulator = settings.get("STORAGE_EMULATOR_HOST");
    let client = client.with_allow_http(emulator.is_some());
    let mut b = GoogleCloudStorageBuilder::new()
        .with_client_options(client)
        .with_bucket_name(bucket);
    if let Some(path) = settings.get("GOOGLE_APPLICATION_CREDENTIALS") {
        b = b.with_application_credentials(path);
    }
    if let Some(host) = emulator {
        let base = if host.contains("://") {
            host.to_string()
        } else {
            format!("http://{host}")
        };
        // An emulator takes any token; without one the client would ask the cloud's metadata
        // service for a token before each write.
        let token = object_store::gcp::GcpCredential {
            bearer: "emulator".into(),
        };
        b = b
            .with_base_url(base.trim_end_matches('/'))
            .with_credentials(Arc::new(object_store::StaticCredentialProvider::new(token)));
    }
    b
}

/// The AWS shared files, read as the AWS CLI and boto3 do for the keys and region of a profile.
mod profile {
    use std::path::PathBuf;

    use super::StoreSettings;
    use crate::error::{Error, Result};
    use crate::mlflow::config::Secret;

    #[derive(Default)]
    pub(super) struct Profile {
        pub key_id: Option<Secret>,
        pub secret: Option<Secret>,
        pub token: Option<Secret>,
        pub region: Option<String>,
    }

    fn home() -> Option<PathBuf> {
        std::env::var_os("HOME").map(PathBuf::from)
    }

    /// The profile `AWS_PROFILE` names (else `default`), or `None` when the files lack it; an
    /// explicitly named profile that is missing is an error.
    pub(super) fn read(settings: &StoreSettings) -> Result<Option<Profile>> {
        let named = settings.get("AWS_PROFILE");
        let name = named.unwrap_or("default");
        let credentials = settings
            .get("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/credentials")));
        let config = settings
            .get("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home().map(|h| h.join(".aws/config")));
        let mut p = Profile::default();
        let mut found = false;
        let config_section = if name == "default" {
            "default".to_string()
        } else {
            format!("profile {name}")
        };
        for (file, section) in [(credentials, name.to_string()), (config, config_section)] {
            let Some(file) = file else { continue };
            let text = match std::fs::read_to_string(&file) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(format!("reading {}", file.display()), e)),
            };
            for (k, v) in section_entries(&text, &section) {
                found = true;
                match k.as_str() {
                    "aws_access_key_id" => p.key_id = p.key_id.or(Some(Secret::new(v))),
                    "aws_secret_access_key" => p.secret = p.secret.or(Some(Secret::new(v))),
                    "aws_session_token" => p.token = p.token.or(Some(Secret::new(v))),
                    "region" => p.region = p.region.or(Some(v)),
                    _ => {}
                }
            }
        }
        if !found {
            return match named {
                Some(n) => Err(Error::Config(format!(
                    "AWS_PROFILE={n:?}: no such profile in ~/.aws/credentials or ~/.aws/config"
                ))),
                None => Ok(None),
            };
        }
        Ok(Some(p))
    }

    /// The `key = value` lines of `[section]` in an INI file.
    pub(super) fn section_entries(text: &str, section: &str) -> Vec<(String, String)> {
        let mut inside = false;
        let mut out = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                inside = name.trim() == section;
                continue;
            }
            if inside && let Some((k, v)) = line.split_once('=') {
                out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::profile::section_entries;
    use super::*;
    use crate::mlflow::store::settings::Side;

    #[test]
    fn aws_profiles_are_read_from_the_shared_files() {
        let text = "[default]\naws_access_key_id = D\n\n[other]\n# note\nAWS_ACCESS_KEY_ID=O\naws_secret_access_key = S\n";
        assert_eq!(
            section_entries(text, "other"),
            vec![
                ("aws_access_key_id".to_string(), "O".to_string()),
                ("aws_secret_access_key".to_string(), "S".to_string())
            ]
        );
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("credentials");
        let config = dir.path().join("config");
        std::fs::write(&creds, text).unwrap();
        std::fs::write(&config, "[profile other]\nregion = eu-north-1\n").unwrap();
        let settings = |profile: &str| {
            StoreSettings::from_vars(
                Side::Plain,
                vec![
                    ("AWS_PROFILE".to_string(), profile.to_string()),
                    (
                        "AWS_SHARED_CREDENTIALS_FILE".to_string(),
                        creds.display().to_string(),
                    ),
                    ("AWS_CONFIG_FILE".to_string(), config.display().to_string()),
                ],
            )
        };
        let p = profile::read(&settings("other")).unwrap().unwrap();
        assert_eq!(p.key_id.unwrap().expose(), "O");
        assert_eq!(p.secret.unwrap().expose(), "S");
        assert_eq!(p.region.as_deref(), Some("eu-north-1"));
        let e = profile::read(&settings("nope")).err().unwrap().to_string();
        assert!(e.contains("no such profile"), "{e}");
    }

    #[test]
    fn a_connection_string_for_another_account_is_refused() {
        let s = StoreSettings::from_vars(
            Side::Plain,
            vec![(
                "AZURE_STORAGE_CONNECTION_STRING".to_string(),
                "DefaultEndpointsProtocol=http;AccountName=other;AccountKey=SECRETKEY;".to_string(),
            )],
        );
        let e = azure("acct", "c", "core.windows.net", &s, ClientOptions::new())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("\"other\"") && !e.contains("SECRETKEY"), "{e}");
    }
}
