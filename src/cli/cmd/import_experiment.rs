//! `import-experiment`: an archive's experiment (runs, metric histories, artifacts, logged models)
//! into a tracking server, streamed from a file or standard input, idempotent and resumable.

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{ArchiveInput, DstServer, legacy_bool};

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

    /// Keep the source's `mlflow.user` tag.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    use_src_user_id: bool,

    /// Keep `mlflow.*` tags (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = legacy_bool)]
    import_mlflow_tags: bool,

    /// Keep provenance tags written by exporters (`mlflow_tools.metadata.*`); default false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    import_metadata_tags: bool,

    /// Only show what the archive holds and where it would go; import nothing.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    just_peek: bool,

    /// Print a JSON report (counts and the source → destination id maps) on standard output.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    if args.just_peek {
        let (name, reader) = args.input.reader()?;
        let summary = mlflow_archive::format::summary::summarize(reader, |u| {
            println!("{}", super::inspect::line(u))
        })?;
        let target = args
            .experiment_name
            .as_deref()
            .unwrap_or("(the archived names)");
        println!(
            "{name}: {}; would be imported into experiment {target:?} on {} (nothing was imported)",
            crate::cli::output::counts_line(&summary.counts),
            client.server()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (name, source) = args.input.open()?;
    let opts = ImportOptions {
        experiment_name: args.experiment_name.clone(),
        use_src_user_id: args.use_src_user_id,
        import_mlflow_tags: args.import_mlflow_tags,
        import_metadata_tags: args.import_metadata_tags,
        ..ImportOptions::default()
    };
    let report = import_archive(&client, source, &opts).await.map_err(|e| {
        anyhow::Error::from(e).context(format!("importing {name} into {}", client.server()))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !global.quiet {
        eprintln!(
            "imported {name} into {}: {} runs imported, {} already complete, {} redone; {} metric points, {} artifacts ({} bytes), {} logged models",
            client.server(),
            report.runs_imported,
            report.runs_skipped,
            report.runs_redone,
            report.metric_points,
            report.artifacts,
            report.artifact_bytes,
            report.logged_models.len()
        );
        if !report.missing_parents.is_empty() {
            eprintln!(
                "note: {} nested runs have a parent that was not in the archive; the parent's source id is in tag mlflow_archive.source.parent_run_id",
                report.missing_parents.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
