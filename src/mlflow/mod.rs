//! An async client for the MLflow tracking server's REST API (reqwest + tokio).
//!
//! It knows nothing of archives: it speaks the server's own types ([`types`]) and leaves mapping
//! them to records to `transfer`. Every call names its request and object in its errors,
//! retries transient failures as [`retry`] allows, and never collects a paged listing or a metric
//! history whole: those are streams.

#![warn(clippy::missing_errors_doc)]

pub mod api;
pub mod config;
pub mod databricks;
pub(crate) mod http;
pub mod json;
pub(crate) mod otlp;
pub(crate) mod paginate;
pub mod retry;
pub mod store;
pub mod types;

pub use api::artifacts::{ArtifactDownload, ArtifactFile, ArtifactRoot};
pub use api::datasets::{EvaluationDataset, record_for_upsert};
pub use api::inventory::Uncarried;
pub use api::logged_models::CreateLoggedModel;
pub use api::registry::CreateModelVersion;
pub use api::runs::{CreateRun, UpdateRun};
pub use api::traces::assessment_order;
pub use config::{Auth, Env, Secret, TrackingConfig};
pub use http::{Client, ClientBuilder, Concurrency, ConcurrencySummary};
pub use retry::RetryConfig;

use crate::error::Result;

impl Client {
    /// What the server says of itself (`/api/3.0/mlflow/server-info`, MLflow 3).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a server before MLflow 3 has
    /// no such endpoint.
    pub async fn server_info(&self) -> Result<types::ServerInfo> {
        let call = "GET server-info";
        self.get_url(self.url("api/3.0/mlflow/server-info"), call)
            .await
    }
}
