//! Artifacts in stores the client reaches itself: servers started with `--no-serve-artifacts
//! --default-artifact-root <store>`, moved to and from every kind of root.

use crate::util::{cli, client, experiment_with_run, output, unique};

/// An import into an experiment whose root this client cannot write fails before any run is
/// made, naming the experiment and the scheme.
#[tokio::test]
async fn an_unwritable_destination_root_fails_before_any_run_is_made() {
    let p = crate::live_pair!();
    let (src, dst) = (client(&p.src.uri), client(&p.dst.uri));
    let run = experiment_with_run(&src, "to-dbfs").await;
    let exp = src
        .get_experiment(&run.info.experiment_id)
        .await
        .unwrap()
        .name;
    let target = unique("dbfs-target");
    dst.create_experiment(&target, Some("dbfs:/databricks/mlflow-tracking"), &[])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("e.mlar");
    let archive = archive.to_str().unwrap();
    crate::util::run_ok(&[
        "export-experiment",
        "--src-uri",
        &p.src.uri,
        "--experiment",
        &exp,
        "-o",
        archive,
    ])
    .await;
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &p.dst.uri,
        "-i",
        archive,
        "--experiment-name",
        &target,
    ]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("dbfs:") && err.contains(&target) && err.contains("cannot be written"),
        "{err}"
    );
    assert!(crate::util::runs_of(&dst, &target).await.is_empty());
}

/// An export of a run whose root this client cannot read fails naming the run and the scheme,
/// and leaves no archive that could pass for complete.
#[tokio::test]
async fn an_unreadable_source_root_fails_the_export_naming_the_run() {
    let p = crate::live_pair!();
    let src = client(&p.src.uri);
    let name = unique("dbfs-source");
    let exp = src
        .create_experiment(&name, Some("dbfs:/databricks/mlflow-tracking/7"), &[])
        .await
        .unwrap();
    let run = src
        .create_run(&mlflow_archive::mlflow::CreateRun {
            experiment_id: exp,
            ..Default::default()
        })
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("e.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &p.src.uri,
        "--experiment",
        &name,
        "-o",
    ])
    .arg(&archive);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&run.info.run_id)
            && err.contains("a dbfs: location is reached through a Databricks workspace"),
        "{err}"
    );
    assert!(!archive.exists(), "no archive is left under the final name");
}

// ------------------------------------------------------------------------------------------
// The matrix: servers whose runs live in S3, Azure Blob, GCS or a local directory, moved to and
// from each other and proxied servers through an archive, a pipe and a direct copy.

use mlflow_archive::mlflow::store::{Side, StoreSettings};
use mlflow_archive::mlflow::{Client, ClientBuilder, TrackingConfig};

use crate::fidelity::{assert_same, observe, populate_everything};
use crate::util::server::{MlflowServer, STORE_VARIABLES};
use crate::util::stores::{Azurite, GcsEmulator, S3Emulator, files_under, harness_python};

type Env = Vec<(&'static str, String)>;

/// A server and the store settings that reach its artifacts (none for a proxied server).
struct Place {
    server: MlflowServer,
    env: Env,
    what: String,
}

/// What a source was filled with: through our client (every kind of object) and through MLflow's
/// own Python client (a real pyfunc model, registered, with an alias).
struct Filled {
    /// Filled through our client; `None` for a store our client cannot write (the GCS emulator).
    ours: Option<(String, String)>,
    py_experiment: String,
    py_model: String,
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    Archive,
    Pipe,
    Copy,
}

/// A client that reaches the place's store with its settings alone.
fn store_client(p: &Place) -> Client {
    ClientBuilder::new(TrackingConfig::for_uri(&p.server.uri).unwrap())
        .store_settings(StoreSettings::from_vars(
            Side::Plain,
            p.env.iter().map(|(k, v)| (k.to_string(), v.clone())),
        ))
        .build()
        .unwrap()
}

async fn start(name: &str, root: Option<String>, env: Env) -> Option<Place> {
    let name = name.to_string();
    let what = root.clone().unwrap_or_else(|| "mlflow-artifacts:".into());
    let env2 = env.clone();
    let server = tokio::task::spawn_blocking(move || match root {
        None => MlflowServer::start(&name, None),
        Some(r) => MlflowServer::start_with_artifact_root(&name, &r, &env2),
    })
    .await
    .unwrap()?;
    Some(Place { server, env, what })
}

async fn fill(p: &Place) -> Filled {
    let (experiment, model) = populate_everything(&store_client(p)).await;
    let py_experiment = unique("py-stores");
    let py_model = unique("py-doubler");
    let (uri, env) = (p.server.uri.clone(), p.env.clone());
    let (e, m) = (py_experiment.clone(), py_model.clone());
    tokio::task::spawn_blocking(move || {
        harness_python("populate.py", &uri, &[&e, &m, "3145728"], &env)
    })
    .await
    .unwrap();
    Filled {
        ours: Some((experiment, model)),
        py_experiment,
        py_model,
    }
}

/// The command line with the source's store settings as `MLFLOW_ARCHIVE_SRC_*`, the
/// destination's as `MLFLOW_ARCHIVE_DST_*`, and no plain store variable at all: each side can
/// only use its own.
fn sided(cmd: &mut std::process::Command, src: &Env, dst: &Env) {
    for v in STORE_VARIABLES {
        cmd.env_remove(v);
    }
    for (k, v) in src {
        cmd.env(format!("MLFLOW_ARCHIVE_SRC_{k}"), v);
    }
    for (k, v) in dst {
        cmd.env(format!("MLFLOW_ARCHIVE_DST_{k}"), v);
    }
    cmd.env_remove("MLFLOW_TRACKING_URI");
}

/// [`observe`] of what MLflow's Python client wrote, without the logged model's
/// `mlflow.modelVersions` tag: the destination server rebuilds it from the versions it holds, and
/// the Python client (3.17.2) adds a second entry for a version it registers (README: what is not
/// carried).
async fn py_observe(c: &Client, experiment: &str, model: &str) -> crate::fidelity::Seen {
    let mut seen = observe(c, experiment, Some(model)).await;
    for m in seen.logged_models.values_mut() {
        assert!(m.tags.remove("mlflow.modelVersions").is_some());
    }
    seen
}

async fn transfer(mode: Mode, src: &Place, dst: &Place) {
    transfer_with(mode, src, &src.env, dst, &dst.env, &[]).await;
}

/// [`transfer`] with the given store settings for each side, and more variables.
async fn transfer_with(
    mode: Mode,
    src: &Place,
    src_env: &Env,
    dst: &Place,
    dst_env: &Env,
    more: &[(&str, &str)],
) {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.mlar");
    let (s, d) = (&src.server.uri, &dst.server.uri);
    let a = archive.to_str().unwrap();
    let b = bin.to_str().unwrap();
    let steps: Vec<Vec<String>> = match mode {
        Mode::Archive => vec![
            vec![b, "export-all", "--src-uri", s, "--export-deleted-runs", "-o", a],
            vec![b, "import-all", "--dst-uri", d, "-i", a, "--use-src-user-id"],
        ],
        Mode::Pipe => vec![vec![
            "bash",
            "-c",
            "set -o pipefail; \"$0\" export-all --src-uri \"$1\" --export-deleted-runs -o - | \"$0\" import-all --dst-uri \"$2\" -i - --use-src-user-id",
            b,
            s,
            d,
        ]],
        Mode::Copy => vec![vec![
            b,
            "copy-all",
            "--src-uri",
            s,
            "--dst-uri",
            d,
            "--export-deleted-runs",
            "--use-src-user-id",
        ]],
    }
    .into_iter()
    .map(|v| v.into_iter().map(String::from).collect())
    .collect();
    for step in steps {
        let mut cmd = std::process::Command::new(&step[0]);
        cmd.args(&step[1..]);
        sided(&mut cmd, src_env, dst_env);
        cmd.envs(more.iter().copied());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{mode:?} {} → {}: {}",
            src.what,
            dst.what,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Everything observable is the same on both sides (runs, points, files byte for byte, logged
/// models, versions with their sources, aliases); the files are in the destination's store (read
/// with the store's own SDK); MLflow's own client loads the copied model and predicts as at the
/// source.
async fn check(how: &str, src: &Place, dst: &Place, f: &Filled) {
    let (a, b) = (store_client(src), store_client(dst));
    if let Some((experiment, model)) = &f.ours {
        let want = observe(&a, experiment, Some(model)).await;
        assert_eq!(want.runs.len(), 5, "{how}: the source holds what it should");
        let got = observe(&b, experiment, Some(model)).await;
        assert_same(&want, &got, how);
    }
    let want = py_observe(&a, &f.py_experiment, &f.py_model).await;
    let got = py_observe(&b, &f.py_experiment, &f.py_model).await;
    assert_same(&want, &got, &format!("{how} (written by MLflow's client)"));
    assert!(
        want.runs["files"].artifacts["data/big.bin"].len() == 3_145_728,
        "{how}: the big file is there"
    );

    // The files are where the destination's runs say, seen by the store's own SDK.
    let root_of = |c: Client, e: String| async move {
        let runs = crate::util::runs_of(&c, &e).await;
        let r = runs
            .into_iter()
            .find(|r| r.info.run_name == "files")
            .unwrap();
        r.info.artifact_uri
    };
    let (src_root, dst_root) = (
        root_of(a.clone(), f.py_experiment.clone()).await,
        root_of(b.clone(), f.py_experiment.clone()).await,
    );
    if let Some(root) = dst.server.artifact_root.as_deref() {
        let scheme = root.split(':').next().unwrap();
        assert!(
            dst_root.starts_with(scheme),
            "{how}: the destination run's root {dst_root} is in its store {root}"
        );
    }
    let listed =
        |root: String, env: Env| tokio::task::spawn_blocking(move || files_under(&root, &env));
    if src.server.artifact_root.is_some() && dst.server.artifact_root.is_some() {
        let want = listed(src_root, src.env.clone()).await.unwrap();
        let got = listed(dst_root, dst.env.clone()).await.unwrap();
        assert_eq!(want.len(), 4, "{how}: {want:?}");
        assert_eq!(want, got, "{how}: the files in the stores themselves");
    }

    // MLflow's own client loads the registered model by number and by alias, and predicts.
    let predict = |p: &Place| {
        let (uri, env, m) = (p.server.uri.clone(), p.env.clone(), f.py_model.clone());
        tokio::task::spawn_blocking(move || {
            let v = format!("models:/{m}/1");
            let alias = format!("models:/{m}@champion");
            harness_python("predict.py", &uri, &[&uri, &v, &alias], &env)
        })
    };
    let want = predict(src).await.unwrap();
    let got = predict(dst).await.unwrap();
    assert!(want.contains("champion") && want.contains("5.0"), "{want}");
    assert_eq!(want, got, "{how}: the model predicts as at the source");
}

#[tokio::test]
async fn s3_source_to_a_proxied_server_and_to_another_s3_account() {
    let (Some(s3), Some(other)) = (S3Emulator::start(), S3Emulator::start()) else {
        return;
    };
    let Some(src) = start("s3-src", Some(s3.root("src")), s3.env()).await else {
        return;
    };
    // The second account: another endpoint (and other keys), so a mixed-up side fails.
    let mut other_env = other.env();
    for (k, v) in other_env.iter_mut() {
        if *k == "AWS_ACCESS_KEY_ID" || *k == "AWS_SECRET_ACCESS_KEY" {
            *v = format!("other-{k}");
        }
    }
    let f = fill(&src).await;
    let proxied = start("s3-to-proxied", None, Vec::new()).await.unwrap();
    transfer(Mode::Archive, &src, &proxied).await;
    check("s3 → proxied (archive)", &src, &proxied, &f).await;
    let s3b = start("s3-to-s3", Some(other.root("dst")), other_env)
        .await
        .unwrap();
    transfer(Mode::Pipe, &src, &s3b).await;
    check("s3 → s3, two accounts (pipe)", &src, &s3b, &f).await;
}

#[tokio::test]
async fn proxied_source_to_s3_and_to_azure() {
    let (Some(s3), Some(az)) = (S3Emulator::start(), Azurite::start()) else {
        return;
    };
    let Some(src) = start("proxied-src", None, Vec::new()).await else {
        return;
    };
    let f = fill(&src).await;
    let to_s3 = start("proxied-to-s3", Some(s3.root("dst")), s3.env())
        .await
        .unwrap();
    transfer(Mode::Copy, &src, &to_s3).await;
    check("proxied → s3 (copy)", &src, &to_s3, &f).await;
    let to_az = start("proxied-to-azure", Some(az.root("dst")), az.env())
        .await
        .unwrap();
    transfer(Mode::Archive, &src, &to_az).await;
    check("proxied → azure (archive)", &src, &to_az, &f).await;
}

#[tokio::test]
async fn local_root_to_s3_and_azure_to_a_proxied_server() {
    let (Some(s3), Some(az)) = (S3Emulator::start(), Azurite::start()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("ml runs").display().to_string();
    let Some(src) = start("local-src", Some(local), Vec::new()).await else {
        return;
    };
    let f = fill(&src).await;
    let to_s3 = start("local-to-s3", Some(s3.root("dst")), s3.env())
        .await
        .unwrap();
    transfer(Mode::Copy, &src, &to_s3).await;
    check("local root → s3 (copy)", &src, &to_s3, &f).await;

    let az_src = start("azure-src", Some(az.root("src")), az.env())
        .await
        .unwrap();
    let f = fill(&az_src).await;
    let proxied = start("azure-to-proxied", None, Vec::new()).await.unwrap();
    transfer(Mode::Pipe, &az_src, &proxied).await;
    check("azure → proxied (pipe)", &az_src, &proxied, &f).await;
}

/// GCS as a source (fake-gcs-server serves reads through the XML API that object_store uses; it
/// refuses its uploads, so GCS as a destination cannot be tested here: README says so).
#[tokio::test]
async fn gcs_source_to_a_proxied_server() {
    let Some(gcs) = GcsEmulator::start() else {
        return;
    };
    let Some(src) = start("gcs-src", Some(gcs.root("src")), gcs.env()).await else {
        return;
    };
    // Our own client cannot write through this emulator: only MLflow's client fills it.
    let py_experiment = unique("py-stores");
    let py_model = unique("py-doubler");
    let (uri, env) = (src.server.uri.clone(), src.env.clone());
    let (e, m) = (py_experiment.clone(), py_model.clone());
    tokio::task::spawn_blocking(move || {
        harness_python("populate.py", &uri, &[&e, &m, "3145728"], &env)
    })
    .await
    .unwrap();
    let proxied = start("gcs-to-proxied", None, Vec::new()).await.unwrap();
    transfer(Mode::Copy, &src, &proxied).await;
    let f = Filled {
        ours: None,
        py_experiment,
        py_model,
    };
    check("gcs → proxied (copy)", &src, &proxied, &f).await;
}

/// Both stores behind proxies that cut 5 % of answers midway, stall 0.5 % past the read timeout
/// and answer 503 to 10 %: the copy is still complete and identical. (The timeout, 8 s, is the
/// tracking server's too: short enough for a quick test, long enough for a busy CI machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_that_fail_stall_and_cut_still_give_a_complete_identical_copy() {
    use crate::util::proxy::{Chaos, FaultProxy};
    let (Some(a), Some(b)) = (S3Emulator::start(), S3Emulator::start()) else {
        return;
    };
    let Some(src) = start("faulty-src", Some(a.root("src")), a.env()).await else {
        return;
    };
    let f = fill(&src).await;
    let dst = start("faulty-dst", Some(b.root("dst")), b.env())
        .await
        .unwrap();
    let (pa, pb) = (
        FaultProxy::start(&a.endpoint).await,
        FaultProxy::start(&b.endpoint).await,
    );
    for (p, seed) in [(&pa, 17), (&pb, 29)] {
        p.chaos(Chaos {
            state: seed,
            cut: 0.05,
            stall: 0.005,
            stall_for: std::time::Duration::from_secs(12),
            unavailable: 0.10,
        });
    }
    let through = |env: &Env, proxy: &FaultProxy| -> Env {
        env.iter()
            .map(|(k, v)| match *k {
                "MLFLOW_S3_ENDPOINT_URL" => (*k, proxy.uri.clone()),
                _ => (*k, v.clone()),
            })
            .collect()
    };
    let (src_env, dst_env) = (through(&src.env, &pa), through(&dst.env, &pb));
    transfer_with(
        Mode::Copy,
        &src,
        &src_env,
        &dst,
        &dst_env,
        &[("MLFLOW_HTTP_REQUEST_TIMEOUT", "8")],
    )
    .await;
    let injected: Vec<String> = pa.injected().into_iter().chain(pb.injected()).collect();
    for kind in ["CutBody", "Status(503"] {
        assert!(
            injected.iter().any(|f| f.contains(kind)),
            "no {kind} was injected: {injected:?}"
        );
    }
    check("s3 → s3 through faulty proxies (copy)", &src, &dst, &f).await;
}

/// Store credentials never reach an archive, a log line or an error message: keys, secrets, SAS
/// tokens, account keys, whether the transfer succeeds or fails.
#[tokio::test]
async fn store_credentials_never_leave_the_process() {
    let (Some(s3), Some(az)) = (S3Emulator::start(), Azurite::start()) else {
        return;
    };
    let Some(s3_src) = start("secret-s3", Some(s3.root("src")), s3.env()).await else {
        return;
    };
    let az_src = start("secret-azure", Some(az.root("src")), az.env())
        .await
        .unwrap();
    let mut experiments = Vec::new();
    for p in [&s3_src, &az_src] {
        let c = store_client(p);
        let run = experiment_with_run(&c, "secret").await;
        let root = mlflow_archive::mlflow::ArtifactRoot::parse(&run.info.artifact_uri).unwrap();
        c.upload_artifact_bytes(&root, "dir/a.txt", bytes::Bytes::from_static(b"hello"))
            .await
            .unwrap();
        experiments.push(
            c.get_experiment(&run.info.experiment_id)
                .await
                .unwrap()
                .name,
        );
    }
    const KEY_ID: &str = "AKIA-key-id-7Q3";
    const SECRET: &str = "s3cr3t-never-shown-9Zx";
    const SAS: &str = "sig-never-shown-4Kp";
    let dir = tempfile::tempdir().unwrap();
    let export = |uri: String, experiment: String, env: Vec<(String, String)>, out: String| {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlflow-archive"));
        cmd.args([
            "export-experiment",
            "--src-uri",
            &uri,
            "--experiment",
            &experiment,
            "-o",
            &out,
        ])
        .env("MLFLOW_ARCHIVE_DEBUG", "1")
        .env("RUST_LOG", "mlflow_archive=debug,object_store=debug");
        for v in STORE_VARIABLES {
            cmd.env_remove(v);
        }
        cmd.envs(env);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let s3_env = |endpoint: &str| {
        vec![
            (
                "MLFLOW_ARCHIVE_SRC_MLFLOW_S3_ENDPOINT_URL".to_string(),
                endpoint.to_string(),
            ),
            ("MLFLOW_ARCHIVE_SRC_AWS_ACCESS_KEY_ID".into(), KEY_ID.into()),
            (
                "MLFLOW_ARCHIVE_SRC_AWS_SECRET_ACCESS_KEY".into(),
                SECRET.into(),
            ),
            ("MLFLOW_ARCHIVE_SRC_AWS_SESSION_TOKEN".into(), SECRET.into()),
            ("MLFLOW_ARCHIVE_SRC_AWS_REGION".into(), "us-east-1".into()),
        ]
    };
    let closed = format!("http://127.0.0.1:{}", {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    });
    let sas = format!(
        "BlobEndpoint={};SharedAccessSignature=sv=2021-08-06&ss=b&srt=co&sp=r&se=2001-01-01T00:00:00Z&sig={SAS}",
        az.endpoint
    );
    let key = format!("{};", az.connection_string);
    let cases = [
        (
            "s3, works",
            s3_src.server.uri.clone(),
            experiments[0].clone(),
            s3_env(&s3.endpoint),
            true,
        ),
        (
            "s3, store down",
            s3_src.server.uri.clone(),
            experiments[0].clone(),
            s3_env(&closed),
            false,
        ),
        (
            "azure key, works",
            az_src.server.uri.clone(),
            experiments[1].clone(),
            vec![(
                "MLFLOW_ARCHIVE_SRC_AZURE_STORAGE_CONNECTION_STRING".to_string(),
                key,
            )],
            true,
        ),
        (
            "azure sas, refused",
            az_src.server.uri.clone(),
            experiments[1].clone(),
            vec![(
                "MLFLOW_ARCHIVE_SRC_AZURE_STORAGE_CONNECTION_STRING".to_string(),
                sas,
            )],
            false,
        ),
    ];
    for (i, (what, uri, experiment, env, works)) in cases.into_iter().enumerate() {
        let out = dir.path().join(format!("{i}.mlar"));
        let got = export(uri, experiment, env, out.display().to_string())
            .await
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&got.stdout),
            String::from_utf8_lossy(&got.stderr)
        );
        assert_eq!(got.status.success(), works, "{what}: {text}");
        if !works {
            assert!(
                text.contains("dir/a.txt") || text.contains("artifacts"),
                "{what}: {text}"
            );
        }
        let archive = std::fs::read(&out).unwrap_or_default();
        for secret in [KEY_ID, SECRET, SAS, Azurite::KEY] {
            assert!(
                !text.contains(secret),
                "{what}: a credential in the output: {text}"
            );
            assert!(
                !archive
                    .windows(secret.len())
                    .any(|w| w == secret.as_bytes()),
                "{what}: a credential in the archive"
            );
        }
    }
}
