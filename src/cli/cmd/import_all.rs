//! `import-all` and `import-experiment-list`: everything an archive holds (experiments under their
//! archived names, optionally prefixed; registered models under their names).

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{ArchiveInput, DstServer, ImportFlags, legacy_bool};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `import-all` and `import-experiment-list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    /// Prefix every experiment's name with this.
    #[arg(long, value_name = "PREFIX")]
    experiment_name_prefix: Option<String>,

    /// Delete existing registered models of the same names first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    delete_model: bool,

    #[command(flatten)]
    flags: ImportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let (name, source) = args.input.open()?;
    let line = ProgressLine::start(&global, "importing");
    let opts = ImportOptions {
        progress: Some(line.counters()),
        experiment_name_prefix: args.experiment_name_prefix.clone(),
        delete_model: args.delete_model,
        ..args.flags.options(&global)
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
