//! Registered models (prompts included) with every version.

use std::sync::Arc;

use futures_util::TryStreamExt;

use super::ExportOptions;
use super::experiments::run_set_into;
use super::notebooks::NotebookLog;
use super::permissions_unread;
use crate::error::Result;
use crate::mlflow::types::{ModelVersion, RegisteredModel, Run};
use crate::transfer::archive_sink::Cmd;
use crate::transfer::map;
use crate::transfer::ordered::Scheduler;
use crate::transfer::source::Source;

/// Writes every registered model of the source with every version, prompts too (the registry's
/// searches leave them out unless asked for by their tag), recording `workspace` on each.
pub(super) async fn all_models_into<S: Source>(
    client: &S,
    sink: &mut Scheduler,
    opts: &ExportOptions,
) -> Result<()> {
    let mut models: Vec<RegisteredModel> = client.registered_models(false).try_collect().await?;
    let prompts: Vec<RegisteredModel> = client.registered_models(true).try_collect().await?;
    for p in prompts {
        if !models.iter().any(|m| m.name == p.name) {
            models.push(p);
        }
    }
    for m in models {
        let versions = client.model_versions(&m.name).await?;
        write_model_unit(client, sink, &m, &versions, opts).await?;
    }
    Ok(())
}

async fn write_model_unit<S: Source>(
    client: &S,
    sink: &mut Scheduler,
    m: &RegisteredModel,
    versions: &[ModelVersion],
    opts: &ExportOptions,
) -> Result<()> {
    let mut record = map::registered_model(m);
    record.workspace = opts.record_workspace.clone().unwrap_or_default();
    let permissions = if opts.permissions {
        client
            .model_permissions(&m.name)
            .await
            .map_err(|e| permissions_unread(e, &format!("registered model {:?}", m.name)))?
    } else {
        None
    };
    sink.send(Cmd::BeginRegisteredModel(record)).await?;
    if let Some(p) = permissions.filter(|p| !p.acl.is_empty() || !p.grants.is_empty()) {
        sink.send(Cmd::Permissions(map::permissions(&p))).await?;
    }
    for v in versions {
        sink.send(Cmd::ModelVersion(map::model_version(v)?)).await?;
    }
    sink.send(Cmd::EndUnit).await
}

/// Writes registered models with every version, after the runs and logged models the versions
/// come from (and their experiments).
pub(super) async fn models_into<S: Source>(
    client: &S,
    names: &[String],
    sink: &mut Scheduler,
    opts: &ExportOptions,
    log: &Arc<NotebookLog>,
) -> Result<()> {
    let mut models = Vec::new();
    let mut run_ids: Vec<String> = Vec::new();
    let mut model_ids: Vec<String> = Vec::new();
    for name in names {
        let m = client.registered_model(name).await?;
        let versions = client.model_versions(name).await?;
        for v in &versions {
            if !v.run_id.is_empty() && !run_ids.contains(&v.run_id) {
                run_ids.push(v.run_id.clone());
            }
            let mid = v.model_id.clone().or_else(|| {
                v.source
                    .strip_prefix("models:/")
                    .filter(|m| m.starts_with("m-"))
                    .map(str::to_string)
            });
            if let Some(mid) = mid.filter(|m| !model_ids.contains(m)) {
                model_ids.push(mid);
            }
        }
        models.push((m, versions));
    }
    let mut runs: Vec<Run> = Vec::new();
    for id in &run_ids {
        match client.run(id).await {
            Ok(r) => runs.push(r),
            // A version whose run is gone keeps its run id; there is nothing to export for it.
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    let mut logged = Vec::new();
    for id in &model_ids {
        match client.logged_model(id).await {
            Ok(m) => logged.push(m),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e),
        }
    }
    run_set_into(client, runs, logged, sink, opts, log).await?;
    for (m, versions) in models {
        write_model_unit(client, sink, &m, &versions, opts).await?;
    }
    Ok(())
}
