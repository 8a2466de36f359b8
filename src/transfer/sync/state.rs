//! The state file of incremental archives: what the archives written so far hold.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Base, KnownRun};
use crate::error::{Error, Result};

/// The state file of incremental archives ([`Base::save`]).
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    /// `mlflow-archive sync state 1`.
    format: String,
    /// The source these archives were exported from.
    source: String,
    runs: BTreeMap<String, KnownRun>,
    /// Logged model id → its status when written.
    #[serde(default)]
    logged_models: BTreeMap<String, String>,
    #[serde(default)]
    traces: Vec<String>,
}

const STATE_FORMAT: &str = "mlflow-archive sync state 1";

impl Base {
    /// The base recorded in state file `path` for source `server` (an empty one when the file
    /// does not exist: the first incremental export is a full one).
    ///
    /// # Errors
    ///
    /// [`Error::Input`] when the file cannot be read, is not a state file, or was made for
    /// another source.
    pub fn load(path: &std::path::Path, server: &str) -> Result<Self> {
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Base::default()),
            Err(e) => {
                return Err(Error::io(
                    format!("reading sync state {}", path.display()),
                    e,
                ));
            }
        };
        let state: StateFile = serde_json::from_slice(&text).map_err(|e| {
            Error::Input(format!(
                "sync state {}: not a state file of mlflow-archive ({e}); give another --state, or remove it to start a new chain with a full archive",
                path.display()
            ))
        })?;
        if state.format != STATE_FORMAT {
            return Err(Error::Input(format!(
                "sync state {}: format {:?}, expected {STATE_FORMAT:?} (written by another version of mlflow-archive?); remove it to start a new chain with a full archive",
                path.display(),
                state.format
            )));
        }
        if state.source != server {
            return Err(Error::Input(format!(
                "sync state {} was written for source {}, not {server}: give each source its own state file",
                path.display(),
                state.source
            )));
        }
        Ok(Base {
            runs: state.runs.into_iter().collect(),
            logged_models: state.logged_models.into_iter().collect(),
            traces: state.traces.into_iter().collect(),
            ..Base::default()
        })
    }

    /// Writes the base with what this export added to state file `path` (through a temporary
    /// file renamed over it: a kill leaves the old state or the new one, never half of one).
    /// Called only after the archive was sealed.
    ///
    /// # Errors
    ///
    /// A failure to write or rename the file.
    pub fn save(&self, path: &std::path::Path, server: &str) -> Result<()> {
        let seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut runs: BTreeMap<String, KnownRun> = self
            .runs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        runs.extend(seen.exported.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut logged_models: BTreeMap<String, String> = self
            .logged_models
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        logged_models.extend(seen.exported_models.iter().cloned());
        let mut traces: Vec<String> = self.traces.iter().cloned().collect();
        traces.extend(seen.exported_traces.iter().cloned());
        traces.sort();
        traces.dedup();
        let state = StateFile {
            format: STATE_FORMAT.into(),
            source: server.to_string(),
            runs,
            logged_models,
            traces,
        };
        let tmp = path.with_extension("tmp-sync-state");
        let text = serde_json::to_vec(&state)
            .map_err(|e| Error::Internal(format!("writing the sync state: {e}")))?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&text)?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("writing sync state {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| Error::io(format!("replacing sync state {}", path.display()), e))
    }
}
