//! `list-registered-models`: every registered model of a server with all its versions, streamed
//! to a `registered_models.json` writer one model at a time.

use std::io::Write;

use futures_util::TryStreamExt;
use serde_json::{Value, json};

use crate::error::Result;
use crate::legacy::registered_models::RegisteredModelsWriter;
use crate::mlflow::Client;
use crate::mlflow::types::{ModelVersion, RegisteredModel};

/// What [`list_registered_models`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListSummary {
    /// Registered models.
    pub models: usize,
    /// Model versions, over all models.
    pub versions: usize,
}

/// Writes every registered model of the server (every prompt instead when `prompts`: MLflow 3
/// keeps prompts as registered models its searches leave out unless asked), each with `versions`
/// (all of them, in numeric order, with their aliases), to `out`.
///
/// # Errors
///
/// The first failure of a request to the server, or of a write to `out`.
pub async fn list_registered_models<W: Write>(
    client: &Client,
    out: W,
    what: &str,
    prompts: bool,
) -> Result<(W, ListSummary)> {
    let mut writer = RegisteredModelsWriter::new(out, what)?;
    let mut summary = ListSummary::default();
    let filter = prompts.then_some(crate::mlflow::api::registry::PROMPT_FILTER);
    let mut models = std::pin::pin!(client.search_registered_models(filter));
    while let Some(model) = models.try_next().await? {
        let versions = client.all_model_versions(&model.name).await?;
        summary.versions += versions.len();
        writer.write_model(&model_entry(&model, &versions))?;
    }
    let (out, n) = writer.finish()?;
    summary.models = n;
    Ok((out, summary))
}

/// The JSON of one model: the REST object, plus `versions` with each version's aliases filled in
/// from the model (search answers leave them out).
fn model_entry(model: &RegisteredModel, versions: &[ModelVersion]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut v = v.clone();
            v.aliases = model
                .aliases
                .iter()
                .filter(|a| a.version == v.version)
                .map(|a| a.alias.clone())
                .collect();
            json!(v)
        })
        .collect();
    let mut entry = json!(model);
    entry["versions"] = Value::Array(versions);
    entry
}
