//! Evaluation dataset units (MLflow 3.4+): each dataset with its tags and experiment links, and
//! its records page by page (a page is a chunk of the unit).

use std::collections::HashSet;

use futures_util::{Stream, TryStreamExt};

use crate::error::{Error, Result};
use crate::format::model as rec;
use crate::mlflow::api::datasets::EvaluationDataset;
use crate::transfer::archive_sink::Cmd;
use crate::transfer::ordered::Scheduler;
use crate::transfer::source::Source;

/// The most bytes and JSON values in a chunk of records this exporter writes (spec §7.10: readers
/// accept 64 MiB, 4 000 000 values and 200 000 objects; a page of large records is split).
const CHUNK_BYTES: usize = 16 << 20;
const CHUNK_VALUES: u64 = 1_000_000;
const CHUNK_OBJECTS: u64 = 50_000;

/// A page of records as chunks within [`CHUNK_BYTES`], [`CHUNK_VALUES`] and [`CHUNK_OBJECTS`],
/// each with its size as JSON (a record larger than that alone in its chunk; one larger than a
/// reader accepts is an error naming the dataset).
fn chunks(
    page: Vec<serde_json::Value>,
    dataset: &str,
) -> Result<Vec<(Vec<serde_json::Value>, usize)>> {
    let limits = crate::format::Limits::default();
    let mut out: Vec<(Vec<serde_json::Value>, usize)> = Vec::new();
    let (mut bytes, mut values, mut objects) = (0usize, 0u64, 0u64);
    for r in page {
        let text = serde_json::to_vec(&r).map_err(|e| Error::Json {
            what: format!("evaluation dataset {dataset}: a record"),
            source: e,
        })?;
        let (n, o) = crate::format::validate::json_counts(&text);
        if n > limits.max_json_values
            || o > limits.max_json_objects
            || text.len() as u64 > limits.max_json_bytes / 2
        {
            return Err(Error::Input(format!(
                "evaluation dataset {dataset}: a record of {} bytes and {n} JSON values is larger than an archive holds (§11)",
                text.len()
            )));
        }
        let full = bytes + text.len() > CHUNK_BYTES
            || values + n > CHUNK_VALUES
            || objects + o > CHUNK_OBJECTS;
        if out.is_empty() || (full && !out.last().is_some_and(|(c, _)| c.is_empty())) {
            out.push((Vec::new(), 0));
            (bytes, values, objects) = (0, 0, 0);
        }
        bytes += text.len();
        values += n;
        objects += o;
        if let Some((last, size)) = out.last_mut() {
            last.push(r);
            *size = bytes;
        }
    }
    Ok(out)
}

/// Writes the datasets `datasets` lists (the source's [`Source::datasets`]), recording
/// `workspace` on each.
pub(super) async fn datasets_into<S: Source>(
    client: &S,
    datasets: impl Stream<Item = Result<EvaluationDataset>>,
    workspace: Option<&str>,
    base: Option<&crate::transfer::sync::Base>,
    sink: &mut Scheduler,
) -> Result<()> {
    let mut seen = HashSet::new();
    let mut datasets = std::pin::pin!(datasets);
    while let Some(d) = datasets.try_next().await? {
        if !seen.insert(d.dataset_id.clone()) {
            continue;
        }
        if base.is_some_and(|b| b.has_dataset(&d)) {
            // Complete at the destination as it is now (a sync): not read again.
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
                for (records, bytes) in chunks(records, &id)? {
                    let cmd = Cmd::DatasetRecords(rec::DatasetRecords { records });
                    unit.send_costing(cmd, bytes).await?;
                }
            }
            unit.send(Cmd::EndUnit).await
        })
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{CHUNK_BYTES, chunks};

    #[test]
    fn a_page_of_large_records_is_split_into_chunks_a_reader_accepts() {
        let big = "x".repeat(CHUNK_BYTES / 3);
        let page: Vec<serde_json::Value> = (0..7)
            .map(|i| serde_json::json!({"inputs": {"i": i, "text": big}}))
            .collect();
        let out = chunks(page.clone(), "d-1").unwrap();
        assert_eq!(
            out.iter().map(|(c, _)| c.len()).collect::<Vec<_>>(),
            [2, 2, 2, 1]
        );
        assert!(out.iter().all(|(_, bytes)| *bytes <= CHUNK_BYTES));
        let records: Vec<Vec<serde_json::Value>> = out.into_iter().map(|(c, _)| c).collect();
        assert_eq!(records.concat(), page, "every record once, in order");
        let small: Vec<serde_json::Value> =
            (0..1000).map(|i| serde_json::json!({"i": i})).collect();
        assert_eq!(chunks(small, "d-1").unwrap().len(), 1);
        let huge = vec![serde_json::json!({"v": vec![0; 4_000_001]})];
        let err = chunks(huge, "d-9").unwrap_err().to_string();
        assert!(err.contains("evaluation dataset d-9"), "{err}");
    }
}
