//! `export-all`: every active experiment and every registered model of a server into one archive.

use std::process::ExitCode;

use mlflow_archive::transfer::export::export_all;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, ExportFlags, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-all`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    #[command(flatten)]
    output: ArchiveOutput,

    #[command(flatten)]
    export: ExportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let opts = args.export.options(&global)?;
    let (summary, rep) = write_archive(&out, client.server(), "all", &global, async |sink| {
        export_all(&client, sink, &opts).await
    })
    .await
    .map_err(|e| e.context("exporting the server failed; no archive was written"))?;
    if !global.quiet {
        eprintln!(
            "exported {} to {}: {}",
            client.server(),
            out.name(),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    crate::cli::output::permissions_note(&opts, &client, global.quiet);
    crate::cli::output::uncarried_warnings(&client, None, global.quiet).await;
    Ok(ExitCode::SUCCESS)
}
