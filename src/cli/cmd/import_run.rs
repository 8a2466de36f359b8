//! `import-run`: the runs of an archive or tree into an experiment, or (`--run-id`) one of them,
//! as the Python tool's `import-run --run-id R --input DIR` does.

use std::process::ExitCode;

use crate::cli::Global;

/// Arguments of `import-run`: those of `import-experiment`, and `--run-id`.
#[derive(Debug, clap::Args)]
#[group(skip)]
pub struct Args {
    /// Import only this run of the input (an experiment's archive or tree holds several); an
    /// error names it if the input holds no such run. Default: every run of the input.
    #[arg(long, value_name = "ID")]
    run_id: Option<String>,

    #[command(flatten)]
    import: super::import_experiment::Args,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    super::import_experiment::run_only(args.import, global, args.run_id.as_deref()).await
}
