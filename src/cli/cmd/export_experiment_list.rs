//! `export-experiment-list`: several experiments (names or ids, or `all`) into one archive.

use std::path::PathBuf;
use std::process::ExitCode;

use futures_util::TryStreamExt;
use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::mlflow::types::ViewType;
use mlflow_archive::transfer::export::export_experiments;

use super::export_experiment::resolve_experiment;
use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{ExportFlags, SrcServer};
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
    let list = args.experiments.as_deref().unwrap_or_default();
    let experiments = if let Some(one) = &args.experiment {
        vec![resolve_experiment(&client, one).await?]
    } else if list.trim() == "all" {
        client
            .search_experiments(ViewType::ActiveOnly, None)
            .try_collect()
            .await?
    } else {
        let mut v = Vec::new();
        for key in list.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            v.push(resolve_experiment(&client, key).await?);
        }
        v
    };
    let builder = WriterBuilder::new().source(Source {
        tracking_uri: Some(client.server().to_string()),
        scope: Some("experiments".into()),
    });
    let opts = args.export.options(&global);
    let (summary, rep) = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
        export_experiments(&client, &experiments, sink, &opts).await
    })
    .await
    .map_err(|e| e.context("exporting the experiments failed; no archive was written"))?;
    if !global.quiet {
        eprintln!(
            "exported {} experiments from {} to {}: {}",
            experiments.len(),
            client.server(),
            output_name(&args.output),
            counts_line(&summary.counts)
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
