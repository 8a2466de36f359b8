//! `export-all`: every active experiment and every registered model of a server into one archive.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::transfer::export::export_all;

use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{ExportFlags, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-all`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

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
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    check_output(&args.output)?;
    let client = args.server.client()?;
    let builder = WriterBuilder::new().source(Source {
        tracking_uri: Some(client.server().to_string()),
        scope: Some("all".into()),
    });
    let opts = args.export.options(&global);
    let (summary, rep) = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
        export_all(&client, sink, &opts).await
    })
    .await
    .map_err(|e| e.context("exporting the server failed; no archive was written"))?;
    if !global.quiet {
        eprintln!(
            "exported {} to {}: {}",
            client.server(),
            output_name(&args.output),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
