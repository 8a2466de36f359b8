//! `export-run`: one run (with its experiment and the logged models it produced) into an archive.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::transfer::export::export_runs;

use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{NotebookFlag, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The run's id.
    #[arg(long, value_name = "ID")]
    run_id: String,

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
    notebooks: NotebookFlag,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    check_output(&args.output)?;
    let client = args.server.client()?;
    let builder = WriterBuilder::new().source(Source {
        tracking_uri: Some(client.server().to_string()),
        scope: Some("run".into()),
    });
    let ids = vec![args.run_id.clone()];
    let opts = args.notebooks.apply(global.export_options());
    let (summary, rep) = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
        export_runs(&client, &ids, sink, &opts).await
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "exporting run {} failed; no archive was written",
            args.run_id
        ))
    })?;
    if !global.quiet {
        eprintln!(
            "exported run {} from {} to {}: {}",
            args.run_id,
            client.server(),
            output_name(&args.output),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
