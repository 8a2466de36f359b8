//! Databricks workspace notebooks, for `--notebook-formats`: a run logged from a Databricks
//! notebook names it in the tags `mlflow.databricks.notebookPath` and
//! `mlflow.databricks.notebookRevisionID`, and `GET api/2.0/workspace/export` returns the notebook
//! (base64 in JSON; the workspace caps exports at 10 MB). The revision is asked for as
//! `revision.revision_timestamp`, the undocumented parameter the Python tool sends, so the notebook
//! comes as it was when the run was logged. Other servers have no such endpoint.

use std::fmt;

use base64::Engine;
use bytes::Bytes;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::mlflow::Client;

/// The tag naming the notebook a Databricks run was logged from.
pub const NOTEBOOK_PATH: &str = "mlflow.databricks.notebookPath";
/// The tag naming the notebook's revision at the time of the run.
pub const NOTEBOOK_REVISION: &str = "mlflow.databricks.notebookRevisionID";

/// The largest notebook export accepted (the workspace's own limit is 10 MB).
pub(crate) const MAX_NOTEBOOK: usize = 10 << 20;

/// A notebook export format of the workspace API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NotebookFormat {
    /// The notebook's source code.
    Source,
    /// A rendered HTML page.
    Html,
    /// An `.ipynb` document.
    Jupyter,
    /// A Databricks archive.
    Dbc,
}

impl NotebookFormat {
    /// Parses `SOURCE`, `HTML`, `JUPYTER` or `DBC` (any case).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the text when it is not one of `SOURCE`,
    /// `HTML`, `JUPYTER`, `DBC`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SOURCE" => Ok(NotebookFormat::Source),
            "HTML" => Ok(NotebookFormat::Html),
            "JUPYTER" => Ok(NotebookFormat::Jupyter),
            "DBC" => Ok(NotebookFormat::Dbc),
            other => Err(Error::Config(format!(
                "notebook format {other:?}: expected SOURCE, HTML, JUPYTER or DBC"
            ))),
        }
    }

    /// Parses a comma-separated list; an empty list is no formats.
    ///
    /// # Errors
    ///
    /// As [`NotebookFormat::parse`], for the first item that is not a format.
    pub fn parse_list(s: &str) -> Result<Vec<Self>> {
        let mut out: Vec<Self> = Vec::new();
        for f in s.split(',').filter(|f| !f.trim().is_empty()) {
            let f = Self::parse(f)?;
            if !out.contains(&f) {
                out.push(f);
            }
        }
        Ok(out)
    }

    /// The name the API takes.
    pub fn api_name(self) -> &'static str {
        match self {
            NotebookFormat::Source => "SOURCE",
            NotebookFormat::Html => "HTML",
            NotebookFormat::Jupyter => "JUPYTER",
            NotebookFormat::Dbc => "DBC",
        }
    }

    /// The file extension the Python tool gives the export (the format in lower case).
    pub fn extension(self) -> &'static str {
        match self {
            NotebookFormat::Source => "source",
            NotebookFormat::Html => "html",
            NotebookFormat::Jupyter => "jupyter",
            NotebookFormat::Dbc => "dbc",
        }
    }
}

impl fmt::Display for NotebookFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.api_name())
    }
}

#[derive(Deserialize)]
struct ExportAnswer {
    #[serde(default)]
    content: String,
}

impl Client {
    /// Exports a workspace notebook in `format`, at `revision` when given.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors): the server's refusal, a
    /// failed connection, an answer that is not the MLflow API.
    pub async fn export_notebook(
        &self,
        path: &str,
        format: NotebookFormat,
        revision: Option<&str>,
    ) -> Result<Bytes> {
        let call = format!("GET workspace/export ({path}, {format})");
        let mut url = self.url("api/2.0/workspace/export");
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("path", path);
            q.append_pair("format", format.api_name());
            if let Some(r) = revision {
                q.append_pair("revision.revision_timestamp", r);
            }
        }
        let answer: ExportAnswer = self.get_url(url, &call).await?;
        if answer.content.len() > MAX_NOTEBOOK / 3 * 4 + 4 {
            return Err(self.protocol(&call, "the notebook is larger than 10 MB".into()));
        }
        base64::engine::general_purpose::STANDARD
            .decode(answer.content.as_bytes())
            .map(Bytes::from)
            .map_err(|e| self.protocol(&call, format!("the notebook content is not base64: {e}")))
    }
}

#[derive(Deserialize)]
struct Status {
    #[serde(default)]
    object_id: serde_json::Value,
    #[serde(default)]
    object_type: String,
}

impl Client {
    /// Makes a workspace directory and its parents (`POST workspace/mkdirs`); one that exists
    /// is left as it is.
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a file or notebook on the
    /// way is `RESOURCE_ALREADY_EXISTS`.
    pub async fn workspace_mkdirs(&self, path: &str) -> Result<()> {
        let call = format!("POST workspace/mkdirs ({path})");
        self.call_unit_url(
            reqwest::Method::POST,
            self.url("api/2.0/workspace/mkdirs"),
            &serde_json::json!({ "path": path }),
            &call,
            crate::mlflow::retry::Idempotency::Safe,
        )
        .await
    }

    /// Imports a notebook at `path` (`POST workspace/import`), replacing one that is there when
    /// `overwrite`; a `SOURCE` notebook needs its `language` (`PYTHON`, `SCALA`, `SQL`, `R`).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); notebooks over 10 MB are
    /// refused before sending.
    pub async fn import_notebook(
        &self,
        path: &str,
        format: NotebookFormat,
        language: Option<&str>,
        content: &[u8],
        overwrite: bool,
    ) -> Result<()> {
        let call = format!("POST workspace/import ({path}, {format})");
        if content.len() > MAX_NOTEBOOK {
            return Err(Error::Input(format!(
                "{call}: the notebook has {} bytes; the workspace takes at most 10 MB",
                content.len()
            )));
        }
        let mut body = serde_json::json!({
            "path": path,
            "format": format.api_name(),
            "content": base64::engine::general_purpose::STANDARD.encode(content),
            "overwrite": overwrite,
        });
        if let Some(l) = language {
            body["language"] = l.into();
        }
        self.call_unit_url(
            reqwest::Method::POST,
            self.url("api/2.0/workspace/import"),
            &body,
            &call,
            crate::mlflow::retry::Idempotency::Safe,
        )
        .await
    }

    /// The object id and type of a workspace path (`GET workspace/get-status`).
    ///
    /// # Errors
    ///
    /// As every call of the [`Client`](crate::mlflow::Client#errors); a missing path is
    /// `RESOURCE_DOES_NOT_EXIST`.
    pub async fn workspace_object(&self, path: &str) -> Result<(String, String)> {
        let call = format!("GET workspace/get-status ({path})");
        let mut url = self.url("api/2.0/workspace/get-status");
        url.query_pairs_mut().append_pair("path", path);
        let s: Status = self.get_url(url, &call).await?;
        let id = match s.object_id {
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::String(s) if !s.is_empty() => s,
            _ => return Err(self.protocol(&call, "the answer has no object_id".into())),
        };
        Ok((id, s.object_type))
    }
}

/// The language of a notebook's `SOURCE` export, from the marker line Databricks writes first:
/// `// Databricks notebook source` (Scala), `-- Databricks notebook source` (SQL), else `#`
/// (Python; R notebooks have the same marker and are taken for Python).
pub fn source_language(content: &[u8]) -> &'static str {
    let first = content
        .split(|b| *b == b'\n')
        .next()
        .unwrap_or_default()
        .trim_ascii_start();
    if first.starts_with(b"//") {
        "SCALA"
    } else if first.starts_with(b"--") {
        "SQL"
    } else {
        "PYTHON"
    }
}

#[cfg(test)]
mod tests {
    use super::NotebookFormat;

    #[test]
    fn languages_from_the_source_marker() {
        assert_eq!(
            super::source_language(b"// Databricks notebook source\nval x = 1"),
            "SCALA"
        );
        assert_eq!(
            super::source_language(b"-- Databricks notebook source\n"),
            "SQL"
        );
        assert_eq!(
            super::source_language(b"# Databricks notebook source\n"),
            "PYTHON"
        );
        assert_eq!(super::source_language(b""), "PYTHON");
    }

    #[test]
    fn formats_parse_in_any_case_and_once() {
        assert_eq!(
            NotebookFormat::parse_list("source, Html,SOURCE,jupyter,dbc").unwrap(),
            vec![
                NotebookFormat::Source,
                NotebookFormat::Html,
                NotebookFormat::Jupyter,
                NotebookFormat::Dbc
            ]
        );
        assert!(NotebookFormat::parse_list("").unwrap().is_empty());
        assert!(NotebookFormat::parse_list("R").is_err());
    }
}
