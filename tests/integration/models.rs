//! export-model → import-model between real servers: every version in numeric order with its
//! number (gaps reproduced), stage, description, tags and aliases; runs and logged models behind
//! the versions imported first and `source`/`run_id` rewritten to them; a second import adds
//! nothing.

use std::collections::HashMap;

use bytes::Bytes;
use mlflow_archive::mlflow::types::KeyValue;
use mlflow_archive::mlflow::{Client, CreateLoggedModel, CreateModelVersion, CreateRun};
use mlflow_archive::transfer::import::{LINEAGE_RUN, LINEAGE_SOURCE_MODEL, LINEAGE_VERSION};

use crate::live_pair;
use crate::util::{cli, client, output, unique};

pub async fn make_model(c: &Client) -> (String, Vec<String>, String) {
    let exp = c
        .create_experiment(&unique("model-src"), None, &[])
        .await
        .unwrap();
    let mut runs = Vec::new();
    for i in 0..3 {
        let r = c
            .create_run(&CreateRun {
                experiment_id: exp.clone(),
                run_name: Some(format!("train {i}")),
                ..CreateRun::default()
            })
            .await
            .unwrap();
        let root = mlflow_archive::mlflow::ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
        c.upload_artifact_bytes(
            &root,
            "model/MLmodel",
            Bytes::from(format!("run_id: {}\n", r.info.run_id)),
        )
        .await
        .unwrap();
        runs.push(r.info.run_id);
    }
    let lm = c
        .create_logged_model(&CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("lm".into()),
            source_run_id: Some(runs[0].clone()),
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    c.finalize_logged_model(&lm.info.model_id, "LOGGED_MODEL_READY")
        .await
        .unwrap();
    let name = unique("registered");
    c.create_registered_model(&name, Some("a model"), &[KeyValue::new("owner", "ml")])
        .await
        .unwrap();
    for i in 1..=12u32 {
        let run = &runs[(i % 3) as usize];
        let (source, model_id) = if i == 12 {
            (
                format!("models:/{}", lm.info.model_id),
                Some(lm.info.model_id.clone()),
            )
        } else {
            (format!("runs:/{run}/model"), None)
        };
        c.create_model_version(&CreateModelVersion {
            name: name.clone(),
            source,
            run_id: Some(if i == 12 {
                runs[0].clone()
            } else {
                run.clone()
            }),
            description: Some(format!("build {i}")),
            tags: vec![KeyValue::new("build", i.to_string())],
            model_id,
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    c.delete_model_version(&name, "5").await.unwrap();
    c.delete_model_version(&name, "6").await.unwrap();
    c.transition_model_version_stage(&name, "10", "Production", false)
        .await
        .unwrap();
    c.transition_model_version_stage(&name, "3", "Archived", false)
        .await
        .unwrap();
    c.set_registered_model_alias(&name, "champion", "10")
        .await
        .unwrap();
    c.set_registered_model_alias(&name, "old", "2")
        .await
        .unwrap();
    (name, runs, lm.info.model_id)
}

#[tokio::test]
async fn a_model_with_every_version_and_a_gap_round_trips() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let (name, _runs, _lm) = make_model(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-model",
        "--src-uri",
        &pair.src.uri,
        "--model",
        &name,
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let target = unique("imported-model");
    let exp_name = unique("model-runs");
    let import = |target: String, exp_name: String, path: std::path::PathBuf| {
        let mut cmd = cli();
        cmd.args([
            "import-model",
            "--dst-uri",
            &pair.dst.uri,
            "--model",
            &target,
            "--experiment-name",
            &exp_name,
            "-i",
        ])
        .arg(&path);
        output(cmd)
    };
    let out = import(target.clone(), exp_name.clone(), path.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("10 versions created"), "{stderr}");

    let sm = src.get_registered_model(&name).await.unwrap();
    let dm = dst.get_registered_model(&target).await.unwrap();
    assert_eq!(dm.description, sm.description);
    assert_eq!(dm.tags, sm.tags);
    let mut aliases: Vec<(String, String)> = dm
        .aliases
        .iter()
        .map(|a| (a.alias.clone(), a.version.clone()))
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        vec![("champion".into(), "10".into()), ("old".into(), "2".into())]
    );

    let sv = src.all_model_versions(&name).await.unwrap();
    let dv = dst.all_model_versions(&target).await.unwrap();
    let numbers = |v: &[mlflow_archive::mlflow::types::ModelVersion]| {
        v.iter().map(|x| x.version.clone()).collect::<Vec<_>>()
    };
    assert_eq!(
        numbers(&dv),
        numbers(&sv),
        "the same numbers, the gap included"
    );
    assert_eq!(
        numbers(&dv),
        ["1", "2", "3", "4", "7", "8", "9", "10", "11", "12"]
    );
    let dst_runs: HashMap<String, String> = {
        let exp = dst
            .get_experiment_by_name(&exp_name)
            .await
            .unwrap()
            .unwrap();
        use futures_util::TryStreamExt;
        let runs: Vec<_> = dst
            .search_runs(
                &[&exp.experiment_id],
                None,
                mlflow_archive::mlflow::types::ViewType::All,
            )
            .try_collect()
            .await
            .unwrap();
        runs.iter()
            .map(|r| {
                let src = r
                    .data
                    .tags
                    .iter()
                    .find(|t| t.key == LINEAGE_RUN)
                    .unwrap()
                    .value
                    .clone();
                (src, r.info.run_id.clone())
            })
            .collect()
    };
    for (s, d) in sv.iter().zip(&dv) {
        assert_eq!(d.description, s.description, "v{}", s.version);
        assert_eq!(d.current_stage, s.current_stage, "v{}", s.version);
        assert_eq!(
            d.run_id, dst_runs[&s.run_id],
            "v{}: run_id points at the imported run",
            s.version
        );
        let mut tags: Vec<KeyValue> = d
            .tags
            .iter()
            .filter(|t| t.key != LINEAGE_VERSION && t.key != LINEAGE_SOURCE_MODEL)
            .cloned()
            .collect();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        assert_eq!(tags, s.tags, "v{}", s.version);
        if s.source.starts_with("runs:/") {
            assert_eq!(
                d.source,
                format!("runs:/{}/model", d.run_id),
                "v{}",
                s.version
            );
        } else {
            assert!(
                d.source.starts_with("models:/m-") && d.source != s.source,
                "v{}: {}",
                s.version,
                d.source
            );
        }
    }

    let out = import(target.clone(), exp_name.clone(), path.clone()).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("0 versions created, 10 already there"),
        "{stderr}"
    );
    assert_eq!(dst.all_model_versions(&target).await.unwrap().len(), 10);
}

#[tokio::test]
async fn copy_model_copies_every_version_directly() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let (name, _, _) = make_model(&src).await;
    let target = unique("copied-model");
    let mut cmd = cli();
    cmd.args([
        "copy-model",
        "--src-uri",
        &pair.src.uri,
        "--dst-uri",
        &pair.dst.uri,
        "--src-model",
        &name,
        "--dst-model",
        &target,
        "--dst-experiment-name",
        &unique("copied-model-runs"),
    ]);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("10 versions created"), "{stderr}");
    let versions = |v: Vec<mlflow_archive::mlflow::types::ModelVersion>| {
        v.into_iter()
            .map(|x| (x.version, x.current_stage, x.description))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        versions(src.all_model_versions(&name).await.unwrap()),
        versions(dst.all_model_versions(&target).await.unwrap())
    );
}
