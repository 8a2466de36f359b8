//! `import-experiment` (and `import-run`): an archive's experiment (runs, metric histories,
//! artifacts, logged models) into a tracking server, streamed from a file or standard input,
//! idempotent and resumable.

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{ArchiveInput, DstServer, ImportFlags, LeaveOut, legacy_bool};
use crate::cli::output::{counts_line, finish_import};
use crate::cli::progress::ProgressLine;

/// Arguments of `import-experiment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    /// The destination experiment (created if missing); default: the archived experiment's name.
    #[arg(long, value_name = "NAME")]
    experiment_name: Option<String>,

    /// Only show what the archive holds and where it would go; import nothing.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    just_peek: bool,

    #[command(flatten)]
    flags: ImportFlags,

    #[command(flatten)]
    leave_out: LeaveOut,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    run_only(args, global, None).await
}

/// Imports the input, or only its run `only_run` (`import-run --run-id`).
pub async fn run_only(
    args: Args,
    global: Global,
    only_run: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    if args.just_peek {
        use mlflow_archive::format::summary::UnitSummary;
        let (name, reader) = args.input.reader()?;
        // With a run named, only it (and the experiments) is shown: what would be imported.
        let mut found = false;
        let summary = mlflow_archive::format::summary::summarize(reader, |u| {
            let shown = match (only_run, u) {
                (None, _) | (Some(_), UnitSummary::Experiment { .. }) => true,
                (Some(want), UnitSummary::Run { id, .. }) => {
                    found |= id == want;
                    id == want
                }
                (Some(_), _) => false,
            };
            if shown {
                say!("{}", super::inspect::line(u))
            }
        })?;
        let target = args
            .experiment_name
            .as_deref()
            .unwrap_or("(the archived names)");
        let what = match only_run {
            Some(id) if !found => anyhow::bail!(
                "run {id}: not in {name} (it holds {}); give --run-id one of its runs, or leave it out to import every run",
                counts_line(&summary.counts)
            ),
            Some(id) => format!("run {id}"),
            None => counts_line(&summary.counts),
        };
        let line = format!(
            "{name}: {what}; would be imported into experiment {target:?} on {} (nothing was imported)",
            client.server()
        );
        say!("{}", crate::cli::output::clean(&line));
        return Ok(ExitCode::SUCCESS);
    }
    let (name, mut source) = args.input.open()?;
    if let Some(run_id) = only_run {
        source = mlflow_archive::transfer::select::only_run(source, run_id);
    }
    let line = ProgressLine::start(&global, "importing");
    let opts = ImportOptions {
        progress: Some(line.counters()),
        experiment_name: args.experiment_name.clone(),
        replay: args.input.replay(),
        ..args.leave_out.apply(args.flags.options(&global))
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
