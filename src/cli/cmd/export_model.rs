//! `export-model`: a registered model with every version, and the runs and logged models the
//! versions come from, into an archive.

use std::process::ExitCode;

use mlflow_archive::transfer::export::export_models;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, NotebookFlag, PermissionsFlag, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The registered model's name.
    #[arg(long, value_name = "NAME")]
    model: String,

    #[command(flatten)]
    output: ArchiveOutput,

    #[command(flatten)]
    notebooks: NotebookFlag,

    #[command(flatten)]
    permissions: PermissionsFlag,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let names = vec![args.model.clone()];
    let mut opts = args.notebooks.apply(global.export_options());
    opts.permissions = args.permissions.export_permissions;
    let (summary, rep) = write_archive(&out, client.server(), "model", &global, async |sink| {
        export_models(&client, &names, sink, &opts).await
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "exporting model {:?} failed; no archive was written",
            args.model
        ))
    })?;
    if !global.quiet {
        eprintln!(
            "exported model {:?} from {} to {}: {}; {} bytes",
            args.model,
            client.server(),
            out.name(),
            counts_line(&summary.counts),
            summary.archive_bytes
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    crate::cli::output::permissions_note(&opts, &client, global.quiet);
    Ok(ExitCode::SUCCESS)
}
