//! `export-experiment-list`: several experiments (names or ids, or `all`) into one archive.

use std::process::ExitCode;

use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::ViewType;
use mlflow_archive::transfer::export::export_experiments;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, ExportFlags, SrcServer, find_experiment};
use crate::cli::output::counts_line;

/// Arguments of `export-experiment-list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// Comma-separated names or ids, or `all` (every active experiment).
    #[arg(long, value_name = "A,B|all", required_unless_present = "experiment")]
    experiments: Option<String>,

    /// One experiment, a name (commas and all) or an id: the Python tool's
    /// `export-experiment-list --experiment X`.
    #[arg(long, value_name = "ID|NAME", conflicts_with = "experiments")]
    experiment: Option<String>,

    #[command(flatten)]
    output: ArchiveOutput,

    #[command(flatten)]
    export: ExportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let list = args.experiments.as_deref().unwrap_or_default();
    let experiments = if let Some(one) = &args.experiment {
        vec![find_experiment(&client, one).await?]
    } else if list.trim() == "all" {
        client
            .search_experiments(ViewType::ActiveOnly, None)
            .try_collect()
            .await?
    } else {
        let mut v = Vec::new();
        for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            v.push(find_experiment(&client, key).await?);
        }
        v
    };
    let opts = args.export.options(&global)?;
    let (summary, rep) = write_archive(
        &out,
        client.server(),
        "experiments",
        &global,
        async |sink| export_experiments(&client, &experiments, sink, &opts).await,
    )
    .await
    .map_err(|e| e.context("exporting the experiments failed; no archive was written"))?;
    if !global.quiet {
        eprintln!(
            "exported {} experiments from {} to {}: {}",
            experiments.len(),
            client.server(),
            out.name(),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    crate::cli::output::permissions_note(&opts, &client, global.quiet);
    let ids: Vec<String> = experiments
        .iter()
        .map(|e| e.experiment_id.clone())
        .collect();
    crate::cli::output::uncarried_warnings(&client, Some(&ids), global.quiet).await;
    Ok(ExitCode::SUCCESS)
}
