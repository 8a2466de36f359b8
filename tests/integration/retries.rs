//! Retries and reconciliation, with faults injected by a loopback proxy in front of a real server.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mlflow_archive::Error;
use mlflow_archive::mlflow::types::{KeyValue, Metric, ViewType};
use mlflow_archive::mlflow::{CreateModelVersion, CreateRun};

use crate::live_pair;
use crate::util::proxy::{Fault, FaultProxy};
use crate::util::{client, experiment_with_run, quick_client, unique};

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn transient_statuses_are_retried_and_retry_after_is_honoured() {
    let pair = live_pair!();
    let name = unique("retry");
    let id = client(&pair.src.uri)
        .create_experiment(&name, None, &[])
        .await
        .unwrap();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 5);

    proxy.push([
        Fault::Status(503, Some(1)),
        Fault::Status(500, None),
        Fault::Status(502, None),
    ]);
    let start = Instant::now();
    let e = c.get_experiment(&id).await.unwrap();
    assert_eq!(e.name, name);
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(count(&proxy.request_lines(), "experiments/get"), 4);

    proxy.clear();
    proxy.push([
        Fault::Status(429, None),
        Fault::Status(504, None),
        Fault::Status(408, None),
    ]);
    assert_eq!(c.get_experiment(&id).await.unwrap().name, name);
    assert_eq!(count(&proxy.request_lines(), "experiments/get"), 4);
}

#[tokio::test]
async fn retries_end_and_permanent_errors_are_not_retried() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 2);

    proxy.push([
        Fault::Status(503, None),
        Fault::Status(503, None),
        Fault::Status(503, None),
    ]);
    let err = c.get_experiment("1").await.unwrap_err();
    assert_eq!(err.api().map(|a| a.status), Some(503), "{err}");
    assert!(err.to_string().contains("experiment id \"1\""), "{err}");
    assert_eq!(proxy.request_lines().len(), 3, "one try and two retries");

    proxy.clear();
    proxy.push([Fault::Status(400, None)]);
    let err = c.get_experiment("1").await.unwrap_err();
    assert_eq!(err.api().map(|a| a.status), Some(400));
    assert_eq!(proxy.request_lines().len(), 1, "a 400 is final");

    proxy.clear();
    proxy.push([Fault::DropAfterForward, Fault::DropBeforeForward]);
    let found: Vec<_> = c
        .search_experiments(ViewType::All, None)
        .try_collect()
        .await
        .unwrap();
    assert!(!found.is_empty());
    assert_eq!(
        count(&proxy.request_lines(), "experiments/search"),
        3,
        "a safe read is retried after a broken connection"
    );
}

#[tokio::test]
async fn a_create_whose_answer_was_lost_is_found_not_repeated() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 4);
    let direct = client(&pair.src.uri);

    // The server created the experiment, but the answer never arrived.
    let name = unique("lost-answer");
    proxy.push([Fault::DropAfterForward]);
    let id = c.create_experiment(&name, None, &[]).await.unwrap();
    assert_eq!(direct.get_experiment(&id).await.unwrap().name, name);
    let lines = proxy.request_lines();
    assert_eq!(count(&lines, "experiments/create"), 1, "{lines:?}");
    assert_eq!(count(&lines, "experiments/get-by-name"), 1, "{lines:?}");

    // The request never reached the server: the lookup finds nothing, the create is sent again.
    proxy.clear();
    let name2 = unique("never-arrived");
    proxy.push([Fault::DropBeforeForward]);
    let id2 = c.create_experiment(&name2, None, &[]).await.unwrap();
    assert_eq!(direct.get_experiment(&id2).await.unwrap().name, name2);
    assert_eq!(count(&proxy.request_lines(), "experiments/create"), 2);

    // A run carries a marker tag, so a lost answer is settled by searching for it.
    proxy.clear();
    let marker = unique("marker");
    proxy.push([Fault::DropAfterForward]);
    let run = c
        .create_run(&CreateRun {
            experiment_id: id.clone(),
            tags: vec![KeyValue::new("mlflow_archive.test_marker", marker.clone())],
            reconcile_tag: Some("mlflow_archive.test_marker".into()),
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let runs: Vec<_> = direct
        .search_runs(&[&id], None, ViewType::All)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "exactly one run was created");
    assert_eq!(runs[0].info.run_id, run.info.run_id);

    // Without a marker the outcome cannot be settled: the caller is told, not lied to.
    proxy.clear();
    proxy.push([Fault::DropAfterForward]);
    let err = c
        .create_run(&CreateRun {
            experiment_id: id.clone(),
            ..CreateRun::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Ambiguous { .. }), "{err}");
    assert!(err.to_string().contains("may have taken effect"), "{err}");

    // Model versions too.
    let model = unique("lost-version");
    direct
        .create_registered_model(&model, None, &[])
        .await
        .unwrap();
    proxy.clear();
    proxy.push([Fault::DropAfterForward]);
    let v = c
        .create_model_version(&CreateModelVersion {
            name: model.clone(),
            source: format!("runs:/{}/model", run.info.run_id),
            run_id: Some(run.info.run_id.clone()),
            tags: vec![KeyValue::new("mlflow_archive.test_marker", marker.clone())],
            reconcile_tag: Some("mlflow_archive.test_marker".into()),
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    assert_eq!(v.version, "1");
    assert_eq!(direct.all_model_versions(&model).await.unwrap().len(), 1);

    // A 502 leaves the outcome unknown: the model is looked up by name, then created.
    let model2 = unique("lost-model");
    proxy.clear();
    proxy.push([Fault::Status(502, None)]);
    c.create_registered_model(&model2, Some("d"), &[])
        .await
        .unwrap();
    assert_eq!(
        direct
            .get_registered_model(&model2)
            .await
            .unwrap()
            .description,
        "d"
    );
}

#[tokio::test]
async fn metric_batches_are_retried_only_when_the_server_refused_them() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 4);
    let direct = client(&pair.src.uri);
    let rid = experiment_with_run(&direct, "batch").await.info.run_id;
    let points: Vec<Metric> = (0..10)
        .map(|i| Metric {
            key: "m".into(),
            value: i as f64,
            timestamp: i,
            step: i,
            ..Metric::default()
        })
        .collect();

    // 429: the server did not act, so the batch is sent again, and logged once.
    proxy.push([Fault::Status(429, None)]);
    c.log_batch(&rid, &points, &[], &[]).await.unwrap();
    let history = crate::util::history(&direct, &rid, "m").await;
    assert_eq!(history.len(), 10);

    // A lost answer to a metric batch is reported, not repeated (it would duplicate points).
    proxy.push([Fault::DropAfterForward]);
    let err = c.log_batch(&rid, &points, &[], &[]).await.unwrap_err();
    assert!(matches!(err, Error::Ambiguous { .. }), "{err}");
    assert!(err.to_string().contains(&rid), "{err}");

    // Params and tags alone are safe to repeat.
    proxy.push([Fault::DropAfterForward]);
    c.log_batch(
        &rid,
        &[],
        &[KeyValue::new("p", "1")],
        &[KeyValue::new("t", "1")],
    )
    .await
    .unwrap();
    let run = direct.get_run(&rid).await.unwrap();
    assert_eq!(run.data.params, vec![KeyValue::new("p", "1")]);
}

/// Measured with 32 requests in flight at a 2-worker server (issue 18): MLflow's SQL store
/// answers `400 BAD_REQUEST` "QueuePool limit ... reached, connection timed out" when more
/// requests wait than its connection pool holds. The server took nothing: the request (a create
/// too) is sent again like a 503, and the concurrency limit counts it as an overload; any other
/// 400 stays final.
#[tokio::test]
async fn a_server_out_of_database_connections_is_an_overload_and_retried() {
    const EXHAUSTED: &str = r#"{"error_code": "BAD_REQUEST", "message": "QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 (Background on this error at: https://sqlalche.me/e/20/3o7r)"}"#;
    let pair = live_pair!();
    let name = unique("pool");
    let exp = client(&pair.src.uri)
        .create_experiment(&name, None, &[])
        .await
        .unwrap();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 5);
    proxy.push([
        Fault::Reply(400, "application/json", EXHAUSTED),
        Fault::Reply(400, "application/json", EXHAUSTED),
    ]);
    let run = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            run_name: Some("r".into()),
            start_time: Some(1),
            tags: vec![],
            user_id: None,
            reconcile_tag: None,
        })
        .await
        .unwrap();
    assert_eq!(count(&proxy.request_lines(), "runs/create"), 3);
    assert_eq!(c.concurrency_summary().overloads, 2);
    let runs: Vec<_> = c
        .search_runs(&[exp], None, ViewType::All)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(runs.len(), 1, "one run: {runs:?}");
    assert_eq!(runs[0].info.run_id, run.info.run_id);

    proxy.clear();
    proxy.push([Fault::Reply(
        400,
        "application/json",
        r#"{"error_code": "BAD_REQUEST", "message": "something else"}"#,
    )]);
    let err = c.get_experiment("1").await.unwrap_err();
    assert_eq!(err.api().map(|a| a.status), Some(400), "{err}");
    assert_eq!(proxy.request_lines().len(), 1, "any other 400 is final");
}
