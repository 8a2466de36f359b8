//! `import-all` and `import-experiment-list`: everything an archive holds (experiments under their
//! archived names, optionally prefixed; registered models under their names).

use std::process::ExitCode;

use mlflow_archive::transfer::import::{ImportOptions, import_archive};

use crate::cli::Global;
use crate::cli::args::{ArchiveInput, DstServer, legacy_bool};

/// Arguments of `import-all` and `import-experiment-list`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    server: DstServer,

    #[command(flatten)]
    input: ArchiveInput,

    /// Prefix every experiment's name with this.
    #[arg(long, value_name = "PREFIX")]
    experiment_name_prefix: Option<String>,

    /// Keep the source's `mlflow.user` tag.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    use_src_user_id: bool,

    /// Delete existing registered models of the same names first.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    delete_model: bool,

    /// Keep provenance tags written by exporters (`mlflow_tools.metadata.*`); default false.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", default_value = "false", value_parser = legacy_bool)]
    import_metadata_tags: bool,

    /// Print a JSON report on standard output.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: Args, global: Global) -> anyhow::Result<ExitCode> {
    let client = args.server.client()?;
    let (name, source) = args.input.open()?;
    let opts = ImportOptions {
        experiment_name_prefix: args.experiment_name_prefix.clone(),
        use_src_user_id: args.use_src_user_id,
        delete_model: args.delete_model,
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
            "imported {name} into {}: {} experiments; {} runs imported, {} already complete, {} redone; {} models, {} versions created, {} already there",
            client.server(),
            report.experiments.len(),
            report.runs_imported,
            report.runs_skipped,
            report.runs_redone,
            report.models.len(),
            report.versions_imported,
            report.versions_skipped
        );
    }
    Ok(ExitCode::SUCCESS)
}
