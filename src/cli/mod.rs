//! The command line: clap definitions, one file per subcommand under `cmd/`, output and exit codes.

mod archive_out;
mod args;
mod cmd;
mod log;
mod output;
mod partial;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Move MLflow experiments, runs and registered models between tracking servers.
#[derive(Debug, Parser)]
#[command(name = "mlflow-archive", version, about, propagate_version = true)]
struct Cli {
    /// Print nothing but errors (no progress, no summary).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    /// Runs (and logged models) transferred at once. Archives come out the same whatever it is.
    #[arg(long, short = 'j', global = true, value_name = "N", default_value_t = mlflow_archive::transfer::export::DEFAULT_JOBS, value_parser = parse_jobs)]
    jobs: usize,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Convert between an archive and a directory of mlflow-export-import, offline, streaming.
    Convert(cmd::convert::Args),
    /// Copy an experiment from one server to another, directly (nothing staged on disk).
    CopyExperiment(cmd::copy_experiment::Args),
    /// Export an experiment (runs, metric histories, artifacts, logged models) to an archive.
    ExportExperiment(cmd::export_experiment::Args),
    /// Export several experiments (names or ids, or all) to one archive.
    ExportExperimentList(cmd::export_experiment_list::Args),
    /// Import every experiment of an archive (optionally prefixing their names).
    ImportExperimentList(cmd::import_all::Args),
    /// Export every active experiment and every registered model of a server to one archive.
    ExportAll(cmd::export_all::Args),
    /// Import everything an archive holds: experiments and registered models.
    ImportAll(cmd::import_all::Args),
    /// Copy every active experiment and every registered model from one server to another,
    /// directly (a whole migration, nothing staged on disk).
    CopyAll(cmd::copy_all::Args),
    /// Export one run (with its experiment and the logged models it produced) to an archive.
    ExportRun(cmd::export_run::Args),
    /// Import the runs of an archive into an experiment, or one of them (--run-id).
    ImportRun(cmd::import_run::Args),
    /// Copy one run from one server to another, directly.
    CopyRun(cmd::copy_run::Args),
    /// Copy a registered model with every version from one server to another, directly.
    CopyModel(cmd::copy_model::Args),
    /// Export a registered model with every version (and the runs behind them) to an archive.
    ExportModel(cmd::export_model::Args),
    /// Import an archive's registered model with every version (numbers, stages, aliases).
    ImportModel(cmd::import_model::Args),
    /// Import an archive's experiment into a tracking server (idempotent, resumable).
    ImportExperiment(cmd::import_experiment::Args),
    /// Write every registered model with all its versions to registered_models.json.
    ListRegisteredModels(cmd::list_registered_models::Args),
    /// Show what an archive holds: experiments, runs, models, versions, counts and sizes.
    Inspect(cmd::inspect::Args),
    /// Read a whole archive and check every CRC, seal and the trailer (exit 0 sound, 1 not).
    Verify(cmd::verify::Args),
}

/// Global settings every command sees.
#[derive(Debug, Clone, Copy)]
pub struct Global {
    /// `--quiet`.
    pub quiet: bool,
    /// `--jobs`.
    pub jobs: usize,
}

impl Global {
    /// Default export options with `--jobs` applied.
    pub fn export_options(&self) -> mlflow_archive::transfer::export::ExportOptions {
        let mut opts = mlflow_archive::transfer::export::ExportOptions::default();
        opts.jobs = self.jobs;
        opts
    }
}

/// `--jobs`: 1 to 64.
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("expected a number from 1 to 64, got {s:?}")),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    log::install();
    let global = Global {
        quiet: cli.quiet,
        jobs: cli.jobs,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mlflow-archive: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Interrupted (Ctrl-C, a scheduler's kill): partial outputs are removed, then exit 130 / 143.
    {
        use tokio::signal::unix::{SignalKind, signal};
        let _context = runtime.enter();
        if let (Ok(interrupt), Ok(terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            runtime.spawn(partial::on_signal(interrupt, terminate));
        }
    }
    let result = runtime.block_on(async {
        match cli.command {
            Command::ListRegisteredModels(args) => {
                cmd::list_registered_models::run(args, global).await
            }
            Command::Inspect(args) => cmd::inspect::run(args, global),
            Command::Convert(args) => cmd::convert::run(args, global),
            Command::ExportExperiment(args) => cmd::export_experiment::run(args, global).await,
            Command::CopyExperiment(args) => cmd::copy_experiment::run(args, global).await,
            Command::ExportModel(args) => cmd::export_model::run(args, global).await,
            Command::ExportRun(args) => cmd::export_run::run(args, global).await,
            Command::ExportExperimentList(args) => {
                cmd::export_experiment_list::run(args, global).await
            }
            Command::ImportExperimentList(args) => cmd::import_all::run(args, global).await,
            Command::ExportAll(args) => cmd::export_all::run(args, global).await,
            Command::ImportAll(args) => cmd::import_all::run(args, global).await,
            Command::CopyAll(args) => cmd::copy_all::run(args, global).await,
            Command::ImportRun(args) => cmd::import_run::run(args, global).await,
            Command::CopyRun(args) => cmd::copy_run::run(args, global).await,
            Command::CopyModel(args) => cmd::copy_model::run(args, global).await,
            Command::ImportModel(args) => cmd::import_model::run(args, global).await,
            Command::ImportExperiment(args) => cmd::import_experiment::run(args, global).await,
            Command::Verify(args) => cmd::verify::run(args, global),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mlflow-archive: error: {}", output::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
