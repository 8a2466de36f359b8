//! `export-prompts`: prompts (MLflow 3) with every version and alias into an archive, by name or
//! all of them, as the Python tool's `export-prompts` does.

use std::process::ExitCode;

use futures_util::TryStreamExt;
use mlflow_archive::transfer::export::export_models;
use mlflow_archive::transfer::source::Source;

use crate::cli::Global;
use crate::cli::archive_out::write_archive;
use crate::cli::args::{ArchiveOutput, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-prompts`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The prompts: `all`, or names separated by commas.
    #[arg(long, value_name = "NAMES", default_value = "all")]
    prompts: String,

    #[command(flatten)]
    output: ArchiveOutput,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let out = args.output.settings()?;
    let client = args.server.client()?;
    let names: Vec<String> = if args.prompts == "all" {
        client
            .registered_models(true)
            .map_ok(|m| m.name)
            .try_collect()
            .await?
    } else {
        args.prompts
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect()
    };
    for n in &names {
        let m = client.registered_model(n).await?;
        if !m.tags.iter().any(|t| {
            t.key == mlflow_archive::format::model::PROMPT_TAG
                && t.value.eq_ignore_ascii_case("true")
        }) {
            anyhow::bail!(
                "{n:?} on {} is a registered model, not a prompt: export it with export-model",
                client.server()
            );
        }
    }
    let opts = global.export_options();
    let (summary, _) = write_archive(&out, client.server(), "prompts", &global, async |sink| {
        export_models(&client, &names, sink, &opts).await
    })
    .await
    .map_err(|e| e.context("exporting prompts failed; no archive was written"))?;
    if !global.quiet {
        eprintln!(
            "exported {} prompts from {} to {}: {}",
            names.len(),
            client.server(),
            out.name(),
            counts_line(&summary.counts)
        );
    }
    Ok(ExitCode::SUCCESS)
}
