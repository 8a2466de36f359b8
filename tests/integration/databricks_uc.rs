//! runs against the Databricks stand-in, not a real workspace.
//!
//! Unity Catalog's model registry (issue 16, item 4): a workspace-registry model with
//! Production, Staging and Archived versions, tags and descriptions copied into
//! `databricks-uc://B` under a mapped name with each `--stage-to`; a version without a signature
//! refused by name, and the bypass; two models on one lower-case name refused before anything is
//! written; Unity Catalog → archive → Unity Catalog; temporary credentials expiring mid-upload,
//! renewed. What arrives is read back with MLflow's own client in Databricks mode
//! (`tests/harness/uc_read.py`: versions, tags, aliases, and every file through temporary
//! credentials and the S3 front), and with the stand-in's REST for what MLflow's entities do not
//! show (`run_tracking_server_id`, the request log).

use std::collections::BTreeMap;
use std::path::PathBuf;

use base64::Engine as _;
use bytes::Bytes;
use mlflow_archive::mlflow::config::{DatabricksEnv, Env};
use mlflow_archive::mlflow::types::KeyValue;
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, ClientBuilder, CreateModelVersion, CreateRun, TrackingConfig, UpdateRun,
};
use serde_json::{Value, json};

use crate::databricks_standin;
use crate::util::databricks::{ClientAuth, DatabricksStandin, Settings};
use crate::util::{cli, output, unique};

/// The `DATABRICKS_*` variables a developer may have set: the CLI must read the test's profiles.
const DATABRICKS_VARIABLES: &[&str] = &[
    "DATABRICKS_HOST",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_ID",
    "DATABRICKS_CLIENT_SECRET",
    "DATABRICKS_USERNAME",
    "DATABRICKS_PASSWORD",
    "DATABRICKS_CONFIG_PROFILE",
    "DATABRICKS_AUTH_TYPE",
    "MLFLOW_REGISTRY_URI",
];

fn signed_mlmodel(run: &str) -> String {
    format!(
        "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\nrun_id: {run}\nsignature:\n  inputs: '[{{\"type\": \"double\", \"name\": \"x\", \"required\": true}}]'\n  outputs: '[{{\"type\": \"double\", \"name\": \"x\", \"required\": true}}]'\n  params: null\nmlflow_version: 3.17.2\n"
    )
}

fn unsigned_mlmodel(run: &str) -> String {
    format!(
        "artifact_path: model\nflavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\nrun_id: {run}\nmlflow_version: 3.17.2\n"
    )
}

/// The files of a seeded model besides its `MLmodel`.
fn model_files() -> BTreeMap<String, Vec<u8>> {
    BTreeMap::from([
        (
            "python_model.pkl".to_string(),
            (0..=255u8).cycle().take(3000).collect(),
        ),
        (
            "env/requirements.txt".to_string(),
            b"mlflow==3.17.2\n".to_vec(),
        ),
        ("empty.txt".to_string(), Vec::new()),
    ])
}

/// Users and tokens on workspaces 0 and 1, and a configuration file with profile `A` (workspace
/// 0) and `B` (workspace 1).
struct Setup<'a> {
    dbx: &'a DatabricksStandin,
    dir: tempfile::TempDir,
    tag: String,
    users: [String; 2],
    tokens: [String; 2],
}

impl<'a> Setup<'a> {
    async fn new(dbx: &'a DatabricksStandin) -> Setup<'a> {
        let tag = unique("uc");
        let users = [
            format!("ann-{tag}@example.com"),
            format!("bob-{tag}@example.com"),
        ];
        let tokens = [
            dbx.user_with_token(0, &users[0]).await,
            dbx.user_with_token(1, &users[1]).await,
        ];
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("databrickscfg"),
            format!(
                "[A]\nhost = {}\ntoken = {}\n\n[B]\nhost = {}\ntoken = {}\n",
                dbx.hosts[0], tokens[0], dbx.hosts[1], tokens[1]
            ),
        )
        .unwrap();
        Setup {
            dbx,
            dir,
            tag,
            users,
            tokens,
        }
    }

    fn config_file(&self) -> PathBuf {
        self.dir.path().join("databrickscfg")
    }

    /// A name unique to this test, lower case (a Unity Catalog level).
    fn name(&self, what: &str) -> String {
        format!("{what}_{}", self.tag).to_lowercase()
    }

    /// The library's client for `uri` (`databricks://A`, ...), with the test's profiles.
    fn client(&self, uri: &str) -> Client {
        let env = Env {
            databricks: DatabricksEnv {
                config_file: Some(self.config_file().display().to_string()),
                ..DatabricksEnv::default()
            },
            ..Env::default()
        };
        ClientBuilder::new(TrackingConfig::resolve(Some(uri), &env).unwrap())
            .build()
            .unwrap()
    }

    /// The CLI with the test's profiles; Unity Catalog's storage through the stand-in's S3
    /// front (the destination's endpoint, as for any `s3://` location).
    fn cli(&self, args: &[&str]) -> assert_cmd::Command {
        let mut c = cli();
        for v in DATABRICKS_VARIABLES {
            c.env_remove(v);
        }
        c.env("DATABRICKS_CONFIG_FILE", self.config_file())
            .env("HOME", self.dir.path())
            .env(
                "MLFLOW_ARCHIVE_DST_MLFLOW_S3_ENDPOINT_URL",
                &self.dbx.s3_front,
            )
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(args);
        c
    }

    /// Runs the CLI; returns (success, stdout, stderr).
    async fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = output(self.cli(args)).await;
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Runs the CLI with `--json`, which must succeed; returns the report.
    async fn ok(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        let (ok, stdout, stderr) = self.run(&args).await;
        assert!(ok, "{args:?} failed:\n{stderr}");
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
    }

    /// Unity Catalog model `name` as MLflow's own client reads it from workspace `ws`.
    async fn uc_read(&self, ws: usize, name: &str) -> Value {
        self.dbx
            .mlflow_client(ws, ClientAuth::Pat(&self.tokens[ws]), "uc_read.py", &[name])
            .await
    }

    /// A GET of the REST API of workspace `ws`: (status, body).
    async fn rest(&self, ws: usize, path: &str) -> (u16, Value) {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.dbx.hosts[ws]))
            .bearer_auth(&self.tokens[ws])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

/// What [`seed`] made.
struct Seeded {
    /// The run whose model has a signature, and the one whose model has none.
    signed_run: String,
    unsigned_run: String,
}

/// In workspace 0, through the library's own client: an experiment with a run whose `model/`
/// has a signature and a run whose `model/` has none, and workspace-registry model `name` (tagged
/// and described) with one version per `(stage, signed)` of `versions`: described `build N`,
/// tagged `build=N`, from `runs:/RUN/model` or (even numbers) the run's own `dbfs:` location.
async fn seed(s: &Setup<'_>, a: &Client, name: &str, versions: &[(&str, bool)]) -> Seeded {
    let experiment = format!("/Users/{}/{}", s.users[0], unique("exp"));
    let exp_id = a.create_experiment(&experiment, None, &[]).await.unwrap();
    let mut runs = Vec::new();
    for signed in [true, false] {
        let run = a
            .create_run(&CreateRun {
                experiment_id: exp_id.clone(),
                run_name: Some(if signed { "signed" } else { "unsigned" }.into()),
                ..CreateRun::default()
            })
            .await
            .unwrap();
        let id = run.info.run_id.clone();
        let root = ArtifactRoot::parse(&run.info.artifact_uri).unwrap();
        let mlmodel = if signed {
            signed_mlmodel(&id)
        } else {
            unsigned_mlmodel(&id)
        };
        a.upload_artifact_bytes(&root, "model/MLmodel", Bytes::from(mlmodel))
            .await
            .unwrap();
        for (path, body) in model_files() {
            a.upload_artifact_bytes(&root, &format!("model/{path}"), Bytes::from(body))
                .await
                .unwrap();
        }
        a.upload_artifact_bytes(&root, "notes.txt", Bytes::from_static(b"not the model"))
            .await
            .unwrap();
        a.update_run(&UpdateRun {
            run_id: id.clone(),
            status: Some("FINISHED".into()),
            end_time: Some(1_700_000_000_000),
            run_name: None,
        })
        .await
        .unwrap();
        runs.push(run);
    }
    a.create_registered_model(
        name,
        Some("wine quality, by ElasticNet"),
        &[KeyValue::new("team", "ml-platform")],
    )
    .await
    .unwrap();
    for (i, (stage, signed)) in versions.iter().enumerate() {
        let n = i + 1;
        let run = &runs[usize::from(!signed)];
        let source = if n % 2 == 0 {
            format!("{}/model", run.info.artifact_uri)
        } else {
            format!("runs:/{}/model", run.info.run_id)
        };
        let v = a
            .create_model_version(&CreateModelVersion {
                name: name.to_string(),
                source,
                run_id: Some(run.info.run_id.clone()),
                description: Some(format!("build {n}")),
                tags: vec![KeyValue::new("build", n.to_string())],
                ..CreateModelVersion::default()
            })
            .await
            .unwrap();
        a.wait_model_version_ready(name, &v.version, std::time::Duration::from_secs(60))
            .await
            .unwrap();
        if *stage != "None" {
            a.transition_model_version_stage(name, &v.version, stage, false)
                .await
                .unwrap();
        }
    }
    Seeded {
        signed_run: runs[0].info.run_id.clone(),
        unsigned_run: runs[1].info.run_id.clone(),
    }
}

/// The files of a version as `uc_read.py` printed them (base64), decoded.
fn files(v: &Value) -> BTreeMap<String, Vec<u8>> {
    v["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, b)| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b.as_str().unwrap())
                .unwrap();
            (k.clone(), bytes)
        })
        .collect()
}

/// Checks that a version's files are the seeded model's, its `MLmodel` naming `run` (the
/// destination's copy of the run) and, when `signed`, carrying the signature.
fn assert_model_files(v: &Value, run: &str, signed: bool) {
    let mut got = files(v);
    // MLflow's client writes this one itself when it downloads a registered model's files.
    got.remove("registered_model_meta");
    let mlmodel = String::from_utf8(got.remove("MLmodel").expect("an MLmodel")).unwrap();
    assert!(mlmodel.contains(&format!("run_id: {run}\n")), "{mlmodel}");
    assert_eq!(mlmodel.contains("signature:"), signed, "{mlmodel}");
    // Compared by size and a digest of the bytes, to keep a failure's message short.
    let short = |m: BTreeMap<String, Vec<u8>>| -> BTreeMap<String, (usize, u32)> {
        m.into_iter()
            .map(|(k, b)| (k, (b.len(), crc32fast::hash(&b))))
            .collect()
    };
    assert_eq!(short(got), short(model_files()), "version {}", v["version"]);
}

fn tag<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v["tags"][key].as_str()
}

#[tokio::test]
async fn a_workspace_registry_model_copied_into_unity_catalog_with_each_stage_plan() {
    let dbx = databricks_standin!(shared);
    let s = Setup::new(dbx).await;
    let a = s.client("databricks://A");
    let src = format!("Wine Quality {}", s.tag);
    let seeded = seed(
        &s,
        &a,
        &src,
        &[
            ("Production", true),
            ("Staging", true),
            ("Production", true),
            ("Archived", true),
        ],
    )
    .await;
    let experiment = format!("/Users/{}/{}", s.users[1], s.name("copied"));
    let dst = format!("main.default.{}", s.name("wine"));
    let report = s
        .ok(&[
            "copy-model",
            "--src-uri",
            "databricks://A",
            "--dst-uri",
            "databricks-uc://B",
            "--src-model",
            &src,
            "--dst-experiment-name",
            &experiment,
            "--model-name-map",
            &format!("{src}={dst}"),
        ])
        .await;
    assert_eq!(report["models"][&src], dst.as_str(), "{report}");
    assert_eq!(report["versions_imported"], 4, "{report}");
    assert_eq!(report["version_files"], 16, "{report}");

    // MLflow's own client reads it all from Unity Catalog.
    let m = s.uc_read(1, &dst).await;
    assert_eq!(m["description"], "wine quality, by ElasticNet", "{m}");
    assert_eq!(m["tags"]["team"], "ml-platform", "{m}");
    assert_eq!(
        m["aliases"],
        json!({"production": "3", "staging": "2"}),
        "the newest version of Production and of Staging: {m}"
    );
    let versions = m["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 4, "{m}");
    let (_, runs) = s
        .rest(
            1,
            &format!(
                "/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
                url_encode(&experiment)
            ),
        )
        .await;
    let exp_b = runs["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    for (v, stage) in versions
        .iter()
        .zip(["Production", "Staging", "Production", "Archived"])
    {
        let n = v["version"].as_str().unwrap();
        assert_eq!(v["status"], "READY", "{v}");
        assert_eq!(v["description"], format!("build {n}"), "{v}");
        assert_eq!(tag(v, "build"), Some(n), "{v}");
        assert_eq!(tag(v, "mlflow_archive.source.stage"), Some(stage), "{v}");
        // The version names the copy of the run in workspace B, whose MLmodel names it too.
        let run = v["run_id"].as_str().unwrap();
        assert_ne!(run, seeded.signed_run);
        let (status, got) = s
            .rest(1, &format!("/api/2.0/mlflow/runs/get?run_id={run}"))
            .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(got["run"]["info"]["experiment_id"], exp_b.as_str());
        let lineage = got["run"]["data"]["tags"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "mlflow_archive.source.run_id")
            .map(|t| t["value"].clone());
        assert_eq!(lineage, Some(json!(seeded.signed_run)));
        assert_model_files(v, run, true);
        // What MLflow's entity does not show: the workspace whose tracking server has the run.
        let (_, raw) = s
            .rest(
                1,
                &format!("/api/2.0/mlflow/unity-catalog/model-versions/get?name={dst}&version={n}"),
            )
            .await;
        assert_eq!(
            raw["model_version"]["run_tracking_server_id"],
            dbx.workspace_ids[1].as_str(),
            "{raw}"
        );
    }

    // Stages as tags only, then dropped: the runs are in B already and are not copied again.
    for (plan, tagged) in [("tag", true), ("none", false)] {
        let dst = format!("main.default.{}", s.name(&format!("wine_{plan}")));
        let report = s
            .ok(&[
                "copy-model",
                "--src-uri",
                "databricks://A",
                "--dst-uri",
                "databricks-uc://B",
                "--src-model",
                &src,
                "--dst-experiment-name",
                &experiment,
                "--model-name-map",
                &format!("{src}={dst}"),
                "--stage-to",
                plan,
            ])
            .await;
        assert_eq!(report["runs_imported"], 0, "{report}");
        let m = s.uc_read(1, &dst).await;
        assert_eq!(m["aliases"], json!({}), "{plan}: {m}");
        for v in m["versions"].as_array().unwrap() {
            assert_eq!(
                tag(v, "mlflow_archive.source.stage").is_some(),
                tagged,
                "{plan}: {v}"
            );
            assert_eq!(v["status"], "READY");
        }
    }

    // Stages cannot be stages in Unity Catalog.
    let (ok, _, stderr) = s
        .run(&[
            "copy-model",
            "--src-uri",
            "databricks://A",
            "--dst-uri",
            "databricks-uc://B",
            "--src-model",
            &src,
            "--dst-experiment-name",
            &experiment,
            "--model-name-map",
            &format!("{src}={dst}"),
            "--stage-to",
            "stage",
        ])
        .await;
    assert!(!ok && stderr.contains("has no stages"), "{stderr}");
}

#[tokio::test]
async fn a_version_without_a_signature_is_refused_by_name_and_the_bypass_registers_it() {
    let dbx = databricks_standin!(shared);
    let s = Setup::new(dbx).await;
    let a = s.client("databricks://A");
    let src = s.name("Unsigned");
    let seeded = seed(&s, &a, &src, &[("Production", true), ("None", false)]).await;
    let experiment = format!("/Users/{}/{}", s.users[1], s.name("unsigned"));
    let args = [
        "copy-model",
        "--src-uri",
        "databricks://A",
        "--dst-uri",
        "databricks-uc://B",
        "--src-model",
        &src,
        "--dst-experiment-name",
        &experiment,
        "--uc-schema",
        "main.default",
    ];
    let (ok, _, stderr) = s.run(&args).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "model version {src}/2 has no signature with inputs and outputs; Unity Catalog requires one"
        )) && stderr.contains("--skip-signature-check"),
        "{stderr}"
    );
    let dst = format!("main.default.{src}");
    let m = s.uc_read(1, &dst).await;
    assert_eq!(
        m["versions"].as_array().unwrap().len(),
        1,
        "only the signed version: {m}"
    );

    let mut bypass = args.to_vec();
    bypass.push("--skip-signature-check");
    let report = s.ok(&bypass).await;
    assert_eq!(report["versions_imported"], 1, "{report}");
    assert_eq!(
        report["unchecked_signatures"],
        json!([[src, 2]]),
        "{report}"
    );
    let m = s.uc_read(1, &dst).await;
    let v2 = &m["versions"][1];
    assert_eq!(v2["status"], "READY", "{m}");
    assert_model_files(v2, v2["run_id"].as_str().unwrap(), false);
    assert_ne!(v2["run_id"], seeded.unsigned_run.as_str());
}

#[tokio::test]
async fn unity_catalog_to_an_archive_and_back_and_across_workspaces() {
    let dbx = databricks_standin!(shared);
    let s = Setup::new(dbx).await;
    let a = s.client("databricks://A");
    let src = s.name("ws_model");
    seed(&s, &a, &src, &[("Production", true), ("Staging", true)]).await;
    let first = format!("main.default.{}", s.name("first"));
    s.ok(&[
        "copy-model",
        "--src-uri",
        "databricks://A",
        "--dst-uri",
        "databricks-uc://B",
        "--src-model",
        &src,
        "--dst-experiment-name",
        &format!("/Users/{}/{}", s.users[1], s.name("first")),
        "--model-name-map",
        &format!("{src}={first}"),
    ])
    .await;

    // Unity Catalog (through workspace B) into an archive, then into Unity Catalog through
    // workspace A under another name.
    let archive = s.dir.path().join("uc.mlar");
    let archive = archive.to_str().unwrap();
    let (ok, _, stderr) = s
        .run(&[
            "export-model",
            "--src-uri",
            "databricks-uc://B",
            "--model",
            &first,
            "-o",
            archive,
        ])
        .await;
    assert!(ok, "{stderr}");
    // A name Unity Catalog cannot take is refused before anything is written.
    let refused_experiment = format!("/Users/{}/{}", s.users[0], s.name("refused"));
    let (ok, _, stderr) = s
        .run(&[
            "import-model",
            "--dst-uri",
            "databricks-uc://A",
            "-i",
            archive,
            "--experiment-name",
            &refused_experiment,
            "--model-name-map",
            &format!("{first}=two.levels"),
        ])
        .await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "registered model {first:?} cannot go into Unity Catalog: Unity Catalog names have three levels"
        )),
        "{stderr}"
    );
    let (status, _) = s
        .rest(
            0,
            &format!(
                "/api/2.0/mlflow/experiments/get-by-name?experiment_name={}",
                url_encode(&refused_experiment)
            ),
        )
        .await;
    assert_eq!(status, 404, "no experiment was made");

    let second = format!("main.default.{}", s.name("second"));
    let report = s
        .ok(&[
            "import-model",
            "--dst-uri",
            "databricks-uc://A",
            "-i",
            archive,
            "--experiment-name",
            &format!("/Users/{}/{}", s.users[0], s.name("back")),
            "--model-name-map",
            &format!("{first}={second}"),
        ])
        .await;
    assert_eq!(report["versions_imported"], 2, "{report}");
    let before = s.uc_read(1, &first).await;
    let after = s.uc_read(0, &second).await;
    assert_eq!(after["description"], before["description"]);
    assert_eq!(after["tags"], before["tags"]);
    assert_eq!(
        after["aliases"],
        json!({"production": "1", "staging": "2"}),
        "Unity Catalog's aliases are carried as aliases: {after}"
    );
    for (b, v) in before["versions"]
        .as_array()
        .unwrap()
        .iter()
        .zip(after["versions"].as_array().unwrap())
    {
        assert_eq!(v["status"], "READY");
        assert_eq!(v["description"], b["description"]);
        assert_eq!(tag(v, "build"), tag(b, "build"));
        // The first hop's lineage is history now.
        assert_eq!(
            tag(v, "mlflow_archive.origin.stage"),
            tag(b, "mlflow_archive.source.stage"),
            "{v}"
        );
        assert_model_files(v, v["run_id"].as_str().unwrap(), true);
    }

    // Unity Catalog to Unity Catalog directly, reading through B and writing through A.
    let third = format!("main.default.{}", s.name("third"));
    let report = s
        .ok(&[
            "copy-model",
            "--src-uri",
            "databricks-uc://B",
            "--dst-uri",
            "databricks-uc://A",
            "--src-model",
            &first,
            "--dst-experiment-name",
            &format!("/Users/{}/{}", s.users[0], s.name("third")),
            "--dst-model",
            &third,
        ])
        .await;
    assert_eq!(report["versions_imported"], 2, "{report}");
    let copied = s.uc_read(0, &third).await;
    assert_eq!(copied["aliases"], before["aliases"], "{copied}");

    // Into a workspace registry, which has no aliases: they are counted and warned of.
    let back = s.name("Back");
    let mut args = vec![
        "import-model",
        "--dst-uri",
        "databricks://A",
        "-i",
        archive,
        "--experiment-name",
    ];
    let experiment = format!("/Users/{}/{}", s.users[0], s.name("ws_back"));
    args.extend([experiment.as_str(), "--model", back.as_str()]);
    let (ok, _, stderr) = s.run(&args).await;
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains("warning: 2 aliases not set: the destination's registry (a Databricks workspace model registry) has no aliases"),
        "{stderr}"
    );
    let (status, got) = s
        .rest(
            0,
            &format!(
                "/api/2.0/mlflow/model-versions/search?filter={}",
                url_encode(&format!("name = '{back}'"))
            ),
        )
        .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["model_versions"].as_array().unwrap().len(), 2, "{got}");
}

#[tokio::test]
async fn copy_all_refuses_a_lower_case_collision_before_writing_and_renews_expiring_credentials() {
    // Its own stand-in: it changes settings, and copy-all reads the whole of workspace A.
    let dbx = databricks_standin!();
    let s = Setup::new(&dbx).await;
    let a = s.client("databricks://A");
    seed(&s, &a, "Churn", &[("Production", true)]).await;
    seed(&s, &a, "churn", &[("None", true)]).await;
    let args = [
        "copy-all",
        "--src-uri",
        "databricks://A",
        "--dst-uri",
        "databricks-uc://B",
        "--uc-schema",
        "main.default",
    ];
    let (ok, _, stderr) = s.run(&args).await;
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains(
            "registered models \"Churn\" and \"churn\" would both become \"main.default.churn\""
        ),
        "{stderr}"
    );
    // Nothing was written: no experiment of A's in B, no model in Unity Catalog.
    let ann = format!("/Users/{}/", s.users[0]);
    let (_, found) = s
        .rest(1, "/api/2.0/mlflow/experiments/search?max_results=1000")
        .await;
    let names: Vec<&str> = found["experiments"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!names.iter().any(|n| n.starts_with(&ann)), "{names:?}");
    let (status, _) = s
        .rest(
            1,
            "/api/2.0/mlflow/unity-catalog/registered-models/get?name=main.default.churn",
        )
        .await;
    assert_eq!(status, 404);

    let mut mapped = args.to_vec();
    mapped.extend(["--model-name-map", "churn=main.default.churn_lower"]);
    let report = s.ok(&mapped).await;
    assert_eq!(report["models"]["Churn"], "main.default.churn", "{report}");
    assert_eq!(
        report["models"]["churn"], "main.default.churn_lower",
        "{report}"
    );
    for name in ["main.default.churn", "main.default.churn_lower"] {
        let m = s.uc_read(1, name).await;
        let v = &m["versions"][0];
        assert_eq!(v["status"], "READY", "{m}");
        assert_model_files(v, v["run_id"].as_str().unwrap(), true);
    }

    // Temporary credentials that expire while a version's files are uploaded: every third
    // upload finds its session token ended (the stand-in ends it just then, so the test does not
    // depend on the machine's speed): the store refuses the file, and it is sent again with new
    // credentials.
    let src = "Slow";
    seed(&s, &a, src, &[("Production", true)]).await;
    dbx.settings(&Settings {
        expire_token_every: Some(3),
        ..Settings::default()
    })
    .await;
    dbx.clear_log().await;
    // With traces on: the store's refusal quotes the session token (`<Token-0>`), never shown.
    let slow_dst = format!("/Users/{}/{}", s.users[1], s.name("slow"));
    let mut cmd = s.cli(&[
        "copy-model",
        "--src-uri",
        "databricks://A",
        "--dst-uri",
        "databricks-uc://B",
        "--src-model",
        src,
        "--dst-experiment-name",
        &slow_dst,
        "--uc-schema",
        "main.default",
        "--json",
    ]);
    cmd.env("MLFLOW_ARCHIVE_DEBUG", "1");
    let out = output(cmd).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("asking for new ones"), "{stderr}");
    assert!(!stderr.contains("standin-session-"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    dbx.settings(&Settings {
        expire_token_every: Some(0),
        ..Settings::default()
    })
    .await;
    let renewals = report["credential_renewals"].as_u64().unwrap();
    assert!(renewals >= 1, "{report}");
    let log = dbx.log().await;
    let expired = log
        .iter()
        .filter(|e| e.host == dbx.s3_front && e.status == 400)
        .count();
    assert!(expired >= 1, "the store refused an expired token: {log:#?}");
    let asked = log
        .iter()
        .filter(|e| {
            e.path
                .ends_with("/model-versions/generate-temporary-credentials")
        })
        .count() as u64;
    assert_eq!(asked, renewals + 1, "{log:#?}");
    let m = s.uc_read(1, "main.default.slow").await;
    let v = &m["versions"][0];
    assert_eq!(v["status"], "READY", "{m}");
    assert_model_files(v, v["run_id"].as_str().unwrap(), true);
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
