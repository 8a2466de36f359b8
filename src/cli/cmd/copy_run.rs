//! `copy-run`: one run from one tracking server to another, directly (nothing staged on disk).

use std::process::ExitCode;

use mlflow_archive::transfer::copy::copy_runs;
use mlflow_archive::transfer::import::ImportOptions;

use crate::cli::Global;
use crate::cli::args::{DstServer, SrcServer, legacy_bool};

/// Arguments of `copy-run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// The run's id on the source.
    #[arg(long, value_name = "ID")]
    run_id: String,

    /// The destination experiment (created if missing).
    #[arg(long, value_name = "NAME")]
    experiment_name: String,

    /// Keep the source's `mlflow.user` tag.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    use_src_user_id: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let dst = args.dst.client()?;
    let import = ImportOptions {
        experiment_name: Some(args.experiment_name.clone()),
        use_src_user_id: args.use_src_user_id,
        ..ImportOptions::default()
    };
    let report = copy_runs(&src, &dst, std::slice::from_ref(&args.run_id), &import)
        .await
        .map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "copying run {} from {} to {}",
                args.run_id,
                src.server(),
                dst.server()
            ))
        })?;
    if !global.quiet {
        let new = report.runs.get(&args.run_id).cloned().unwrap_or_default();
        eprintln!(
            "copied run {} from {} to run {new} on {} ({} metric points, {} artifacts)",
            args.run_id,
            src.server(),
            dst.server(),
            report.metric_points,
            report.artifacts
        );
    }
    Ok(ExitCode::SUCCESS)
}
