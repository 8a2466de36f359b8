//! `import-prompts`: the prompts of an archive (every version, numbers and aliases) into a
//! server, and nothing else it holds, as the Python tool's `import-prompts` does.

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};
use mlflow_archive::transfer::select::only_prompts;

use crate::cli::Global;
use crate::cli::args::{ArchiveInput, DstServer, ImportFlags, legacy_bool};
use crate::cli::output::finish_import;
use crate::cli::progress::ProgressLine;

/// Arguments of `import-prompts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    /// Delete existing prompts of the same names (and their versions) first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    delete_prompt: bool,

    #[command(flatten)]
    flags: ImportFlags,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let (name, source) = args.input.open()?;
    let line = ProgressLine::start(&global, "importing");
    let opts = ImportOptions {
        progress: Some(line.counters()),
        delete_model: args.delete_prompt,
        replay: args.input.replay(),
        ..args.flags.options(&global)
    };
    let report = import_archive(&client, only_prompts(source), &opts).await;
    drop(line);
    finish_import(
        report,
        args.flags.json,
        global.quiet,
        "imported",
        &format!("the prompts of {name} into {}", client.server()),
    )
}
