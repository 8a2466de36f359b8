//! `import-model`: an archive's registered model with every version (numbers, gaps, stages,
//! aliases, tags), after the runs and logged models the versions come from.

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{
    ArchiveInput, DstServer, ImportFlags, LeaveOut, RegistryFlags, legacy_bool,
};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `import-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    /// The destination registered model's name (default: the archived name).
    #[arg(long, value_name = "NAME")]
    model: Option<String>,

    /// The experiment that receives the versions' runs (created if missing).
    #[arg(long, value_name = "NAME")]
    experiment_name: String,

    /// Delete an existing model of that name, with its versions, first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    delete_model: bool,

    #[command(flatten)]
    flags: ImportFlags,

    #[command(flatten)]
    registry: RegistryFlags,

    #[command(flatten)]
    leave_out: LeaveOut,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let opts = ImportOptions {
        experiment_name: Some(args.experiment_name.clone()),
        model_name: args.model.clone(),
        delete_model: args.delete_model,
        replay: args.input.replay(),
        ..args.leave_out.apply(args.flags.options(&global))
    };
    let opts = args.registry.apply_for(opts, &client, &args.input).await?;
    let (name, source) = args.input.open()?;
    let line = ProgressLine::start(&global, "importing");
    let opts = ImportOptions {
        progress: Some(line.counters()),
        ..opts
    };
    let report = import_archive(&client, source, &opts).await;
    drop(line);
    finish_import(
        report,
        args.flags.json,
        global.quiet,
        "imported",
        &format!("{name} into {}", client.server()),
    )
}
