//! A whole server moved through proxies that cut 5 % of answers in their body, stall 0.5 %, and
//! refuse 10 % with 503: `copy-all` gives a destination equal to the source, and `export-all`
//! gives the very archive a fault-free export gives.

use std::time::Duration;

use bytes::Bytes;
use mlflow_archive::format::WriterBuilder;
use mlflow_archive::mlflow::types::KeyValue;
use mlflow_archive::mlflow::{ArtifactRoot, Client, ClientBuilder, CreateRun, TrackingConfig};
use mlflow_archive::transfer::archive_sink::ArchiveSink;
use mlflow_archive::transfer::copy::copy_all;
use mlflow_archive::transfer::export::{ExportOptions, export_all};
use mlflow_archive::transfer::import::ImportOptions;

use crate::cuts::noise;
use crate::fidelity::{assert_same, observe, populate_everything};
use crate::util::client;
use crate::util::proxy::{Chaos, Fault, FaultProxy};
use crate::util::server::MlflowServer;

/// Small history pages (so a history is several pages), quick retries, a 5 s answer timeout
/// (shorter would give up on metric batches that the loaded server takes seconds to write).
fn chaos_client(uri: &str) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(uri).unwrap())
        .retry(mlflow_archive::mlflow::RetryConfig {
            max_retries: 10,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(300),
            max_retry_after: Duration::from_secs(5),
        })
        .answer_timeout(Duration::from_secs(5))
        .page_size(500)
        .build()
        .unwrap()
}

fn chaos(seed: u64) -> Chaos {
    Chaos {
        state: seed,
        cut: 0.05,
        stall: 0.005,
        stall_for: Duration::from_secs(8),
        unavailable: 0.10,
    }
}

async fn export_to(c: &Client, path: &std::path::Path) {
    let file = std::fs::File::create(path).unwrap();
    let mut sink = ArchiveSink::start(std::io::BufWriter::new(file), WriterBuilder::new());
    let mut opts = ExportOptions::default();
    opts.export_deleted_runs = true;
    opts.history_page = Some(500);
    export_all(c, &mut sink, &opts).await.unwrap();
    sink.finish().await.unwrap();
}

#[tokio::test]
async fn a_whole_server_moves_whole_through_cuts_stalls_and_refusals() {
    let (a, b) = tokio::task::spawn_blocking(|| {
        let b = std::thread::spawn(|| MlflowServer::start("chaos-dst", None));
        (MlflowServer::start("chaos-src", None), b.join().unwrap())
    })
    .await
    .unwrap();
    let (Some(a), Some(b)) = (a, b) else {
        return;
    };
    let direct = client(&a.uri);
    let (experiment, model) = populate_everything(&direct).await;
    // Files of several MiB, which stream (and resume) rather than being held.
    let exp = direct
        .get_experiment_by_name(&experiment)
        .await
        .unwrap()
        .unwrap();
    let big = direct
        .create_run(&CreateRun {
            experiment_id: exp.experiment_id,
            run_name: Some("big files".into()),
            tags: vec![KeyValue::new("size", "large")],
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let root = ArtifactRoot::parse(&big.info.artifact_uri).unwrap();
    for (i, path) in ["a.bin", "deep/b.bin"].iter().enumerate() {
        let data = noise((3 << 20) + i * 4099, 40 + i as u64);
        direct
            .upload_artifact_bytes(&root, path, Bytes::from(data))
            .await
            .unwrap();
    }
    let want = observe(&direct, &experiment, Some(&model)).await;
    assert_eq!(want.runs["big files"].artifacts.len(), 2);
    assert!(
        want.runs["root"].histories["loss"].len() > 1000,
        "several pages of 500"
    );

    let (ps, pd) = (
        FaultProxy::start(&a.uri).await,
        FaultProxy::start(&b.uri).await,
    );
    ps.chaos(chaos(0x9e37_79b9_7f4a_7c15));
    pd.chaos(chaos(0x2545_f491_4f6c_dd1d));
    // Each kind at least once on each side, whatever the draw: a history page and a metric
    // batch that stall, a large download and a large upload cut midway, listings refused.
    ps.once_for("get-history", Fault::StallBody(0.5, Duration::from_secs(8)));
    ps.once_for("a.bin", Fault::CutBody(0.5));
    ps.once_for("artifacts?", Fault::Status(503, None));
    pd.once_for("log-batch", Fault::StallBody(0.5, Duration::from_secs(8)));
    pd.once_for("b.bin", Fault::Status(503, None));
    pd.once_for("runs/create", Fault::CutBody(0.5));

    // copy-all: source and destination both behind faults.
    let mut export = ExportOptions::default();
    export.export_deleted_runs = true;
    export.history_page = Some(500);
    let report = copy_all(
        &chaos_client(&ps.uri),
        &chaos_client(&pd.uri),
        &export,
        &ImportOptions {
            use_src_user_id: true,
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap_or_else(|f| panic!("copy-all failed: {f}"));
    assert!(report.runs_imported >= 6, "{report:?}");
    let got = observe(&client(&b.uri), &experiment, Some(&model)).await;
    assert_same(&want, &got, "copy-all through faults");

    // export-all through faults writes the same bytes as without them.
    let dir = tempfile::tempdir().unwrap();
    let (faulty, clean) = (
        dir.path().join("faulty.mlar"),
        dir.path().join("clean.mlar"),
    );
    export_to(&chaos_client(&ps.uri), &faulty).await;
    export_to(&direct, &clean).await;
    let (f, c) = (
        std::fs::read(&faulty).unwrap(),
        std::fs::read(&clean).unwrap(),
    );
    assert!(
        f == c,
        "the archives differ ({} and {} bytes)",
        f.len(),
        c.len()
    );

    // The faults happened, of every kind, on both sides.
    for (side, p) in [("source", &ps), ("destination", &pd)] {
        let faults = p.injected();
        for kind in ["CutBody", "StallBody", "Status(503"] {
            assert!(
                faults.iter().any(|f| f.starts_with(kind)),
                "{side}: no {kind} among {} faults",
                faults.len()
            );
        }
    }
}
