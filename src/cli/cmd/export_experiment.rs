//! `export-experiment`: one or more experiments (runs, metric histories, artifacts, logged models)
//! from a tracking server into an archive, streamed.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::mlflow::Client;
use mlflow_archive::mlflow::types::Experiment;
use mlflow_archive::transfer::export::export_experiments;

use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{ExportFlags, SrcServer};
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

/// Finds an experiment by name, then by id (as the Python tool does).
pub async fn resolve_experiment(client: &Client, key: &str) -> anyhow::Result<Experiment> {
    if let Some(e) = client.get_experiment_by_name(key).await? {
        return Ok(e);
    }
    match client.get_experiment(key).await {
        Ok(e) => Ok(e),
        // (MLflow answers 400 INVALID_PARAMETER_VALUE to an id that is not a number)
        Err(e)
            if e.is_not_found()
                || e.api()
                    .is_some_and(|a| a.status == 400 && !a.error_code.is_empty()) =>
        {
            Err(anyhow::anyhow!(
                "experiment {key:?} not found on {} (neither a name nor an id)",
                client.server()
            ))
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    check_output(&args.output)?;
    let client = args.server.client()?;
    let experiment = resolve_experiment(&client, &args.experiment).await?;
    let builder = WriterBuilder::new()
        .level(args.level)
        .threads(args.zstd_threads)
        .source(Source {
            tracking_uri: Some(client.server().to_string()),
            scope: Some("experiment".into()),
        });
    let opts = args.export.options(&global);
    let (summary, rep) = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
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
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
