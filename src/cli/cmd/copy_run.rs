//! `copy-run`: one run from one tracking server to another, directly (nothing staged on disk).

use std::process::ExitCode;

use mlflow_archive::transfer::copy::copy_runs;
use mlflow_archive::transfer::import::ImportOptions;

use crate::cli::Global;
use crate::cli::args::{DstServer, ImportFlags, SrcServer, copy_permissions};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `copy-run`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// The run's id on the source (the Python tool's `--src-run-id` is the same).
    #[arg(long, visible_alias = "src-run-id", value_name = "ID")]
    run_id: String,

    /// The destination experiment (created if missing; the Python tool's `--dst-experiment-name`
    /// is the same).
    #[arg(long, visible_alias = "dst-experiment-name", value_name = "NAME")]
    experiment_name: String,

    #[command(flatten)]
    import: ImportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let dst = args.dst.client()?;
    let line = ProgressLine::start(&global, "copying");
    let mut import = ImportOptions {
        progress: Some(line.counters()),
        experiment_name: Some(args.experiment_name.clone()),
        ..args.import.options(&global)
    };
    let mut export = global.export_options();
    copy_permissions(false, &mut export, &mut import);
    let what = format!(
        "run {} from {} to {}",
        args.run_id,
        src.server(),
        dst.server()
    );
    let report = copy_runs(
        &src,
        &dst,
        std::slice::from_ref(&args.run_id),
        &export,
        &import,
    )
    .await;
    drop(line);
    let code = finish_import(report, args.import.json, global.quiet, "copied", &what)?;
    crate::cli::output::permissions_note(&export, &src, global.quiet);
    Ok(code)
}
