//! Server → server, nothing staged: the export writes an archive into an in-process pipe and the
//! import reads it from the other end, so a copy runs exactly the code paths of export and import,
//! checks every CRC and seal on the way, holds only the pipe's buffer and a few chunks in memory,
//! and writes no file. The archive in the pipe is compressed at zstd level 1 (cheap; it never
//! leaves the process), and flushed at each unit's end, so the import gets each unit as soon as
//! it is whole, not once the compressor's block and the buffer fill.

use std::io::BufWriter;

use super::archive_sink::ArchiveSink;
use super::archive_source::ArchiveSource;
use super::export::{ExportOptions, export_all, export_experiments, export_runs};
use super::import::{Failed, ImportOptions, ImportReport, import_archive};
use super::replay::Replay;
use crate::error::{Error, Result};
use crate::format::WriterBuilder;
use crate::format::model::Source;
use crate::mlflow::Client;
use crate::mlflow::types::Experiment;

/// Copies experiments from `src` to `dst`.
///
/// # Errors
///
/// A [`Failed`] holding the first failure (the export's, when the
/// export failed first) and what was imported before it; the import is resumable: running the copy
/// again completes it.
pub async fn copy_experiments(
    src: &Client,
    dst: &Client,
    experiments: &[Experiment],
    export: &ExportOptions,
    import: &ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    copy(src, dst, import, async |sink| {
        export_experiments(src, experiments, sink, export).await
    })
    .await
}

/// Copies a whole server: every active experiment and every registered model.
///
/// # Errors
///
/// As [`copy_experiments`].
pub async fn copy_all(
    src: &Client,
    dst: &Client,
    export: &ExportOptions,
    import: &ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    // A server into itself would copy everything again at every run, earlier copies too.
    if src.config().base == dst.config().base
        && (import.dst_workspace.is_none() || src.workspace() == import.dst_workspace.as_deref())
    {
        return Err(Failed {
            error: Error::Config(format!(
                "copy-all from {} into itself: every object would be copied again next to itself (give another destination, or another --dst-workspace)",
                src.server()
            )),
            done: Box::default(),
        });
    }
    copy(src, dst, import, async |sink| {
        export_all(src, sink, export).await
    })
    .await
}

/// Copies single runs (with the logged models they produced) from `src` to `dst`.
///
/// # Errors
///
/// As [`copy_experiments`].
pub async fn copy_runs(
    src: &Client,
    dst: &Client,
    run_ids: &[String],
    export: &ExportOptions,
    import: &ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    copy(src, dst, import, async |sink| {
        export_runs(src, run_ids, sink, export).await
    })
    .await
}

/// Runs an export (`fill`) into an in-process pipe and imports from its other end; what `fill`
/// returns besides success (an [`ExportReport`](super::export::ExportReport)) is not kept.
///
/// # Errors
///
/// As [`copy_experiments`]; an error of `fill` is the export's.
pub async fn copy<T>(
    src: &Client,
    dst: &Client,
    import: &ImportOptions,
    fill: impl AsyncFnOnce(&mut ArchiveSink) -> Result<T>,
) -> std::result::Result<ImportReport, Failed> {
    let (reader, writer) = std::io::pipe().map_err(|e| Failed {
        error: Error::io("creating the copy pipe", e),
        done: Box::default(),
    })?;
    let builder = WriterBuilder::new()
        .level(1)
        .flush_units(true)
        .source(Source {
            tracking_uri: Some(src.server().to_string()),
            scope: Some("copy".into()),
        });
    let mut sink = ArchiveSink::start(BufWriter::with_capacity(256 << 10, writer), builder);
    let source = ArchiveSource::start(reader);
    let exporting = async {
        let r = fill(&mut sink).await;
        let r = match r {
            Ok(_) => sink.finish().await.map(drop),
            Err(e) => {
                drop(sink); // closes the pipe: the import sees a truncated archive and stops
                Err(e)
            }
        };
        (r, std::time::Instant::now())
    };
    // A large artifact whose upload must be sent again is downloaded again from the source.
    let import = &ImportOptions {
        replay: import
            .replay
            .clone()
            .or_else(|| Some(Replay::server(src.clone()))),
        ..import.clone()
    };
    let importing = async {
        let r = import_archive(dst, source, import).await;
        (r, std::time::Instant::now())
    };
    let ((exported, export_end), (imported, import_end)) = tokio::join!(exporting, importing);
    match (exported, imported) {
        (Ok(()), imported) => imported,
        (Err(error), Ok(done)) => Err(Failed {
            error,
            done: Box::new(done),
        }),
        // The side that failed first is the cause: the other then saw a cut archive (the
        // import, when the export stopped) or a closed pipe (the export, when the import did).
        (Err(error), Err(f)) if export_end <= import_end => Err(Failed {
            error,
            done: f.done,
        }),
        (Err(_), Err(f)) => Err(f),
    }
}
