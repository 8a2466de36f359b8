//! `export-run`: one run (with its experiment and the logged models it produced) into an archive.

use std::process::ExitCode;

use mlflow_archive::transfer::export::export_runs;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, NotebookFlag, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The run's id.
    #[arg(long, value_name = "ID")]
    run_id: String,

    #[command(flatten)]
    output: ArchiveOutput,

    #[command(flatten)]
    notebooks: NotebookFlag,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let ids = vec![args.run_id.clone()];
    let opts = args.notebooks.apply(global.export_options());
    let (summary, rep) = write_archive(&out, client.server(), "run", &global, async |sink| {
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
            out.name(),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
