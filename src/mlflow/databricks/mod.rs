//! Databricks workspaces: the same MLflow REST API with other credentials (personal access
//! tokens, OAuth machine-to-machine), artifacts behind short-lived signed URLs, notebooks, the
//! Unity Catalog model registry and permissions.
//!
//! Built from Databricks' published REST API documentation and MLflow's own Databricks client;
//! tested against a stand-in server (`tests/harness/databricks_standin.py`), not a live workspace.

pub(crate) mod dbfs;
pub(crate) mod oauth;
pub mod permissions;
mod profile;
pub mod uc;

pub use profile::{Registry, Workspace, parse_uri, resolve};
