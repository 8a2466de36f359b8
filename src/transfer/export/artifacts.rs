//! Artifacts streamed file by file into an open unit.

use std::collections::{HashMap, HashSet};

use futures_util::TryStreamExt;

use crate::error::Result;
use crate::mlflow::ArtifactRoot;
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::UnitTx;
use crate::transfer::source::Source;

/// Files up to this size are fetched ahead of their turn; larger ones only when their unit is
/// being written, so a download never waits half-read behind another unit.
const PREFETCH_MAX: u64 = 1 << 20;

/// Streams every file under `root` into the open unit, but those `have` holds with the same
/// size (a sync: files the destination has already); returns the paths under `notebooks/`.
pub(super) async fn copy_artifacts<S: Source>(
    client: &S,
    root: &ArtifactRoot,
    unit: &mut UnitTx,
    have: &HashMap<String, u64>,
) -> Result<HashSet<String>> {
    copy_files(client, root, "", unit, have).await
}

/// [`copy_artifacts`], naming each file in the unit `<prefix><path>` (a trace's attachments,
/// under `attachments/`).
pub(super) async fn copy_artifacts_as<S: Source>(
    client: &S,
    root: &ArtifactRoot,
    prefix: &str,
    unit: &mut UnitTx,
) -> Result<HashSet<String>> {
    copy_files(client, root, prefix, unit, &HashMap::new()).await
}

async fn copy_files<S: Source>(
    client: &S,
    root: &ArtifactRoot,
    prefix: &str,
    unit: &mut UnitTx,
    have: &HashMap<String, u64>,
) -> Result<HashSet<String>> {
    let mut notebooks = HashSet::new();
    let mut files = std::pin::pin!(client.artifact_files(root));
    while let Some(f) = files.try_next().await? {
        if f.path.starts_with("notebooks/") {
            notebooks.insert(f.path.clone());
        }
        if have.get(&f.path) == Some(&f.size) {
            continue;
        }
        if f.size > PREFETCH_MAX {
            unit.wait_front().await;
        }
        let dl = client.download(root, &f.path, Some(f.size)).await?;
        unit.send(Cmd::BeginArtifact(format!("{prefix}{}", f.path), f.size))
            .await?;
        let mut body = dl.body;
        while let Some(chunk) = body.try_next().await? {
            unit.send(Cmd::Body(chunk)).await?;
        }
        unit.send(Cmd::EndArtifact).await?;
    }
    Ok(notebooks)
}
