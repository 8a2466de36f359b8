//! `export-experiment`: one or more experiments (runs, metric histories, artifacts, logged models)
//! from a tracking server into an archive, streamed.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::transfer::export::export_experiments;

use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{ExportFlags, SrcServer, find_experiment};
use crate::cli::output::counts_line;

/// Arguments of `export-experiment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The experiment: a name, or an id.
    #[arg(long, value_name = "ID|NAME")]
    experiment: String,

    /// Where to write: an archive (a path ending in .mlar, or - for standard output), or a new
    /// directory in the layout of mlflow-export-import (export file version 2), or a .zip of one.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "output-dir",
        value_name = "OUT"
    )]
    output: PathBuf,

    #[command(flatten)]
    tree: crate::cli::args::TreeFlags,

    #[command(flatten)]
    export: ExportFlags,

    /// zstd level, 1 to 19.
    #[arg(long, default_value_t = 3)]
    level: i32,

    /// zstd worker threads (0: compress on the writer thread).
    #[arg(long, default_value_t = 0)]
    zstd_threads: u32,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    check_output(&args.output)?;
    let client = args.server.client()?;
    let experiment = find_experiment(&client, &args.experiment).await?;
    let builder = WriterBuilder::new()
        .level(args.level)
        .threads(args.zstd_threads)
        .source(Source {
            tracking_uri: Some(client.server().to_string()),
            scope: Some("experiment".into()),
        });
    let opts = args.export.options(&global);
    let summary = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
        export_experiments(&client, std::slice::from_ref(&experiment), sink, &opts).await
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "exporting experiment {} {:?} failed; no archive was written",
            experiment.experiment_id, experiment.name
        ))
    })?;
    if !global.quiet {
        eprintln!(
            "exported experiment {} {:?} from {} to {}: {}; {} bytes",
            experiment.experiment_id,
            experiment.name,
            client.server(),
            output_name(&args.output),
            counts_line(&summary.counts),
            summary.archive_bytes
        );
    }
    crate::cli::output::notebook_notes(&opts, global.quiet);
    Ok(ExitCode::SUCCESS)
}
