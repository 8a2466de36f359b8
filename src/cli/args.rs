//! Argument groups shared by several commands, converted once into validated settings.

use mlflow_archive::mlflow::{Client, Env, TrackingConfig};

/// The source server (`--src-uri`, else `MLFLOW_TRACKING_URI`).
#[derive(Debug, Clone, clap::Args)]
pub struct SrcServer {
    /// Tracking server to read from [default: $MLFLOW_TRACKING_URI]. Credentials come from
    /// MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD.
    #[arg(long = "src-uri", value_name = "URI")]
    pub src_uri: Option<String>,
}

impl SrcServer {
    /// A client for the source server.
    pub fn client(&self) -> mlflow_archive::Result<Client> {
        Client::new(TrackingConfig::resolve(
            self.src_uri.as_deref(),
            &Env::from_process(),
        )?)
    }
}

/// The destination server (`--dst-uri`, else `MLFLOW_TRACKING_URI`).
#[derive(Debug, Clone, clap::Args)]
pub struct DstServer {
    /// Tracking server to write to [default: $MLFLOW_TRACKING_URI]. Credentials come from
    /// MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/MLFLOW_TRACKING_PASSWORD.
    #[arg(long = "dst-uri", value_name = "URI")]
    pub dst_uri: Option<String>,
}

impl DstServer {
    /// A client for the destination server.
    pub fn client(&self) -> mlflow_archive::Result<Client> {
        Client::new(TrackingConfig::resolve(
            self.dst_uri.as_deref(),
            &Env::from_process(),
        )?)
    }
}

/// A boolean flag's value: `true`/`false` in any case (the Python tool's `True`/`False`), `1`/`0`,
/// `yes`/`no`.
pub fn legacy_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("expected true or false, got {other:?}")),
    }
}
