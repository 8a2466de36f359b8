//! export-all → import-all, and copy-all, between fresh servers of their own (the shared pair
//! changes under concurrent tests): every experiment, run and registered model version arrives
//! once.

use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::ViewType;

use crate::models::make_model;
use crate::prompts::prompt;
use crate::roundtrip::populate;
use crate::util::server::MlflowServer;
use crate::util::{cli, client, output, unique};

#[tokio::test]
async fn export_all_then_import_all_and_copy_all_move_a_whole_server() {
    let (a, b, c) = tokio::task::spawn_blocking(|| {
        let b = std::thread::spawn(|| MlflowServer::start("all-dst", None));
        let c = std::thread::spawn(|| MlflowServer::start("all-copy", None));
        (
            MlflowServer::start("all-src", None),
            b.join().unwrap(),
            c.join().unwrap(),
        )
    })
    .await
    .unwrap();
    let (Some(a), Some(b), Some(c)) = (a, b, c) else {
        return;
    };
    let src = client(&a.uri);
    let e1 = populate(&src).await;
    let e2 = populate(&src).await;
    let (model, _, _) = make_model(&src).await;
    let prompt_name = unique("qa");
    prompt("make", &a.uri, &prompt_name).await;
    let prompt_seen = prompt("load", &a.uri, &prompt_name).await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-all",
        "--src-uri",
        &a.uri,
        "--export-deleted-runs",
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for _ in 0..2 {
        let mut cmd = cli();
        cmd.args(["import-all", "--dst-uri", &b.uri, "-i"])
            .arg(&path);
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut cmd = cli();
    cmd.args([
        "copy-all",
        "--src-uri",
        &a.uri,
        "--dst-uri",
        &c.uri,
        "--export-deleted-runs",
    ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for dst in [client(&b.uri), client(&c.uri)] {
        same_server(&src, &dst, [&e1, &e2], &model).await;
    }
    // Prompts arrive with every version, tag and alias, as MLflow's own client loads them.
    for uri in [&b.uri, &c.uri] {
        assert_eq!(
            prompt("load", uri, &prompt_name).await,
            prompt_seen,
            "{uri}"
        );
    }
}

/// The experiments (with as many runs) and the model's versions (numbers and stages) of `src`
/// are on `dst`.
async fn same_server(
    src: &mlflow_archive::mlflow::Client,
    dst: &mlflow_archive::mlflow::Client,
    experiments: [&String; 2],
    model: &str,
) {
    let names = |c: mlflow_archive::mlflow::Client| async move {
        let mut v: Vec<String> = c
            .search_experiments(ViewType::ActiveOnly, None)
            .map_ok(|e| e.name)
            .try_collect()
            .await
            .unwrap();
        v.sort();
        v
    };
    assert_eq!(names(src.clone()).await, names(dst.clone()).await);
    for e in experiments {
        let se = src.get_experiment_by_name(e).await.unwrap().unwrap();
        let de = dst.get_experiment_by_name(e).await.unwrap().unwrap();
        let count = |c: &mlflow_archive::mlflow::Client, id: String| {
            let c = c.clone();
            async move {
                c.search_runs(&[id], None, ViewType::All)
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap()
                    .len()
            }
        };
        assert_eq!(
            count(src, se.experiment_id).await,
            count(dst, de.experiment_id).await,
            "{e}"
        );
    }
    let numbers = |v: Vec<mlflow_archive::mlflow::types::ModelVersion>| {
        v.into_iter()
            .map(|x| (x.version, x.current_stage))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(src.all_model_versions(model).await.unwrap()),
        numbers(dst.all_model_versions(model).await.unwrap())
    );
}
