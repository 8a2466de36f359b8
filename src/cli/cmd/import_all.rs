//! `import-all` and `import-experiment-list`: everything an archive holds (experiments under their
//! archived names, optionally prefixed; registered models under their names).

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{AllTargets, ArchiveInput, DstServer, ImportFlags, LeaveOut, RegistryFlags};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `import-all` and `import-experiment-list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    #[command(flatten)]
    targets: AllTargets,

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
        experiment_name_prefix: args.targets.experiment_name_prefix.clone(),
        delete_model: args.targets.delete_model,
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
