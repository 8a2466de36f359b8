//! `export-model`: a registered model with every version, and the runs and logged models the
//! versions come from, into an archive.

use std::path::PathBuf;
use std::process::ExitCode;

use mlflow_archive::format::WriterBuilder;
use mlflow_archive::format::model::Source;
use mlflow_archive::transfer::export::export_models;

use crate::cli::Global;
use crate::cli::archive_out::{check_output, output_name, write_archive};
use crate::cli::args::{NotebookFlag, SrcServer};
use crate::cli::output::counts_line;

/// Arguments of `export-model`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: SrcServer,

    /// The registered model's name.
    #[arg(long, value_name = "NAME")]
    model: String,

    /// Where to write: an archive (a path ending in .mlar, or - for standard output), or a new
    /// directory in the layout of mlflow-export-import (export file version 2), or a .zip of one.
    #[arg(
        short = 'o',
        long = "output",
        visible_alias = "output-dir",
        value_name = "OUT"
    )]
    output: PathBuf,

    #[command(flatten)]
    tree: crate::cli::args::TreeFlags,

    /// zstd level, 1 to 19.
    #[arg(long, default_value_t = 3)]
    level: i32,

    #[command(flatten)]
    notebooks: NotebookFlag,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    check_output(&args.output)?;
    let client = args.server.client()?;
    let builder = WriterBuilder::new().level(args.level).source(Source {
        tracking_uri: Some(client.server().to_string()),
        scope: Some("model".into()),
    });
    let names = vec![args.model.clone()];
    let opts = args.notebooks.apply(global.export_options());
    let (summary, rep) = write_archive(&args.output, builder, &global, &args.tree, async |sink| {
        export_models(&client, &names, sink, &opts).await
    })
    .await
    .map_err(|e| {
        e.context(format!(
            "exporting model {:?} failed; no archive was written",
            args.model
        ))
    })?;
    if !global.quiet {
        eprintln!(
            "exported model {:?} from {} to {}: {}; {} bytes",
            args.model,
            client.server(),
            output_name(&args.output),
            counts_line(&summary.counts),
            summary.archive_bytes
        );
    }
    crate::cli::output::notebook_notes(&opts, &rep, global.quiet);
    Ok(ExitCode::SUCCESS)
}
