//! MLflow workspaces (`mlflow server --enable-workspaces`). An archive exported from a server
//! with workspaces names, on each experiment, registered model and dataset, the workspace it came
//! from (runs, logged models and traces follow their experiment). The import recreates them in
//! the same workspaces (made when missing), or all in the one `--dst-workspace` names. Into a
//! server without workspaces, everything goes into its one namespace, and the report lists the
//! workspaces so merged. Moving to another workspace first finishes everything of the previous
//! one, since a client of one workspace cannot see another's objects.

use std::collections::HashMap;

use super::{Importer, Leases};
use crate::error::{Error, Result};
use crate::format::Record;
use crate::mlflow::api::workspaces::DEFAULT_WORKSPACE;
use crate::transfer::destination::Destination;

/// What the import knows of workspaces.
#[derive(Debug, Default)]
pub(super) struct Workspaces {
    /// Whether the destination has workspaces; `None` until an object names one.
    enabled: Option<bool>,
    /// The workspace the import's client names (`None`: the client as given).
    current: Option<String>,
    /// Source experiment id → the workspace it came from.
    of_experiment: HashMap<String, String>,
}

impl<D: Destination> Importer<'_, D> {
    /// With `--dst-workspace`: everything goes there (made when missing).
    pub(super) async fn enter_given_workspace(&mut self) -> Result<()> {
        let Some(ws) = self.opts.dst_workspace.clone() else {
            return Ok(());
        };
        if !self.base.workspaces_enabled().await? {
            return Err(Error::Config(format!(
                "{} has no workspaces (it was not started with --enable-workspaces): leave out --dst-workspace {ws}",
                self.base.server()
            )));
        }
        self.workspaces.enabled = Some(true);
        self.switch_to(&ws).await
    }

    /// Moves the import's client to the workspace `r`'s object came from, if it names one.
    pub(super) async fn enter_workspace_of(&mut self, r: &Record) -> Result<()> {
        if self.opts.dst_workspace.is_some() {
            return Ok(());
        }
        let of = |exp: &str| self.workspaces.of_experiment.get(exp).cloned();
        let ws = match r {
            Record::Experiment(e) => {
                if !e.workspace.is_empty() {
                    self.workspaces
                        .of_experiment
                        .insert(e.experiment_id.clone(), e.workspace.clone());
                }
                Some(e.workspace.clone())
            }
            Record::RegisteredModel(m) => Some(m.workspace.clone()),
            Record::Dataset(d) => Some(d.workspace.clone()),
            Record::Run(x) => of(&x.experiment_id),
            Record::LoggedModel(m) => of(&m.experiment_id),
            Record::Trace(t) => of(&t.experiment_id),
            _ => None,
        };
        // An archive of a server without workspaces names none: the client as given.
        let Some(ws) = ws.filter(|w| !w.is_empty()) else {
            return Ok(());
        };
        let enabled = match self.workspaces.enabled {
            Some(e) => e,
            None => {
                let e = self.base.workspaces_enabled().await?;
                self.workspaces.enabled = Some(e);
                e
            }
        };
        if !enabled {
            if ws != DEFAULT_WORKSPACE {
                self.report.workspaces_merged.insert(ws);
            }
            return Ok(());
        }
        if self.workspaces.current.as_deref() == Some(ws.as_str()) {
            return Ok(());
        }
        self.switch_to(&ws).await
    }

    async fn switch_to(&mut self, ws: &str) -> Result<()> {
        // Runs of the previous workspace that wait for a logged model still to come could not
        // be linked to it from another workspace: said, not dropped in silence.
        let waiting = self.deferred.models();
        if !waiting.is_empty() {
            return Err(Error::Input(format!(
                "runs of workspace {:?} wait for logged models {waiting:?}, which the archive has not given before objects of workspace {ws:?}: the import needs each workspace's objects together (as mlflow-archive writes them)",
                self.workspaces
                    .current
                    .as_deref()
                    .unwrap_or(DEFAULT_WORKSPACE)
            )));
        }
        // What the previous workspace's client started, it finishes.
        self.settle_all().await?;
        // (The report lists the workspaces made or found so far.)
        if ws != DEFAULT_WORKSPACE && !self.report.workspaces.contains(ws) {
            self.base.create_workspace(ws).await?;
        }
        self.report.workspaces.insert(ws.to_string());
        self.client = self.base.in_workspace(ws);
        self.leases = Leases::start(&self.client);
        self.workspaces.current = Some(ws.to_string());
        Ok(())
    }
}
