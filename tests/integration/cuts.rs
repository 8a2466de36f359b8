//! Answers cut or stalled in the middle of their body, servers that never answer, and uploads
//! that must be sent again: faults injected by the loopback proxy in front of real servers.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::{KeyValue, Metric};
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, ClientBuilder, CreateRun, RetryConfig, TrackingConfig,
};

use crate::live_pair;
use crate::util::proxy::{Fault, FaultProxy};
use crate::util::{cli, client, experiment_with_run, output, unique};

/// A client with quick retries and an answer timeout of `answer` (for fault tests).
pub fn faulty_client(uri: &str, max_retries: u32, answer: Duration) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(uri).unwrap())
        .retry(RetryConfig {
            max_retries,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
            max_retry_after: Duration::from_secs(5),
        })
        .answer_timeout(answer)
        .build()
        .unwrap()
}

/// `n` bytes that do not compress.
pub fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

async fn download(c: &Client, root: &ArtifactRoot, path: &str, size: u64) -> Vec<u8> {
    let dl = c.download_artifact(root, path, Some(size)).await.unwrap();
    let chunks: Vec<Bytes> = dl.body.try_collect().await.unwrap();
    chunks.concat()
}

#[tokio::test]
async fn an_answer_cut_or_stalled_in_its_body_is_read_again() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = faulty_client(&proxy.uri, 4, Duration::from_secs(1));
    let direct = client(&pair.src.uri);
    let name = unique("cut");
    direct.create_experiment(&name, None, &[]).await.unwrap();

    // A safe request whose answer is cut after its head is sent again.
    proxy.push([Fault::CutBody(0.5)]);
    let found = c.get_experiment_by_name(&name).await.unwrap();
    assert_eq!(found.unwrap().name, name);
    assert_eq!(proxy.request_lines().len(), 2);

    // An error answer cut in its body is not taken for another error: a "not found" whose body
    // was cut would read as a bare 404.
    proxy.push([Fault::CutBody(0.5)]);
    let missing = c.get_experiment_by_name(&unique("missing")).await.unwrap();
    assert!(missing.is_none());

    // One that stalls in its body is given up after the answer timeout (not 300 s), then sent
    // again.
    let started = Instant::now();
    proxy.push([Fault::StallBody(0.5, Duration::from_secs(8))]);
    assert!(c.get_experiment_by_name(&name).await.unwrap().is_some());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );

    // When every try is cut, the error says what happened, not "cannot reach".
    proxy.push(std::iter::repeat_n(Fault::CutBody(0.5), 5));
    let err = c
        .get_experiment_by_name(&name)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("the answer was cut after"), "{err}");
    assert!(err.contains("connection lost to"), "{err}");
    assert!(err.contains("(5 tries)"), "{err}");
    assert!(!err.contains("cannot reach"), "{err}");

    // A create whose answer is cut after the server acted is found by its marker, not repeated.
    let exp = direct.get_experiment_by_name(&name).await.unwrap().unwrap();
    proxy.push([Fault::CutBody(0.5)]);
    let run = c
        .create_run(&CreateRun {
            experiment_id: exp.experiment_id.clone(),
            tags: vec![KeyValue::new("marker", "m1")],
            reconcile_tag: Some("marker".into()),
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let same = direct
        .find_runs_by_tag(&exp.experiment_id, "marker", "m1")
        .await
        .unwrap();
    assert_eq!(same.len(), 1);
    assert_eq!(same[0].info.run_id, run.info.run_id);

    // A metric batch whose success status arrived is done, even if the rest of its answer was
    // cut; one refused with 503 was not taken, and is sent again. Each point is logged once.
    let rid = run.info.run_id;
    let points = |from: i64| -> Vec<Metric> {
        (from..from + 10)
            .map(|i| Metric {
                key: "m".into(),
                value: i as f64,
                timestamp: i,
                step: i,
                ..Metric::default()
            })
            .collect()
    };
    proxy.push([Fault::CutBody(0.5)]);
    c.log_batch(&rid, &points(0), &[], &[]).await.unwrap();
    proxy.push([Fault::Status(503, None)]);
    c.log_batch(&rid, &points(10), &[], &[]).await.unwrap();
    let history = crate::util::history(&direct, &rid, "m").await;
    assert_eq!(history.len(), 20);
}

#[tokio::test]
async fn a_download_cut_midway_resumes_from_the_byte_reached() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = faulty_client(&proxy.uri, 4, Duration::from_secs(1));
    let direct = client(&pair.src.uri);
    let run = experiment_with_run(&direct, "resume").await;
    let root = ArtifactRoot::parse(&run.info.artifact_uri).unwrap();
    let data = noise(3 << 20, 7);
    let size = data.len() as u64;
    direct
        .upload_artifact_bytes(&root, "big.bin", Bytes::from(data.clone()))
        .await
        .unwrap();

    // Cut at 30 %: the rest is asked for with a range from the byte reached.
    proxy.clear();
    proxy.push([Fault::CutBody(0.3)]);
    assert!(download(&c, &root, "big.bin", size).await == data);
    let heads = proxy.requests();
    assert_eq!(heads.len(), 2, "{heads:?}");
    let from: u64 = heads[1]
        .lines()
        .find_map(|l| l.strip_prefix("range: bytes="))
        .and_then(|r| r.trim().trim_end_matches('-').parse().ok())
        .unwrap_or_else(|| panic!("no range asked for: {}", heads[1]));
    assert!(from > 0 && from < size, "{from}");

    // A server that ignores the range sends the whole file again: the bytes already passed on
    // are skipped, none comes twice.
    proxy.push([Fault::CutBody(0.6), Fault::PassWithoutRange]);
    assert!(download(&c, &root, "big.bin", size).await == data);

    // A body that stalls is given up after the answer timeout, then resumed.
    proxy.push([Fault::StallBody(0.5, Duration::from_secs(8))]);
    let started = Instant::now();
    assert!(download(&c, &root, "big.bin", size).await == data);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_never_answers_is_given_up_in_seconds() {
    // Accepts connections and reads requests, but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    let mut cmd = cli();
    cmd.args(["list-registered-models", "--src-uri", &uri, "-o", "-"])
        .env("MLFLOW_HTTP_REQUEST_TIMEOUT", "1");
    let started = Instant::now();
    let out = output(cmd).await;
    let took = started.elapsed();
    silent.abort();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no answer within 1 s (3 tries)"), "{err}");
    assert!(err.contains("MLFLOW_HTTP_REQUEST_TIMEOUT"), "{err}");
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn an_upload_refused_after_its_body_is_sent_again_from_the_source() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let run = experiment_with_run(&src, "replay").await;
    let experiment = src
        .get_experiment(&run.info.experiment_id)
        .await
        .unwrap()
        .name;
    let root = ArtifactRoot::parse(&run.info.artifact_uri).unwrap();
    // Over the size that imports hold in memory: it streams, and cannot simply be sent again.
    let data = noise(3 << 20, 11);
    src.upload_artifact_bytes(&root, "big.bin", Bytes::from(data.clone()))
        .await
        .unwrap();
    let proxy = FaultProxy::start(&pair.dst.uri).await;
    let dst = client(&pair.dst.uri);
    let dst_file = |exp: String| {
        let dst = dst.clone();
        async move {
            let runs = crate::util::runs_of(&dst, &exp).await;
            assert_eq!(runs.len(), 1, "{exp}");
            let root = ArtifactRoot::parse(&runs[0].info.artifact_uri).unwrap();
            download(&dst, &root, "big.bin", 3 << 20).await
        }
    };
    let run_cli = |args: Vec<String>, stdin: Option<Vec<u8>>| async move {
        let mut cmd = cli();
        cmd.args(&args);
        if let Some(input) = stdin {
            cmd.write_stdin(input);
        }
        output(cmd).await
    };

    // copy-experiment: downloaded again from the source.
    let copied = unique("replay-copy");
    proxy.once_for("big.bin", Fault::Status(503, None));
    let out = run_cli(
        vec![
            "copy-experiment".into(),
            "--src-uri".into(),
            pair.src.uri.clone(),
            "--dst-uri".into(),
            proxy.uri.clone(),
            "--src-experiment".into(),
            experiment.clone(),
            "--dst-experiment-name".into(),
            copied.clone(),
        ],
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dst_file(copied).await == data);
    let refused = proxy.injected();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("PUT"), "{refused:?}");

    // import-experiment from a file: read again from the file.
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("replay.mlar");
    let out = run_cli(
        vec![
            "export-experiment".into(),
            "--src-uri".into(),
            pair.src.uri.clone(),
            "--experiment".into(),
            experiment.clone(),
            "-o".into(),
            archive.display().to_string(),
        ],
        None,
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported = unique("replay-file");
    proxy.once_for("big.bin", Fault::Status(503, None));
    let import = |name: &str, input: &str| {
        vec![
            "import-experiment".to_string(),
            "--dst-uri".into(),
            proxy.uri.clone(),
            "--experiment-name".into(),
            name.to_string(),
            "-i".into(),
            input.to_string(),
        ]
    };
    let out = run_cli(import(&imported, &archive.display().to_string()), None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dst_file(imported).await == data);

    // From standard input it cannot be read again: the run is left unfinished, the command
    // fails saying so, and the same import from the file finishes it.
    let piped = unique("replay-stdin");
    proxy.once_for("big.bin", Fault::Status(503, None));
    let bytes = std::fs::read(&archive).unwrap();
    let out = run_cli(import(&piped, "-"), Some(bytes)).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot be sent again"), "{err}");
    assert!(err.contains("artifact \"big.bin\": its body"), "{err}");
    assert!(err.contains("big.bin"), "{err}");
    let out = run_cli(import(&piped, &archive.display().to_string()), None).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live: Vec<_> = crate::util::runs_of(&dst, &piped)
        .await
        .into_iter()
        .filter(|r| !mlflow_archive::transfer::import::is_abandoned(r))
        .collect();
    assert_eq!(live.len(), 1);
    let root = ArtifactRoot::parse(&live[0].info.artifact_uri).unwrap();
    assert!(download(&dst, &root, "big.bin", 3 << 20).await == data);
}
