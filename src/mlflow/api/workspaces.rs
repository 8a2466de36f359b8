//! MLflow workspaces (MLflow 3.17, `mlflow server --enable-workspaces`): namespaces that each
//! hold their own experiments, registered models, prompts and datasets. A request names its
//! workspace with the header `X-MLFLOW-WORKSPACE` ([`Client::in_workspace`]); a server without
//! workspaces refuses every request that names one, so the header is sent only after
//! [`Client::workspaces_enabled`] said yes.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::mlflow::Client;
use crate::mlflow::retry::Idempotency::Unsafe;

/// A workspace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Workspace {
    /// Its name (`default` always exists).
    pub name: String,
    /// Its description.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

#[derive(Deserialize, Default)]
struct ServerInfo {
    #[serde(default)]
    workspaces_enabled: bool,
}

#[derive(Deserialize, Default)]
struct ListAnswer {
    #[serde(default)]
    workspaces: Vec<Workspace>,
}

/// The name of the workspace every server with workspaces has.
pub const DEFAULT_WORKSPACE: &str = "default";

impl Client {
    /// Whether the server has workspaces (`GET /api/3.0/mlflow/server-info`); a server that
    /// predates that endpoint has none.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors), but a server without the
    /// endpoint (not found, unsupported).
    pub async fn workspaces_enabled(&self) -> Result<bool> {
        let call = "GET server-info";
        match self
            .get_url::<ServerInfo>(self.api3_url("server-info"), call)
            .await
        {
            Ok(info) => Ok(info.workspaces_enabled),
            Err(e) if e.is_not_found() || e.is_unsupported() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The server's workspaces, by name (the server lists them in one answer).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors).
    pub async fn list_workspaces(&self) -> Result<Vec<Workspace>> {
        let answer: ListAnswer = self
            .get_url(self.api3_url("workspaces"), "GET workspaces")
            .await?;
        Ok(answer.workspaces)
    }

    /// Creates workspace `name`; one that exists already is left as it is.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors).
    pub async fn create_workspace(&self, name: &str, description: &str) -> Result<()> {
        let call = format!("POST workspaces (workspace {name:?})");
        let body = Workspace {
            name: name.to_string(),
            description: description.to_string(),
        };
        let made = self
            .call_unit_url(
                Method::POST,
                self.api3_url("workspaces"),
                &body,
                &call,
                Unsafe,
            )
            .await;
        match made {
            Err(e) if e.is_already_exists() => Ok(()),
            // A lost answer: the workspace is there if the create took effect.
            Err(e @ crate::Error::Ambiguous { .. }) => {
                if self.list_workspaces().await?.iter().any(|w| w.name == name) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }
}
