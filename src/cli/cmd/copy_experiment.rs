//! `copy-experiment`: an experiment from one tracking server to another, directly (no archive
//! on disk, no temporary files), with the guarantees of export and import.

use std::process::ExitCode;

use mlflow_archive::transfer::copy::copy_experiments;
use mlflow_archive::transfer::export::ExportOptions;
use mlflow_archive::transfer::import::ImportOptions;

use super::export_experiment::resolve_experiment;
use crate::cli::Global;
use crate::cli::args::{DstServer, SrcServer, legacy_bool};

/// Arguments of `copy-experiment`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    src: SrcServer,

    #[command(flatten)]
    dst: DstServer,

    /// The source experiment: a name, or an id.
    #[arg(long, value_name = "ID|NAME")]
    src_experiment: String,

    /// The destination experiment (created if missing); default: the source's name.
    #[arg(long, value_name = "NAME")]
    dst_experiment_name: Option<String>,

    /// Copy deleted runs too.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    export_deleted_runs: bool,

    /// Add provenance tags `mlflow_tools.metadata.*` (export time, source experiment, tracking URI,
    /// run id) to every run.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    export_metadata_tags: bool,

    /// Keep the source's `mlflow.user` tag.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    use_src_user_id: bool,

    /// Keep `mlflow.*` tags (default true).
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "true", value_parser = legacy_bool)]
    import_mlflow_tags: bool,

    /// Print a JSON report (counts and the source → destination id maps) on standard output.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let src = args.src.client()?;
    let dst = args.dst.client()?;
    let experiment = resolve_experiment(&src, &args.src_experiment).await?;
    let export = ExportOptions {
        export_deleted_runs: args.export_deleted_runs,
        history_page: None,
        metadata_tags: args.export_metadata_tags,
    };
    let import = ImportOptions {
        experiment_name: Some(
            args.dst_experiment_name
                .clone()
                .unwrap_or_else(|| experiment.name.clone()),
        ),
        use_src_user_id: args.use_src_user_id,
        import_mlflow_tags: args.import_mlflow_tags,
        ..ImportOptions::default()
    };
    let report = copy_experiments(
        &src,
        &dst,
        std::slice::from_ref(&experiment),
        &export,
        &import,
    )
    .await
    .map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "copying experiment {} {:?} from {} to {}",
            experiment.experiment_id,
            experiment.name,
            src.server(),
            dst.server()
        ))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    if !global.quiet {
        eprintln!(
            "copied experiment {:?} from {} to {}: {} runs copied, {} already complete, {} redone; {} metric points, {} artifacts ({} bytes), {} logged models",
            experiment.name,
            src.server(),
            dst.server(),
            report.runs_imported,
            report.runs_skipped,
            report.runs_redone,
            report.metric_points,
            report.artifacts,
            report.artifact_bytes,
            report.logged_models.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
