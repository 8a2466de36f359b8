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
        .create_experiment(&name, Some("dbfs:/databricks/mlflow-tracking"), &[])
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
        err.contains(&run.info.run_id) && err.contains("the scheme dbfs:"),
        "{err}"
    );
    assert!(!archive.exists(), "no archive is left under the final name");
}
