//! Evaluation datasets (MLflow 3.4+, `d-…` ids) through the REST client: made on the source with
//! MLflow's own `mlflow.genai.datasets`, copied with the client alone, and read back on the
//! destination with MLflow's client again.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use mlflow_archive::Error;
use mlflow_archive::mlflow::api::datasets::UPSERT_BATCH;
use mlflow_archive::mlflow::{
    Client, ClientBuilder, EvaluationDataset, RetryConfig, TrackingConfig, record_for_upsert,
};

use crate::live_pair;
use crate::util::proxy::{Fault, FaultProxy};
use crate::util::server::{MlflowServer, venv};
use crate::util::{client, quick_client, unique};

/// `make URI NAME EXP1 EXP2` creates two experiments and a dataset linked to both, with 25
/// records (with expectations, with outputs, without expectations, with an explicit source;
/// some with tags) and dataset tags; prints the dataset id. `read URI ID` prints the dataset as
/// MLflow's client sees it: name, tags, creator, experiment names, and the records of `to_df()`
/// ordered by inputs.
const SCRIPT: &str = r#"
import json, math, sys
import mlflow
import mlflow.genai.datasets as gd
mlflow.set_tracking_uri(sys.argv[2])
if sys.argv[1] == "make":
    name, e1, e2 = sys.argv[3:6]
    ids = [mlflow.create_experiment(e1), mlflow.create_experiment(e2)]
    ds = gd.create_dataset(name=name, experiment_id=ids, tags={"team": "qa", "stage": "prod"})
    records = []
    for i in range(25):
        r = {"inputs": {"question": f"q{i}", "n": i}}
        kind = i % 4
        if kind == 0:
            r["expectations"] = {"answer": f"a{i}", "score": i}
        elif kind == 1:
            r["outputs"] = {"resp": f"r{i}"}
            r["expectations"] = {"answer": f"a{i}"}
        elif kind == 3:
            r["source"] = {"source_type": "DOCUMENT", "source_data": {"source_id": f"doc-{i}"}}
            r["expectations"] = {"a": i}
        if i % 5 == 0:
            r["tags"] = {"k": f"v{i}"}
        records.append(r)
    ds.merge_records(records)
    gd.set_dataset_tags(dataset_id=ds.dataset_id, tags={"owner": "me"})
    print(ds.dataset_id)
else:
    ds = gd.get_dataset(dataset_id=sys.argv[3])
    def clean(v):
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else v
    records = []
    for row in ds.to_df().to_dict("records"):
        source = clean(row["source"])
        records.append({
            "inputs": row["inputs"],
            "outputs": clean(row["outputs"]),
            "expectations": clean(row["expectations"]),
            "tags": clean(row["tags"]),
            "source_type": clean(row["source_type"]),
            "source_id": clean(row["source_id"]),
            "source": source.to_dict() if source is not None else None,
        })
    records.sort(key=lambda r: json.dumps(r["inputs"], sort_keys=True))
    client = mlflow.MlflowClient()
    experiments = sorted(client.get_experiment(e).name for e in ds.experiment_ids)
    print(json.dumps({"name": ds.name, "tags": ds.tags, "created_by": ds.created_by,
                      "experiments": experiments, "records": records}, sort_keys=True))
"#;

/// Runs the script with `args` (see [`SCRIPT`]); returns its output, trimmed.
async fn script(args: &[&str]) -> String {
    let python = venv().expect("the venv").join("bin/python");
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "dataset script {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// What one copy did.
#[derive(Debug, Default, PartialEq)]
struct Copied {
    created: usize,
    pages: Vec<usize>,
    inserted: u64,
    updated: u64,
}

/// Copies the datasets named `name` from `src` to `dst` with the client alone: their experiments
/// (by name), then each dataset (reused by name if there), its tags, links and records, read in
/// pages of 10 and upserted in batches.
async fn copy_datasets(src: &Client, dst: &Client, name: &str) -> Copied {
    let mut copied = Copied::default();
    let datasets: Vec<EvaluationDataset> = src
        .search_datasets(&[])
        .try_filter(|d| std::future::ready(d.name == name))
        .try_collect()
        .await
        .unwrap();
    for d in datasets {
        let mut experiments = Vec::new();
        for id in src.dataset_experiment_ids(&d.dataset_id).await.unwrap() {
            let exp = src.get_experiment(&id).await.unwrap();
            let mapped = match dst.get_experiment_by_name(&exp.name).await.unwrap() {
                Some(e) => e.experiment_id,
                None => dst.create_experiment(&exp.name, None, &[]).await.unwrap(),
            };
            experiments.push(mapped);
        }
        let existing = dst.find_datasets_by_name(&d.name).await.unwrap();
        let target = match existing.as_slice() {
            [] => {
                copied.created += 1;
                dst.create_dataset(&d.name, &experiments, &d.tags)
                    .await
                    .unwrap()
            }
            [one] => {
                dst.set_dataset_tags(&one.dataset_id, &d.tags)
                    .await
                    .unwrap();
                dst.add_dataset_experiments(&one.dataset_id, &experiments)
                    .await
                    .unwrap();
                one.clone()
            }
            many => panic!(
                "{} datasets named {:?} on the destination",
                many.len(),
                d.name
            ),
        };
        let mut pages = std::pin::pin!(src.dataset_records(&d.dataset_id, Some(10)));
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            copied.pages.push(page.len());
            let batch: Vec<_> = page.iter().map(record_for_upsert).collect();
            for chunk in batch.chunks(UPSERT_BATCH.min(7)) {
                let (i, u) = dst
                    .upsert_dataset_records(&target.dataset_id, chunk)
                    .await
                    .unwrap();
                copied.inserted += i;
                copied.updated += u;
            }
        }
    }
    copied
}

#[tokio::test]
async fn datasets_copied_with_the_client_read_the_same_in_mlflow() {
    let pair = live_pair!();
    let (src, dst) = (client(&pair.src.uri), client(&pair.dst.uri));
    let name = unique("qa-set");
    let (e1, e2) = (unique("ds-exp"), unique("ds-exp"));
    let id = script(&["make", &pair.src.uri, &name, &e1, &e2]).await;
    assert!(id.starts_with("d-"), "{id}");

    // What the client reads on the source.
    let found = src.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let d = &found[0];
    assert_eq!(d.dataset_id, id);
    assert_eq!(src.get_dataset(&id).await.unwrap().as_ref(), Some(d));
    for (k, v) in [("team", "qa"), ("stage", "prod"), ("owner", "me")] {
        assert_eq!(d.tags.get(k).map(String::as_str), Some(v), "{:?}", d.tags);
    }
    assert!(d.tags.contains_key("mlflow.user"), "{:?}", d.tags);
    assert_eq!(d.created_by.as_ref(), d.tags.get("mlflow.user"));
    assert_eq!(d.profile.as_deref(), Some(r#"{"num_records": 25}"#));
    assert!(
        d.schema.as_deref().unwrap_or("").contains("question"),
        "{d:?}"
    );
    let e1_id = src
        .get_experiment_by_name(&e1)
        .await
        .unwrap()
        .unwrap()
        .experiment_id;
    let links = src.dataset_experiment_ids(&id).await.unwrap();
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(links.contains(&e1_id), "{links:?}");
    let of_e1: Vec<_> = src
        .search_datasets(std::slice::from_ref(&e1_id))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(of_e1, found, "the datasets of experiment {e1_id}");
    let all: Vec<_> = src.dataset_records(&id, None).try_collect().await.unwrap();
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), [25]);
    let record = all[0]
        .iter()
        .find(|r| r["inputs"]["question"] == "q3")
        .expect("record q3");
    assert_eq!(record["source_id"], "doc-3");
    assert_eq!(record["source"]["source_type"], "DOCUMENT");

    // Copied with the client alone; MLflow reads the same dataset on both sides.
    let first = copy_datasets(&src, &dst, &name).await;
    assert_eq!(
        first,
        Copied {
            created: 1,
            pages: vec![10, 10, 5],
            inserted: 25,
            updated: 0
        }
    );
    let want = script(&["read", &pair.src.uri, &id]).await;
    for needle in [
        r#""source_id": "doc-3""#,
        r#""outputs": {"resp": "r1"}"#,
        "CODE",
    ] {
        assert!(want.contains(needle), "{needle} in {want}");
    }
    let on_dst = dst.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(on_dst.len(), 1, "{on_dst:?}");
    let dst_id = on_dst[0].dataset_id.clone();
    assert_ne!(dst_id, id);
    assert_eq!(script(&["read", &pair.dst.uri, &dst_id]).await, want);
    assert_eq!(on_dst[0].tags, d.tags);
    assert_eq!(on_dst[0].created_by, d.created_by);

    // Again: nothing new, nothing twice.
    let second = copy_datasets(&src, &dst, &name).await;
    assert_eq!(
        second,
        Copied {
            created: 0,
            pages: vec![10, 10, 5],
            inserted: 0,
            updated: 25
        }
    );
    let on_dst = dst.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(on_dst.len(), 1, "{on_dst:?}");
    assert_eq!(on_dst[0].profile.as_deref(), Some(r#"{"num_records": 25}"#));
    assert_eq!(script(&["read", &pair.dst.uri, &dst_id]).await, want);
}

#[tokio::test]
async fn unknown_datasets_are_none_or_not_found() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    assert_eq!(c.get_dataset("d-nope").await.unwrap(), None);
    // The server answers an empty page for an unknown dataset; the client says it is unknown.
    let err = c
        .dataset_records("d-nope", None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(c.dataset_experiment_ids("d-nope").await.unwrap().is_empty());
    assert!(
        c.find_datasets_by_name(&unique("none"))
            .await
            .unwrap()
            .is_empty()
    );

    // An empty dataset has no records, and is no error; names with quotes are found exactly.
    for name in [
        unique("it's"),
        unique(r#"say "hi" \ 100%"#),
        unique(r#"it's "both""#),
    ] {
        let d = c
            .create_dataset(&name, &[], &BTreeMap::new())
            .await
            .unwrap();
        let pages: Vec<_> = c
            .dataset_records(&d.dataset_id, Some(10))
            .try_collect()
            .await
            .unwrap();
        assert_eq!(pages, [Vec::<serde_json::Value>::new()]);
        let found = c.find_datasets_by_name(&name).await.unwrap();
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        assert_eq!(found[0].dataset_id, d.dataset_id);
    }
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn a_lost_create_answer_takes_the_new_dataset_and_makes_no_second() {
    let pair = live_pair!();
    let direct = client(&pair.dst.uri);
    let proxy = FaultProxy::start(&pair.dst.uri).await;
    let c = quick_client(&proxy.uri, 4);
    let name = unique("lost-ds");
    let mut tags = BTreeMap::new();
    tags.insert("mlflow.user".to_string(), "alice".to_string());
    // One of that name is there already (names are not unique): it is not the one created.
    let old = direct.create_dataset(&name, &[], &tags).await.unwrap();

    // The server created it, but the answer never arrived.
    proxy.once_for("datasets/create", Fault::DropAfterForward);
    let made = c.create_dataset(&name, &[], &tags).await.unwrap();
    assert_ne!(made.dataset_id, old.dataset_id);
    assert_eq!(made.created_by.as_deref(), Some("alice"));
    let all = direct.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(all.iter().any(|d| d.dataset_id == made.dataset_id));
    assert_eq!(count(&proxy.request_lines(), "datasets/create"), 1);

    // The request never reached the server: the lookup finds nothing new, it is sent again.
    proxy.clear();
    proxy.once_for("datasets/create", Fault::DropBeforeForward);
    let again = c.create_dataset(&name, &[], &tags).await.unwrap();
    let all = direct.find_datasets_by_name(&name).await.unwrap();
    assert_eq!(all.len(), 3, "{all:?}");
    assert!(all.iter().any(|d| d.dataset_id == again.dataset_id));
    assert_eq!(count(&proxy.request_lines(), "datasets/create"), 2);
}

/// A client whose retries would take seconds: a request it retries is seen.
fn slow_retry_client(uri: &str) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(uri).unwrap())
        .retry(RetryConfig {
            max_retries: 2,
            initial_backoff: Duration::from_secs(3),
            max_backoff: Duration::from_secs(3),
            max_retry_after: Duration::from_secs(5),
        })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_file_store_has_no_datasets_and_says_so_at_once() {
    let Some(server) = MlflowServer::start_with_file_store("ds-file") else {
        return;
    };
    let c = slow_retry_client(&server.uri);
    // The file store answers FEATURE_DISABLED as HTTP 500: final, not retried.
    let started = Instant::now();
    let none: Vec<_> = c.search_datasets(&[]).try_collect().await.unwrap();
    assert!(none.is_empty());
    let err = c.get_dataset("d-x").await.unwrap_err();
    assert!(err.is_unsupported() && !err.is_retryable(), "{err}");
    assert!(err.to_string().contains("FEATURE_DISABLED"), "{err}");
    let err = c
        .create_dataset("x", &[], &BTreeMap::new())
        .await
        .unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(!matches!(err, Error::Ambiguous { .. }), "{err}");
    let err = c.find_datasets_by_name("x").await.unwrap_err();
    assert!(err.is_unsupported(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "retried: {:?}",
        started.elapsed()
    );
}

/// What Flask (MLflow's server) answers for a route it does not have: MLflow before 3.4 has no
/// datasets routes.
const FLASK_404: &str = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n";

#[tokio::test]
async fn only_the_answers_of_a_server_without_datasets_mean_none() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let c = quick_client(&proxy.uri, 1);
    // There is at least one dataset on the source.
    client(&pair.src.uri)
        .create_dataset(&unique("some"), &[], &BTreeMap::new())
        .await
        .unwrap();
    let search = || async { c.search_datasets(&[]).try_collect::<Vec<_>>().await };
    assert!(!search().await.unwrap().is_empty());

    for absent in [
        Fault::Reply(404, "text/html; charset=utf-8", FLASK_404),
        Fault::Reply(
            404,
            "application/json",
            r#"{"error_code":"ENDPOINT_NOT_FOUND","message":"No API found for 'POST /mlflow/datasets/search'"}"#,
        ),
        Fault::Reply(
            501,
            "application/json",
            r#"{"error_code":"NOT_IMPLEMENTED","message":"no"}"#,
        ),
    ] {
        proxy.once_for("datasets/search", absent.clone());
        assert!(search().await.unwrap().is_empty(), "{absent:?}");
    }
    for refused in [
        Fault::Reply(
            403,
            "application/json",
            r#"{"error_code":"PERMISSION_DENIED","message":"no"}"#,
        ),
        Fault::Reply(
            404,
            "application/json",
            r#"{"error_code":"RESOURCE_DOES_NOT_EXIST","message":"no"}"#,
        ),
        Fault::Reply(400, "application/json", r#"{"error_code":"BAD_REQUEST"}"#),
    ] {
        proxy.once_for("datasets/search", refused.clone());
        assert!(search().await.is_err(), "{refused:?}");
    }
    // A transient failure is retried, then the datasets are there.
    proxy.once_for(
        "datasets/search",
        Fault::Reply(500, "text/html", "<html>500</html>"),
    );
    assert!(!search().await.unwrap().is_empty());
}
