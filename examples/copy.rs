//! Copies one experiment (runs, metric histories, artifacts, logged models) from one tracking
//! server to another, nothing staged on disk; prints the source → destination run ids.
//!
//! ```text
//! cargo run --example copy -- http://old-server:5000 http://new-server:5000 EXPERIMENT [NEW_NAME]
//! ```
//!
//! Credentials come from the URIs or from MLflow's own variables (`MLFLOW_TRACKING_TOKEN`,
//! `MLFLOW_TRACKING_USERNAME`/`_PASSWORD`). Running it twice copies nothing twice: the import is
//! idempotent and resumable.

use mlflow_archive::mlflow::{Client, ClientBuilder, Env, TrackingConfig};
use mlflow_archive::transfer::copy::copy_experiments;
use mlflow_archive::transfer::export::ExportOptions;
use mlflow_archive::transfer::import::ImportOptions;

fn client(uri: &str) -> mlflow_archive::Result<Client> {
    ClientBuilder::new(TrackingConfig::resolve(Some(uri), &Env::from_process())?).build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [src_uri, dst_uri, name, rest @ ..] = args.as_slice() else {
        return Err("usage: copy SRC_URI DST_URI EXPERIMENT [NEW_NAME]".into());
    };
    let (src, dst) = (client(src_uri)?, client(dst_uri)?);
    let experiment = src
        .get_experiment_by_name(name)
        .await?
        .ok_or_else(|| format!("no experiment named {name:?} on {}", src.server()))?;

    let mut export = ExportOptions::default();
    export.jobs = 8;
    let import = ImportOptions {
        experiment_name: rest.first().cloned(),
        ..ImportOptions::default()
    };
    let report = copy_experiments(&src, &dst, &[experiment], &export, &import).await?;
    println!(
        "{} runs copied, {} already there",
        report.runs_imported, report.runs_skipped
    );
    for (from, to) in &report.runs {
        println!("{from} -> {to}");
    }
    Ok(())
}
