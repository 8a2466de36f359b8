//! Evaluation dataset units (MLflow 3.4+): each dataset with its tags and experiment links, and
//! its records page by page (a page is a chunk of the unit).

use std::collections::HashSet;

use futures_util::TryStreamExt;

use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::Scheduler;
use crate::transfer::source::Source;

/// Writes the datasets linked to `experiment_ids` (every dataset of the server when `all`),
/// recording `workspace` on each.
pub(super) async fn datasets_into<S: Source>(
    client: &S,
    experiment_ids: &[String],
    all: bool,
    workspace: Option<&str>,
    sink: &mut Scheduler,
) -> Result<()> {
    if experiment_ids.is_empty() && !all {
        return Ok(());
    }
    let scope: &[String] = if all { &[] } else { experiment_ids };
    let mut seen = HashSet::new();
    let mut datasets = std::pin::pin!(client.datasets(scope));
    while let Some(d) = datasets.try_next().await? {
        if !seen.insert(d.dataset_id.clone()) {
            continue;
        }
        let linked = client.dataset_experiment_ids(&d.dataset_id).await?;
        let mut record = crate::transfer::map::dataset(&d, linked);
        record.workspace = workspace.unwrap_or_default().to_string();
        let client = client.clone();
        sink.spawn(|unit| async move {
            let id = record.dataset_id.clone();
            unit.send(Cmd::BeginDataset(record)).await?;
            let mut pages = std::pin::pin!(client.dataset_records(&id));
            while let Some(records) = pages
                .try_next()
                .await
                .map_err(|e: Error| e.about(format!("evaluation dataset {id}")))?
            {
                if !records.is_empty() {
                    unit.send(Cmd::DatasetRecords(rec::DatasetRecords { records }))
                        .await?;
                }
            }
            unit.send(Cmd::EndUnit).await
        })
        .await?;
    }
    Ok(())
}
