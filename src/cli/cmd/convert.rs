//! `convert`: offline, from any of archive / mlflow-export-import tree to the other, streaming.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use mlflow_archive::format::ArchiveReader;
use mlflow_archive::legacy::v2_write::Shape;

use crate::cli::Global;
use crate::cli::output::{input_name, open_input};
use crate::cli::partial::Partial;

/// Arguments of `convert`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to read: an archive (.mlar, or - for standard input), or a directory or .zip written by
    /// mlflow-export-import.
    #[arg(value_name = "IN")]
    input: PathBuf,

    /// What to write: an archive (a path ending in .mlar, or - for standard output), a new
    /// directory in the layout of mlflow-export-import (export file version 2), or a .zip of one.
    #[arg(value_name = "OUT")]
    output: PathBuf,

    /// The tree's shape: experiment, experiments (the export-experiments layout), model, run or
    /// all (the export-all layout). Default: what the input holds (its export's scope).
    #[arg(long, value_name = "SHAPE", value_enum)]
    shape: Option<ShapeArg>,

    #[command(flatten)]
    tree: crate::cli::args::TreeFlags,
}

/// `--shape`: the layouts of the Python tool's export commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ShapeArg {
    // (the values are described in `--shape`'s own help)
    Experiment,
    Experiments,
    Model,
    Run,
    All,
}

impl From<ShapeArg> for Shape {
    fn from(s: ShapeArg) -> Shape {
        match s {
            ShapeArg::Experiment => Shape::Experiment,
            ShapeArg::Experiments => Shape::Experiments,
            ShapeArg::Model => Shape::Model,
            ShapeArg::Run => Shape::Run,
            ShapeArg::All => Shape::Bulk,
        }
    }
}

pub fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let name = input_name(&args.input);
    let to_archive =
        args.output.as_os_str() == "-" || args.output.extension().is_some_and(|e| e == "mlar");
    if to_archive {
        if !args.input.is_dir() && args.input.extension().is_none_or(|e| e != "zip") {
            anyhow::bail!(
                "{name} is an archive already; to check it, run verify; to change its compression, export again"
            );
        }
        // The tree is read into archive bytes (checked as they are written) and copied out.
        let mut input = open_input(&args.input)?;
        let summary = crate::cli::archive_out::copy_to_output(&mut input, &args.output)
            .with_context(|| format!("converting {name}"))?;
        if !global.quiet {
            eprintln!(
                "converted {name} to {}: {summary} bytes",
                crate::cli::archive_out::output_name(&args.output)
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let input = open_input(&args.input)?;
    let mut reader = ArchiveReader::new(input).with_context(|| format!("reading {name}"))?;
    let shape = match args.shape {
        Some(s) => s.into(),
        None => Shape::for_scope(
            reader
                .header()
                .source
                .as_ref()
                .and_then(|s| s.scope.as_deref()),
        ),
    };
    let zip = crate::cli::archive_out::is_zip(&args.output);
    crate::cli::archive_out::check_output(&args.output)?;
    // Written as OUT.partial, renamed when complete, removed on failure.
    let partial = if zip {
        Partial::prepare(&args.output)?
    } else {
        Partial::dir(&args.output)?
    };
    let (summary, dropped) = crate::cli::archive_out::write_tree_from(
        &mut reader,
        partial.path(),
        zip,
        shape,
        &args.tree,
    )
    .with_context(|| format!("converting {name}"))?;
    partial.commit(&args.output)?;
    crate::cli::archive_out::print_dropped(&dropped, global.quiet);
    if !global.quiet {
        eprintln!(
            "converted {name} to {} ({shape:?} shape, {} layout of mlflow-export-import): {} experiments, {} runs, {} logged models, {} registered models with {} versions, {} artifact files",
            args.output.display(),
            args.tree.layout,
            summary.experiments,
            summary.runs,
            summary.logged_models,
            summary.models,
            summary.versions,
            summary.artifacts
        );
    }
    Ok(ExitCode::SUCCESS)
}
