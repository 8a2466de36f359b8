//! `--dst-notebook-dir`: a run's notebook, exported with it (`--notebook-formats`) as the
//! artifacts `notebooks/<name>.<format>` and `notebooks/manifest.json`, imported into the
//! destination workspace's tree, and the run's tags `mlflow.databricks.notebookPath` and
//! `mlflow.databricks.notebookID` pointed at it. The source's values stay in
//! `mlflow_archive.source.mlflow.databricks.*` tags. The workspace cannot take a revision: the
//! notebook is imported as exported (and the export had the notebook's latest revision when the
//! workspace ignored the revision asked for).

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;

use crate::error::{Error, Result};
use crate::mlflow::api::workspace::{NOTEBOOK_PATH, NotebookFormat, source_language};
use crate::mlflow::{ArtifactRoot, Client};

/// The tag naming a Databricks notebook's object id.
pub const NOTEBOOK_ID: &str = "mlflow.databricks.notebookID";

/// The largest notebook the workspace takes.
const MAX_NOTEBOOK: u64 = crate::mlflow::api::workspace::MAX_NOTEBOOK as u64;

/// Formats in the order a notebook is imported from: the source is what the workspace exports
/// and imports without loss.
const PREFERRED: [NotebookFormat; 4] = [
    NotebookFormat::Source,
    NotebookFormat::Dbc,
    NotebookFormat::Jupyter,
    NotebookFormat::Html,
];

async fn read_small(client: &Client, root: &ArtifactRoot, rel: &str) -> Result<Bytes> {
    let d = client.download_artifact(root, rel, None).await?;
    if d.size.is_some_and(|s| s > MAX_NOTEBOOK) {
        return Err(Error::Input(format!(
            "{}/{rel}: larger than the 10 MB a workspace notebook may have",
            root.uri()
        )));
    }
    let mut body = d.body;
    let mut buf = BytesMut::new();
    while let Some(chunk) = body.next().await {
        buf.extend_from_slice(&chunk?);
        if buf.len() as u64 > MAX_NOTEBOOK {
            return Err(Error::Input(format!(
                "{}/{rel}: larger than the 10 MB a workspace notebook may have",
                root.uri()
            )));
        }
    }
    Ok(buf.freeze())
}

/// `--dst-notebook-dir` as a workspace takes it: an absolute path without `.` or `..`.
///
/// # Errors
///
/// [`Error::Config`] saying what a workspace path is.
pub(crate) fn check_dir(dir: &str) -> Result<()> {
    if !dir.starts_with('/') || dir.split('/').any(|s| s == "." || s == "..") {
        return Err(Error::Config(format!(
            "--dst-notebook-dir {dir:?}: a workspace folder is an absolute path without `.` or `..`, e.g. /Users/me@example.com/imported or /Shared/imported"
        )));
    }
    Ok(())
}

/// See [`crate::transfer::destination::Destination::place_notebook`].
pub(crate) async fn place(
    client: &Client,
    run_id: &str,
    artifact_uri: &str,
    dir: &str,
) -> Result<String> {
    let root = ArtifactRoot::parse(artifact_uri)?;
    let manifest = read_small(client, &root, "notebooks/manifest.json")
        .await
        .map_err(|e| {
            if e.is_not_found() || matches!(&e, Error::Api(a) if a.status == 404) {
                Error::Input(format!(
                    "run {run_id} has no exported notebook (export it with --notebook-formats)"
                ))
            } else {
                e
            }
        })?;
    let doc: serde_json::Value = serde_json::from_slice(&manifest).map_err(|e| {
        Error::Input(format!(
            "run {run_id}: notebooks/manifest.json is not JSON ({e})"
        ))
    })?;
    let src_path = doc
        .get(NOTEBOOK_PATH)
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let name = src_path.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(Error::Input(format!(
            "run {run_id}: notebooks/manifest.json names no notebook path"
        )));
    }
    if name == "." || name == ".." || name.chars().any(char::is_control) {
        return Err(Error::Input(format!(
            "run {run_id}: notebooks/manifest.json names the notebook {src_path:?}, whose name {name:?} cannot be a workspace notebook"
        )));
    }
    let listed: Vec<NotebookFormat> = doc
        .get("formats")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|f| f.as_str())
        .filter_map(|f| NotebookFormat::parse(f).ok())
        .collect();
    let format = PREFERRED
        .into_iter()
        .find(|f| listed.contains(f))
        .ok_or_else(|| {
            Error::Input(format!(
                "run {run_id}: notebooks/manifest.json lists no notebook format"
            ))
        })?;
    let content = read_small(
        client,
        &root,
        &format!("notebooks/{name}.{}", format.extension()),
    )
    .await?;
    check_dir(dir)?;
    // (`/` is the workspace's root, which exists.)
    let dir = dir.trim_end_matches('/');
    if !dir.is_empty() {
        client.workspace_mkdirs(dir).await?;
    }
    let path = format!("{dir}/{name}");
    let language = (format == NotebookFormat::Source).then(|| source_language(&content));
    client
        .import_notebook(&path, format, language, &content, true)
        .await?;
    let (id, _) = client.workspace_object(&path).await?;
    client.set_run_tag(run_id, NOTEBOOK_PATH, &path).await?;
    client.set_run_tag(run_id, NOTEBOOK_ID, &id).await?;
    Ok(path)
}
