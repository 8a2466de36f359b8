//! Servers whose artifacts live in an object store (S3, Azure Blob, GCS emulators on loopback) or a
//! local directory, as most production servers run (`--no-serve-artifacts
//! --default-artifact-root …`): the harness that the artifact-store tests stand on, checked end to
//! end. Each test starts a store and a server on it, fills the server through MLflow's own Python
//! client (`tests/harness/populate.py`, which writes the store itself), finds every file in the
//! store with the store's own SDK (`tests/harness/store_files.py`), and loads the registered model
//! back with MLflow (`tests/harness/predict.py`).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::util::server::MlflowServer;
use crate::util::stores::{Azurite, GcsEmulator, S3Emulator, StoredFile, files_under};
use crate::util::{client, stores::harness_python, unique};

/// The size of the big artifact populate.py writes: above one MiB, below boto3's multipart
/// threshold (8 MiB).
const BIG: usize = 3 * 1024 * 1024;

/// What populate.py made, as its JSON summary says.
struct Populated {
    summary: Value,
    env: Vec<(&'static str, String)>,
}

impl Populated {
    fn str(&self, pointer: &str) -> String {
        self.summary
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {pointer} in {}", self.summary))
            .to_string()
    }
}

/// Fills `server` through MLflow's Python client with `env`, then checks what every store must
/// show: the locations MLflow gave (under the artifact root `expect_root`, in the shapes MLflow
/// 3.17.2 gives), every file in the store byte for byte, the logged model's files, the REST API's
/// view, and a prediction of both registered versions, by number and by alias.
async fn populate_and_check(
    server: &MlflowServer,
    env: Vec<(&'static str, String)>,
    expect_root: &str,
) -> Populated {
    let experiment = unique("stores");
    let model = unique("doubler");
    let uri = server.uri.clone();
    let (exp, m, e) = (experiment.clone(), model.clone(), env.clone());
    let out = tokio::task::spawn_blocking(move || {
        harness_python("populate.py", &uri, &[&exp, &m, &BIG.to_string()], &e)
    })
    .await
    .unwrap();
    let p = Populated {
        summary: serde_json::from_str(&out).unwrap(),
        env,
    };

    // The locations, in the shapes MLflow 3.17.2 gives them on this kind of root.
    let exp_id = p.str("/experiment_id");
    let exp_root = format!("{expect_root}/{exp_id}");
    assert_eq!(p.str("/artifact_location"), exp_root);
    for run in ["files", "model"] {
        let id = p.str(&format!("/runs/{run}/run_id"));
        assert_eq!(
            p.str(&format!("/runs/{run}/artifact_uri")),
            format!("{exp_root}/{id}/artifacts"),
            "run {run}"
        );
    }
    let model_id = p.str("/logged_model/model_id");
    assert_eq!(
        p.str("/logged_model/artifact_location"),
        format!("{exp_root}/models/{model_id}/artifacts")
    );
    let model_run = p.str("/runs/model/run_id");
    assert_eq!(p.str("/versions/1/source"), format!("models:/{model_id}"));
    assert_eq!(
        p.str("/versions/2/source"),
        format!("{exp_root}/{model_run}/artifacts/model")
    );
    for (v, alias) in [("1", "champion"), ("2", "legacy")] {
        assert_eq!(p.str(&format!("/versions/{v}/run_id")), model_run);
        assert_eq!(p.summary["versions"][v]["aliases"], json!([alias]));
    }

    // mlflow-archive's REST client sees the same location.
    let files_run = p.str("/runs/files/run_id");
    let run = client(&server.uri).get_run(&files_run).await.unwrap();
    assert_eq!(run.info.artifact_uri, p.str("/runs/files/artifact_uri"));

    // Every file is in the store, byte for byte (read with the store's own SDK).
    let want: BTreeMap<String, StoredFile> =
        serde_json::from_value(p.summary["files"].clone()).unwrap();
    assert_eq!(want["data/big.bin"].size, BIG as u64);
    assert_eq!(want["data/empty.txt"].size, 0);
    let (run_uri, model_uri, source2, e) = (
        p.str("/runs/files/artifact_uri"),
        p.str("/logged_model/artifact_location"),
        p.str("/versions/2/source"),
        p.env.clone(),
    );
    let (got, model_files, source2_files) = tokio::task::spawn_blocking(move || {
        (
            files_under(&run_uri, &e),
            files_under(&model_uri, &e),
            files_under(&source2, &e),
        )
    })
    .await
    .unwrap();
    assert_eq!(got, want);
    for f in ["MLmodel", "python_model.pkl", "requirements.txt"] {
        assert!(model_files.contains_key(f), "{f} in {model_files:?}");
    }
    // Version 2 is an MLflow 2 style model saved into the run: the same files, its own MLmodel.
    assert_eq!(
        source2_files.keys().collect::<Vec<_>>(),
        model_files.keys().collect::<Vec<_>>()
    );

    // MLflow loads the registered model from the store and answers.
    let (uri, e) = (server.uri.clone(), p.env.clone());
    let answers = tokio::task::spawn_blocking(move || {
        let uris = ["/1", "@champion", "/2", "@legacy"].map(|v| format!("models:/{model}{v}"));
        let mut args = vec![uri.as_str()];
        args.extend(uris.iter().map(String::as_str));
        harness_python("predict.py", &uri, &args, &e)
    })
    .await
    .unwrap();
    let answers: Value = serde_json::from_str(&answers).unwrap();
    let doubled = json!({"x": [2.0, 5.0, -6.0], "y": [0.0, 20.0, 1.0]});
    assert_eq!(answers.as_object().unwrap().len(), 4, "{answers}");
    for (uri, answer) in answers.as_object().unwrap() {
        assert_eq!(answer, &doubled, "{uri}");
    }
    p
}

#[tokio::test]
async fn a_server_with_an_s3_root_is_populated_and_its_model_loads_from_the_store() {
    let Some((s3, server, root)) = tokio::task::spawn_blocking(|| {
        let s3 = S3Emulator::start()?;
        let root = s3.root("mlflow-src");
        let server = MlflowServer::start_with_artifact_root("s3", &root, &s3.env())?;
        Some((s3, server, root))
    })
    .await
    .unwrap() else {
        return;
    };
    assert_eq!(root, "s3://mlflow-src/mlruns");
    populate_and_check(&server, s3.env(), &root).await;
}

#[tokio::test]
async fn a_server_with_an_azure_root_is_populated_and_its_model_loads_from_the_store() {
    let Some((az, server, root)) = tokio::task::spawn_blocking(|| {
        let az = Azurite::start()?;
        let root = az.root("mlflow-src");
        let server = MlflowServer::start_with_artifact_root("azure", &root, &az.env())?;
        Some((az, server, root))
    })
    .await
    .unwrap() else {
        return;
    };
    assert_eq!(
        root,
        "wasbs://mlflow-src@devstoreaccount1.blob.core.windows.net/mlruns"
    );
    assert!(az.endpoint.starts_with("http://127.0.0.1:"));
    assert!(
        az.connection_string
            .contains(&format!(";BlobEndpoint={};", az.endpoint))
    );
    populate_and_check(&server, az.env(), &root).await;
}

#[tokio::test]
async fn a_server_with_a_gcs_root_is_populated_and_its_files_read_through_the_xml_api() {
    let Some((gcs, server, root)) = tokio::task::spawn_blocking(|| {
        let gcs = GcsEmulator::start()?;
        let root = gcs.root("mlflow-src");
        let server = MlflowServer::start_with_artifact_root("gcs", &root, &gcs.env())?;
        Some((gcs, server, root))
    })
    .await
    .unwrap() else {
        return;
    };
    assert_eq!(root, "gs://mlflow-src/mlruns");
    let p = populate_and_check(&server, gcs.env(), &root).await;

    // What the object_store crate reads: an XML listing of the run's prefix, and each object by
    // path, unauthenticated.
    let run_uri = p.str("/runs/files/artifact_uri");
    let prefix = run_uri.strip_prefix("gs://mlflow-src/").unwrap();
    let (status, listing) = gcs.xml(
        "GET",
        &format!("/mlflow-src?list-type=2&prefix={prefix}/"),
        b"",
    );
    let listing = String::from_utf8(listing).unwrap();
    assert_eq!(status, 200, "{listing}");
    for (path, file) in p.summary["files"].as_object().unwrap() {
        let key = format!("{prefix}/{path}");
        assert!(
            listing.contains(&format!("<Key>{key}</Key>")),
            "{key} in {listing}"
        );
        let (status, body) = gcs.xml(
            "GET",
            &format!("/mlflow-src/{}", key.replace(' ', "%20")),
            b"",
        );
        assert_eq!(status, 200, "{key}");
        assert_eq!(json!(body.len()), file["size"], "{key}");
    }
    // …but it cannot write there: this emulator refuses a plain XML upload (object_store's PUT).
    // When a newer one accepts it, this fails: GCS can then be tested as a destination too.
    let (status, body) = gcs.xml("PUT", &format!("/mlflow-src/{prefix}/new.txt"), b"hi");
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("invalid uploadType"));
}

#[tokio::test]
async fn a_server_with_a_local_directory_root_is_populated_and_its_model_loads_from_it() {
    let Some(server) =
        tokio::task::spawn_blocking(|| MlflowServer::start_with_local_artifact_root("local"))
            .await
            .unwrap()
    else {
        return;
    };
    let root = server.artifact_root.clone().unwrap();
    assert!(root.starts_with('/'), "{root}");
    populate_and_check(&server, vec![], &root).await;
}
