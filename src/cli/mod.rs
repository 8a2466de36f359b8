//! The command line: clap definitions, one file per subcommand under `cmd/`, output and exit codes.

/// `println!` for reports and listings: a reader of standard output that went away (`| head`)
/// ends the program quietly with exit 0, as the README says (not our failure); any other failure
/// to write ends it with exit 1 and the cause. (`println!` would panic.)
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::cli::output::say_line(format_args!($($arg)*))
    };
}

mod archive_out;
mod args;
mod cmd;
mod log;
mod output;
mod partial;
mod progress;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// Move MLflow experiments, runs and registered models between tracking servers.
#[derive(Debug, Parser)]
#[command(name = "mlflow-archive", version, about, propagate_version = true)]
struct Cli {
    /// Print nothing but errors (no progress, no summary).
    #[arg(long, short = 'q', global = true)]
    quiet: bool,

    /// Requests in flight to each server, and runs (and logged models) transferred at once, fixed
    /// at N [default: measured: up to 32 requests in flight, more while the round trip dominates,
    /// fewer when the server slows or refuses]. Archives come out the same whatever it is.
    #[arg(long, short = 'j', global = true, value_name = "N", value_parser = parse_jobs)]
    jobs: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

/// The commands, declared group by group in the order of [`GROUPS`] (clap lists them, completes
/// them and writes their man pages in this order).
#[derive(Debug, Subcommand)]
enum Command {
    /// Export an experiment (runs, metric histories, artifacts, logged models) to an archive.
    ExportExperiment(cmd::export_experiment::Args),
    /// Export several experiments (names or ids, or all) to one archive.
    ExportExperimentList(cmd::export_experiment_list::Args),
    /// Export one run (with its experiment and the logged models it produced) to an archive.
    ExportRun(cmd::export_run::Args),
    /// Export a registered model with every version (and the runs behind them) to an archive.
    ExportModel(cmd::export_model::Args),
    /// Export prompts (MLflow 3) with every version and alias to an archive, by name or all.
    ExportPrompts(cmd::export_prompts::Args),
    /// Export every active experiment (with its traces and evaluation datasets) and every
    /// registered model and prompt of a server to one archive.
    ExportAll(cmd::export_all::Args),

    /// Import an archive's experiment into a tracking server (idempotent, resumable).
    ImportExperiment(cmd::import_experiment::Args),
    /// Import every experiment of an archive (optionally prefixing their names).
    ImportExperimentList(cmd::import_all::Args),
    /// Import the runs of an archive into an experiment, or one of them (--run-id).
    ImportRun(cmd::import_run::Args),
    /// Import an archive's registered model with every version (numbers, stages, aliases).
    ImportModel(cmd::import_model::Args),
    /// Import the prompts of an archive (every version, numbers and aliases), nothing else.
    ImportPrompts(cmd::import_prompts::Args),
    /// Import everything an archive holds: experiments, traces, datasets, models and prompts.
    ImportAll(cmd::import_all::Args),

    /// Copy an experiment from one server to another, directly (nothing staged on disk).
    CopyExperiment(cmd::copy_experiment::Args),
    /// Copy one run from one server to another, directly.
    CopyRun(cmd::copy_run::Args),
    /// Copy a registered model with every version from one server to another, directly.
    CopyModel(cmd::copy_model::Args),
    /// Copy every active experiment and every registered model from one server to another,
    /// directly (a whole migration, nothing staged on disk).
    CopyAll(cmd::copy_all::Args),
    /// Keep a replica: copy only what changed since the last sync (new and changed runs,
    /// deletions, new versions, traces), to a server or into an incremental archive.
    Sync(cmd::sync::Args),

    /// Prove a migration: every object of the source against the destination (servers,
    /// archives or trees), by kind: equal, missing, extra, different (exit 0 only when equal).
    Compare(cmd::compare::Args),

    /// Show what an archive holds: experiments, runs, models, versions, counts and sizes.
    Inspect(cmd::inspect::Args),
    /// Read a whole archive and check every CRC, seal and the trailer (exit 0 sound, 1 not).
    Verify(cmd::verify::Args),
    /// Convert between an archive and a directory of mlflow-export-import, offline, streaming.
    Convert(cmd::convert::Args),

    /// Write every registered model with all its versions to registered_models.json.
    ListRegisteredModels(cmd::list_registered_models::Args),

    /// Print the completion script of a shell (bash, zsh, fish, elvish, powershell).
    Completions(cmd::completions::Args),
    /// Print the manual page (roff), or write one page per command into a directory.
    Man(cmd::man::Args),
}

/// The headings of the command list in `--help`, each with its commands (clap has one heading
/// for all subcommands). Every command is in exactly one group (a unit test checks it); one left
/// out would still be listed, under "Other".
const GROUPS: &[(&str, &[&str])] = &[
    (
        "Export (from a server to an archive, directory or zip)",
        &[
            "export-experiment",
            "export-experiment-list",
            "export-run",
            "export-model",
            "export-prompts",
            "export-all",
        ],
    ),
    (
        "Import (from an archive, directory or zip into a server)",
        &[
            "import-experiment",
            "import-experiment-list",
            "import-run",
            "import-model",
            "import-prompts",
            "import-all",
        ],
    ),
    (
        "Copy (from one server to another, directly)",
        &["copy-experiment", "copy-run", "copy-model", "copy-all"],
    ),
    (
        "Sync (keep a replica: only what changed, to a server or an archive)",
        &["sync"],
    ),
    (
        "Check (a migration, source against destination)",
        &["compare"],
    ),
    ("Archives (offline)", &["inspect", "verify", "convert"]),
    ("Lists", &["list-registered-models"]),
    ("Help and shell", &["completions", "man", "help"]),
];

/// The command line's definition: [`Cli`]'s, with the command list of `--help` in [`GROUPS`].
pub fn command() -> clap::Command {
    let cmd = Cli::command();
    // clap renders the whole list (aligned, wrapped to the terminal, styled); it is cut into the
    // groups here and put back into the help template under their headings.
    let list = cmd
        .clone()
        .help_template("{subcommands}")
        .render_help()
        .ansi()
        .to_string();
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in list.lines() {
        let plain = strip_ansi(line);
        match (plain.strip_prefix("  "), entries.last_mut()) {
            (Some(rest), _) if !rest.starts_with(' ') => {
                let name = rest.split_whitespace().next().unwrap_or_default();
                entries.push((name.to_string(), format!("{line}\n")));
            }
            (_, Some((_, text))) => {
                text.push_str(line);
                text.push('\n');
            }
            (_, None) => {}
        }
    }
    let header = *cmd.get_styles().get_header();
    let mut sections = String::new();
    let mut section = |heading: &str, names: &dyn Fn(&str) -> bool| {
        let listed: String = entries
            .iter()
            .filter(|(name, _)| names(name))
            .map(|(_, text)| text.as_str())
            .collect();
        if !listed.is_empty() {
            sections.push_str(&format!("{header}{heading}:{header:#}\n{listed}\n"));
        }
    };
    for (heading, names) in GROUPS {
        section(heading, &|name| names.contains(&name));
    }
    section("Other", &|name| {
        GROUPS.iter().all(|(_, names)| !names.contains(&name))
    });
    cmd.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{sections}{header}Options:{header:#}\n{{options}}{{after-help}}"
    ))
}

/// `s` without its ANSI escape sequences (`ESC [ ... letter`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
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

/// A combination of arguments that clap cannot refuse by itself (each is fine alone): reported
/// the way clap reports bad usage, with the command's usage line, exit 2.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `--jobs`: 1 to 64.
fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n @ 1..=64) => Ok(n),
        _ => Err(format!("expected a number from 1 to 64, got {s:?}")),
    }
}

pub fn main() -> ExitCode {
    let matches = command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    log::install();
    let global = Global {
        quiet: cli.quiet,
        jobs: cli
            .jobs
            .unwrap_or(mlflow_archive::transfer::export::DEFAULT_JOBS),
    };
    args::set_concurrency(match cli.jobs {
        Some(n) => mlflow_archive::mlflow::Concurrency::Fixed(n),
        None => mlflow_archive::mlflow::Concurrency::Adaptive {
            max: mlflow_archive::transfer::export::DEFAULT_JOBS,
        },
    });
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
            Command::Sync(args) => cmd::sync::run(args, global).await,
            Command::ImportRun(args) => cmd::import_run::run(args, global).await,
            Command::CopyRun(args) => cmd::copy_run::run(args, global).await,
            Command::CopyModel(args) => cmd::copy_model::run(args, global).await,
            Command::ImportModel(args) => cmd::import_model::run(args, global).await,
            Command::ExportPrompts(args) => cmd::export_prompts::run(args, global).await,
            Command::ImportPrompts(args) => cmd::import_prompts::run(args, global).await,
            Command::ImportExperiment(args) => cmd::import_experiment::run(args, global).await,
            Command::Verify(args) => cmd::verify::run(args, global),
            Command::Compare(args) => cmd::compare::run(args, global).await,
            Command::Completions(args) => cmd::completions::run(args, global),
            Command::Man(args) => cmd::man::run(args, global),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) if output::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            let mut cmd = command();
            cmd.build();
            let kind = clap::error::ErrorKind::ArgumentConflict;
            match matches
                .subcommand_name()
                .and_then(|n| cmd.find_subcommand_mut(n))
            {
                Some(sub) => sub.error(kind, e.to_string()).exit(),
                None => command().error(kind, e.to_string()).exit(),
            }
        }
        Err(e) => {
            eprintln!("mlflow-archive: error: {}", output::one_line(&e));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_definition_is_sound_and_every_command_is_in_its_group_in_order() {
        let mut cmd = command();
        cmd.build();
        cmd.clone().debug_assert();
        let declared: Vec<&str> = cmd.get_subcommands().map(|c| c.get_name()).collect();
        let grouped: Vec<&str> = GROUPS.iter().flat_map(|(_, n)| n.iter().copied()).collect();
        assert_eq!(declared, grouped);
    }

    #[test]
    fn escape_sequences_are_stripped_and_text_is_kept() {
        assert_eq!(
            strip_ansi("  \u{1b}[1mexport-run\u{1b}[0m  Export ✓"),
            "  export-run  Export ✓"
        );
    }
}
