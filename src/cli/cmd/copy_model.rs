//! `copy-model`: a registered model with every version (and the runs behind them) from one
//! tracking server to another, directly (nothing staged on disk).

use std::process::ExitCode;

use mlflow_archive::transfer::copy::copy;
use mlflow_archive::transfer::export::export_models;
use mlflow_archive::transfer::import::ImportOptions;

use crate::cli::Global;
use crate::cli::args::{
    DstServer, ImportFlags, PermissionsFlag, RegistryFlags, SrcServer, copy_permissions,
    legacy_bool,
};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `copy-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// The registered model on the source.
    #[arg(long, value_name = "NAME")]
    src_model: String,

    /// Its name on the destination (default: the same).
    #[arg(long, value_name = "NAME")]
    dst_model: Option<String>,

    /// The destination experiment that receives the versions' runs (created if missing).
    #[arg(long, value_name = "NAME")]
    dst_experiment_name: String,

    /// Delete an existing destination model of that name, with its versions, first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    delete_model: bool,

    #[command(flatten)]
    permissions: PermissionsFlag,

    #[command(flatten)]
    import: ImportFlags,

    #[command(flatten)]
    registry: RegistryFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let dst = args.dst.client()?;
    let line = ProgressLine::start(&global, "copying");
    let mut import = ImportOptions {
        progress: Some(line.counters()),
        experiment_name: Some(args.dst_experiment_name.clone()),
        model_name: args.dst_model.clone(),
        delete_model: args.delete_model,
        ..args.import.options(&global)
    };
    let mut export = global.export_options();
    copy_permissions(
        args.permissions.export_permissions,
        &mut export,
        &mut import,
    );
    let import = args.registry.apply(import, &dst)?;
    let names = vec![args.src_model.clone()];
    RegistryFlags::check_names(&import, &names, &dst)?;
    let what = format!(
        "model {:?} from {} to {}",
        args.src_model,
        src.server(),
        dst.server()
    );
    let report = copy(&src, &dst, &import, async |sink| {
        export_models(&src, &names, sink, &export).await
    })
    .await;
    drop(line);
    let code = finish_import(report, args.import.json, global.quiet, "copied", &what)?;
    crate::cli::output::permissions_note(&export, &src, global.quiet);
    Ok(code)
}
