//! `export-experiment`: one or more experiments (runs, metric histories, artifacts, logged models)
//! from a tracking server into an archive, streamed.

use std::process::ExitCode;

use mlflow_archive::transfer::export::export_experiments;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, ExportFlags, SrcServer, find_experiment};
use crate::cli::output::counts_line;

/// Arguments of `export-experiment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The experiment: a name, or an id.
    #[arg(long, value_name = "ID|NAME")]
    experiment: String,

    #[command(flatten)]
    output: ArchiveOutput,

    #[command(flatten)]
    export: ExportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let experiment = find_experiment(&client, &args.experiment).await?;
    let opts = args.export.options(&global)?;
    let (summary, rep) =
        write_archive(&out, client.server(), "experiment", &global, async |sink| {
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
            out.name(),
            counts_line(&summary.counts),
            summary.archive_bytes
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    crate::cli::output::permissions_note(&opts, &client, global.quiet);
    let ids = std::slice::from_ref(&experiment.experiment_id);
    crate::cli::output::uncarried_warnings(&client, Some(ids), global.quiet).await;
    Ok(ExitCode::SUCCESS)
}
