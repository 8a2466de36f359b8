//! `list-registered-models`: every registered model with all its versions, as JSON.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::transfer::list_models::list_registered_models;

use crate::cli::Global;
use crate::cli::args::SrcServer;
use crate::cli::output::Output;

/// Arguments of `list-registered-models`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// Where to write the JSON (`-` for standard output).
    #[arg(
        short = 'o',
        long = "output",
        value_name = "FILE",
        default_value = "registered_models.json"
    )]
    output: PathBuf,

    /// List the prompts (MLflow 3) instead of the registered models: MLflow keeps a prompt as a
    /// registered model tagged mlflow.prompt.is_prompt, which its model searches leave out.
    #[arg(long)]
    prompts: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let mut out = Output::open(&args.output)?;
    let name = out.name();
    match list_registered_models(&client, &mut out, &name, args.prompts).await {
        Ok((_, summary)) => {
            out.commit()?;
            if !global.quiet {
                eprintln!(
                    "wrote {} {} with {} versions from {} to {name}",
                    summary.models,
                    if args.prompts {
                        "prompts"
                    } else {
                        "registered models"
                    },
                    summary.versions,
                    client.server()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            out.abandon();
            Err(e.into())
        }
    }
}
