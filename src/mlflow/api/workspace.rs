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
const MAX_NOTEBOOK: usize = 10 << 20;

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

#[cfg(test)]
mod tests {
    use super::NotebookFormat;

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
