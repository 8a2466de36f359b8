//! `copy-all`: every active experiment and every registered model of one tracking server into
//! another, directly (no archive on disk, no temporary files): `export-all | import-all` in one
//! process.

use std::process::ExitCode;

use futures_util::TryStreamExt;
use mlflow_archive::mlflow::api::registry::RegistryKind;
use mlflow_archive::transfer::copy::copy_all;
use mlflow_archive::transfer::import::ImportOptions;

use crate::cli::Global;
use crate::cli::args::{
    AllTargets, DstServer, ExportFlags, ImportFlags, RegistryFlags, copy_permissions,
};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `copy-all`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: crate::cli::args::SrcServer,

    #[command(flatten)]
    dst: DstServer,

    #[command(flatten)]
    targets: AllTargets,

    #[command(flatten)]
    export: ExportFlags,

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
        experiment_name_prefix: args.targets.experiment_name_prefix.clone(),
        delete_model: args.targets.delete_model,
        ..args.import.options(&global)
    };
    let mut export = args.export.options(&global)?;
    copy_permissions(export.permissions, &mut export, &mut import);
    let import = args.registry.apply(import, &dst)?;
    if dst.registry_kind() == RegistryKind::UnityCatalog {
        let names: Vec<String> = src
            .search_registered_models(None)
            .map_ok(|m| m.name)
            .try_collect()
            .await?;
        RegistryFlags::check_names(&import, &names, &dst)?;
    }
    let what = format!("{} to {}", src.server(), dst.server());
    let report = copy_all(&src, &dst, &export, &import).await;
    drop(line);
    let code = finish_import(report, args.import.json, global.quiet, "copied", &what)?;
    crate::cli::output::permissions_note(&export, &src, global.quiet);
    crate::cli::output::uncarried_warnings(&src, None, global.quiet).await;
    Ok(code)
}
