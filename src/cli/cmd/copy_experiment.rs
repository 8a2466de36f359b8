//! `copy-experiment`: an experiment from one tracking server to another, directly (no archive
//! on disk, no temporary files), with the guarantees of export and import.

use std::process::ExitCode;

use mlflow_archive::transfer::copy::copy_experiments;
use mlflow_archive::transfer::import::ImportOptions;

use crate::cli::Global;
use crate::cli::args::{
    DstServer, ExportFlags, ImportFlags, SrcServer, copy_permissions, find_experiment,
};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `copy-experiment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// The source experiment: a name, or an id.
    #[arg(long, value_name = "ID|NAME")]
    src_experiment: String,

    /// The destination experiment (created if missing); default: the source's name.
    #[arg(long, value_name = "NAME")]
    dst_experiment_name: Option<String>,

    #[command(flatten)]
    export: ExportFlags,

    #[command(flatten)]
    import: ImportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let dst = args.dst.client()?;
    let experiment = find_experiment(&src, &args.src_experiment).await?;
    let line = ProgressLine::start(&global, "copying");
    let mut import = ImportOptions {
        progress: Some(line.counters()),
        experiment_name: Some(
            args.dst_experiment_name
                .clone()
                .unwrap_or_else(|| experiment.name.clone()),
        ),
        ..args.import.options(&global)
    };
    let mut export = args.export.options(&global)?;
    copy_permissions(export.permissions, &mut export, &mut import);
    let what = format!(
        "experiment {:?} from {} to {}",
        experiment.name,
        src.server(),
        dst.server()
    );
    let report = copy_experiments(
        &src,
        &dst,
        std::slice::from_ref(&experiment),
        &export,
        &import,
    )
    .await;
    drop(line);
    let code = finish_import(report, args.import.json, global.quiet, "copied", &what)?;
    crate::cli::output::permissions_note(&export, &src, global.quiet);
    let ids = std::slice::from_ref(&experiment.experiment_id);
    crate::cli::output::uncarried_warnings(&src, Some(ids), global.quiet).await;
    Ok(code)
}
