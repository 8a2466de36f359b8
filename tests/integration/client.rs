//! The REST client against a real MLflow server: every object kind is created, then read back
//! field by field.

use bytes::Bytes;
use futures_util::{TryStreamExt, stream};
use mlflow_archive::mlflow::types::{
    Dataset, DatasetInput, KeyValue, Metric, ModelInput, ModelOutput, ViewType,
};
use mlflow_archive::mlflow::{
    ArtifactFile, ArtifactRoot, ClientBuilder, CreateLoggedModel, CreateModelVersion, CreateRun,
    TrackingConfig, UpdateRun,
};

use crate::live_pair;
use crate::util::{client, experiment_with_run, quick_client, unique};

fn tag<'a>(tags: &'a [KeyValue], key: &str) -> Option<&'a str> {
    tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
}

#[tokio::test]
async fn experiments_are_created_read_updated_deleted_and_restored() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let name = unique("exp");
    let tags = vec![
        KeyValue::new("mlflow.note.content", "a description ✓"),
        KeyValue::new("team", "vision"),
        KeyValue::new("empty", ""),
    ];
    let id = c.create_experiment(&name, None, &tags).await.unwrap();

    let e = c.get_experiment(&id).await.unwrap();
    assert_eq!(e.experiment_id, id);
    assert_eq!(e.name, name);
    assert_eq!(e.lifecycle_stage, "active");
    assert_eq!(e.artifact_location, format!("mlflow-artifacts:/{id}"));
    assert!(e.creation_time.is_some() && e.last_update_time.is_some());
    assert_eq!(tag(&e.tags, "mlflow.note.content"), Some("a description ✓"));
    assert_eq!(tag(&e.tags, "team"), Some("vision"));
    assert_eq!(tag(&e.tags, "empty"), Some(""));
    assert_eq!(e.tags.len(), 3);

    let by_name = c.get_experiment_by_name(&name).await.unwrap().unwrap();
    assert_eq!(by_name, e);
    assert!(
        c.get_experiment_by_name(&unique("absent"))
            .await
            .unwrap()
            .is_none()
    );

    c.set_experiment_tag(&id, "team", "nlp").await.unwrap();
    c.delete_experiment_tag(&id, "empty").await.unwrap();
    let renamed = format!("{name}-renamed");
    c.rename_experiment(&id, &renamed).await.unwrap();
    let e = c.get_experiment(&id).await.unwrap();
    assert_eq!(e.name, renamed);
    assert_eq!(tag(&e.tags, "team"), Some("nlp"));
    assert_eq!(tag(&e.tags, "empty"), None);

    c.delete_experiment(&id).await.unwrap();
    assert_eq!(
        c.get_experiment(&id).await.unwrap().lifecycle_stage,
        "deleted"
    );
    let filter = format!("name = '{renamed}'");
    let active: Vec<_> = c
        .search_experiments(ViewType::ActiveOnly, Some(&filter))
        .try_collect()
        .await
        .unwrap();
    assert!(active.is_empty());
    let deleted: Vec<_> = c
        .search_experiments(ViewType::DeletedOnly, Some(&filter))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    c.restore_experiment(&id).await.unwrap();
    assert_eq!(
        c.get_experiment(&id).await.unwrap().lifecycle_stage,
        "active"
    );

    let clash = c.create_experiment(&renamed, None, &[]).await.unwrap_err();
    assert!(clash.is_already_exists(), "{clash}");
    assert!(clash.to_string().contains(&renamed), "{clash}");
}

#[tokio::test]
async fn experiment_search_pages_through_everything() {
    let pair = live_pair!();
    let prefix = unique("page");
    let c = client(&pair.src.uri);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            c.create_experiment(&format!("{prefix}-{i}"), None, &[])
                .await
                .unwrap(),
        );
    }
    let paged = ClientBuilder::new(TrackingConfig::for_uri(&pair.src.uri).unwrap())
        .page_size(2)
        .build()
        .unwrap();
    let filter = format!("name LIKE '{prefix}-%'");
    let found: Vec<String> = paged
        .search_experiments(ViewType::All, Some(&filter))
        .map_ok(|e| e.experiment_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found, ids);
}

#[tokio::test]
async fn experiments_are_found_by_name_then_by_id() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let name = unique("find");
    let id = c.create_experiment(&name, None, &[]).await.unwrap();
    let by_name = c.find_experiment(&name).await.unwrap().unwrap();
    assert_eq!(
        (by_name.experiment_id.as_str(), by_name.name.as_str()),
        (id.as_str(), name.as_str())
    );
    let by_id = c.find_experiment(&id).await.unwrap().unwrap();
    assert_eq!(by_id.name, name);

    // A name that reads as another experiment's id is taken as the name.
    let shadow = c.create_experiment(&id, None, &[]).await.unwrap();
    assert_ne!(shadow, id);
    let found = c.find_experiment(&id).await.unwrap().unwrap();
    assert_eq!(found.experiment_id, shadow);

    // Neither: an unknown name that is not a number (MLflow answers 400 for it as an id), and a
    // number no experiment has (404).
    assert!(
        c.find_experiment(&unique("absent"))
            .await
            .unwrap()
            .is_none()
    );
    assert!(c.find_experiment("987654321").await.unwrap().is_none());

    // A server that cannot be reached is an error, not "not found".
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let err = quick_client(&dead, 1)
        .find_experiment(&name)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
}

#[tokio::test]
async fn runs_keep_times_status_params_tags_inputs_and_full_metric_history() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let exp = c
        .create_experiment(&unique("runs"), None, &[])
        .await
        .unwrap();
    let run = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            run_name: Some("first run".into()),
            start_time: Some(1_600_000_000_123),
            tags: vec![
                KeyValue::new("mlflow.user", "alice"),
                KeyValue::new("k", "v"),
            ],
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let rid = run.info.run_id.clone();
    assert_eq!(run.info.status, "RUNNING");

    // More than one batch of everything: 150 params, 130 tags, 2600 metric points.
    let params: Vec<KeyValue> = (0..150)
        .map(|i| KeyValue::new(format!("p{i:03}"), format!("{i}")))
        .collect();
    let tags: Vec<KeyValue> = (0..130)
        .map(|i| KeyValue::new(format!("t{i:03}"), "x".repeat(i)))
        .collect();
    let mut points = Vec::new();
    for i in 0..2500i64 {
        points.push(Metric {
            key: "loss/train".into(),
            value: 1.0 / (i as f64 + 1.0),
            timestamp: 1_600_000_000_000 + i,
            step: i / 2, // repeated steps
            ..Metric::default()
        });
    }
    for (i, v) in [f64::NAN, 0.5, -2.25e-300].into_iter().enumerate() {
        points.push(Metric {
            key: "odd values".into(),
            value: v,
            timestamp: 7,
            step: i as i64,
            ..Metric::default()
        });
    }
    c.log_batch(&rid, &points, &params, &tags).await.unwrap();

    let datasets = vec![DatasetInput {
        tags: vec![KeyValue::new("mlflow.data.context", "training")],
        dataset: Dataset {
            name: "wine".into(),
            digest: "abc123".into(),
            source_type: "http".into(),
            source: r#"{"url": "http://example.invalid/wine.csv"}"#.into(),
            schema: r#"{"mlflow_colspec": []}"#.into(),
            profile: r#"{"num_rows": 10}"#.into(),
        },
    }];
    c.log_inputs(&rid, &datasets, &[]).await.unwrap();

    c.set_run_tag(&rid, "to-delete", "1").await.unwrap();
    c.delete_run_tag(&rid, "to-delete").await.unwrap();
    let info = c
        .update_run(&UpdateRun {
            run_id: rid.clone(),
            status: Some("FAILED".into()),
            end_time: Some(1_600_000_999_000),
            run_name: None,
        })
        .await
        .unwrap();
    assert_eq!(info.status, "FAILED");

    let got = c.get_run(&rid).await.unwrap();
    assert_eq!(got.info.run_id, rid);
    assert_eq!(got.info.experiment_id, exp);
    assert_eq!(got.info.run_name, "first run");
    assert_eq!(got.info.status, "FAILED");
    assert_eq!(got.info.start_time, Some(1_600_000_000_123));
    assert_eq!(got.info.end_time, Some(1_600_000_999_000));
    assert_eq!(got.info.lifecycle_stage, "active");
    assert_eq!(
        got.info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/{rid}/artifacts")
    );
    let mut got_params = got.data.params.clone();
    got_params.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(got_params, params);
    for t in &tags {
        assert_eq!(
            tag(&got.data.tags, &t.key),
            Some(t.value.as_str()),
            "tag {}",
            t.key
        );
    }
    assert_eq!(tag(&got.data.tags, "mlflow.user"), Some("alice"));
    assert_eq!(tag(&got.data.tags, "mlflow.runName"), Some("first run"));
    assert_eq!(tag(&got.data.tags, "to-delete"), None);
    assert_eq!(got.inputs.dataset_inputs, datasets);
    let latest: Vec<&str> = got.data.metrics.iter().map(|m| m.key.as_str()).collect();
    assert!(latest.contains(&"loss/train") && latest.contains(&"odd values"));

    // The whole history comes back in pages, point for point.
    let pages: Vec<Vec<Metric>> = c
        .metric_history(&rid, "loss/train", Some(1000))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        pages.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![1000, 1000, 500]
    );
    let mut history: Vec<(i64, i64, u64)> = pages
        .concat()
        .iter()
        .map(|m| (m.step, m.timestamp, m.value.to_bits()))
        .collect();
    history.sort();
    let mut want: Vec<(i64, i64, u64)> = points[..2500]
        .iter()
        .map(|m| (m.step, m.timestamp, m.value.to_bits()))
        .collect();
    want.sort();
    assert_eq!(history, want);
    let odd: Vec<Metric> = c
        .metric_history(&rid, "odd values", None)
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .concat();
    let mut odd: Vec<(i64, f64)> = odd.iter().map(|m| (m.step, m.value)).collect();
    odd.sort_by_key(|p| p.0);
    assert!(odd[0].1.is_nan());
    assert_eq!(odd[1].1, 0.5);
    assert_eq!(odd[2].1, -2.25e-300);

    // Deleted runs are found only when asked for.
    c.delete_run(&rid).await.unwrap();
    assert_eq!(
        c.get_run(&rid).await.unwrap().info.lifecycle_stage,
        "deleted"
    );
    let active: Vec<_> = c
        .search_runs(&[&exp], None, ViewType::ActiveOnly)
        .try_collect()
        .await
        .unwrap();
    assert!(active.is_empty());
    let all: Vec<_> = c
        .search_runs(&[&exp], None, ViewType::All)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    c.restore_run(&rid).await.unwrap();
    assert_eq!(
        c.get_run(&rid).await.unwrap().info.lifecycle_stage,
        "active"
    );
}

#[tokio::test]
async fn run_search_pages_and_filters() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let exp = c
        .create_experiment(&unique("search"), None, &[])
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        let r = c
            .create_run(&CreateRun {
                experiment_id: exp.clone(),
                start_time: Some(1_000 + i),
                tags: vec![KeyValue::new("n", i.to_string())],
                ..CreateRun::default()
            })
            .await
            .unwrap();
        ids.push(r.info.run_id);
    }
    let paged = ClientBuilder::new(TrackingConfig::for_uri(&pair.src.uri).unwrap())
        .page_size(2)
        .build()
        .unwrap();
    let found: Vec<String> = paged
        .search_runs(&[&exp], None, ViewType::All)
        .map_ok(|r| r.info.run_id)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found, ids, "oldest first, every page");
    let first = c.get_run(&ids[0]).await.unwrap();
    assert_eq!(first.info.start_time, Some(1_000));
    let unstamped = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let started = unstamped.info.start_time.unwrap();
    assert!(
        (now - started).abs() < 120_000,
        "a run without a start time starts now, not in 1970: {started}"
    );
    let hit = c.find_run_by_tag(&exp, "n", "3").await.unwrap().unwrap();
    assert_eq!(hit.info.run_id, ids[3]);
    assert!(c.find_run_by_tag(&exp, "n", "9").await.unwrap().is_none());
}

#[tokio::test]
async fn artifacts_stream_up_and_down_with_exact_sizes() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let run = experiment_with_run(&c, "art").await;
    let root = ArtifactRoot::parse(&run.info.artifact_uri).unwrap();

    let big: Vec<u8> = (0..3 * 1024 * 1024 + 17)
        .map(|i: u32| (i * 7 % 251) as u8)
        .collect();
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("empty.txt", Vec::new()),
        ("dir/a b é.txt", "unicode and spaces".into()),
        ("dir/sub/deeper/model.pkl", vec![0u8, 1, 2, 255]),
        ("MLmodel", "run_id: x\n".into()),
        ("big.bin", big.clone()),
    ];
    for (path, data) in &files {
        if data.len() > 1024 {
            // Streamed in uneven chunks.
            let chunks: Vec<Result<Bytes, mlflow_archive::Error>> = data
                .chunks(65_521)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            c.upload_artifact(&root, path, data.len() as u64, stream::iter(chunks))
                .await
                .unwrap();
        } else {
            c.upload_artifact_bytes(&root, path, Bytes::from(data.clone()))
                .await
                .unwrap();
        }
    }

    let listed: Vec<ArtifactFile> = c.walk_artifacts(&root).try_collect().await.unwrap();
    let mut want: Vec<ArtifactFile> = files
        .iter()
        .map(|(p, d)| ArtifactFile {
            path: p.to_string(),
            size: d.len() as u64,
        })
        .collect();
    want.sort_by(|a, b| a.path.cmp(&b.path));
    let mut got = listed.clone();
    got.sort_by(|a, b| a.path.cmp(&b.path));
    assert_eq!(got, want);

    let top = c.list_artifacts(&root, "").await.unwrap();
    let names: Vec<(&str, bool)> = top.iter().map(|f| (f.path.as_str(), f.is_dir)).collect();
    assert_eq!(
        names,
        vec![
            ("MLmodel", false),
            ("big.bin", false),
            ("dir", true),
            ("empty.txt", false)
        ]
    );
    assert_eq!(
        c.list_artifacts(&root, "dir/sub").await.unwrap()[0].path,
        "dir/sub/deeper"
    );

    for (path, data) in &files {
        let dl = c
            .download_artifact(&root, path, Some(data.len() as u64))
            .await
            .unwrap();
        let chunks: Vec<Bytes> = dl.body.try_collect().await.unwrap();
        assert_eq!(chunks.concat(), *data, "{path}");
    }

    // A wrong expected size is an error, never a silently short or long file.
    let err = match c.download_artifact(&root, "dir/a b é.txt", Some(5)).await {
        Err(e) => e,
        Ok(dl) => dl.body.try_collect::<Vec<_>>().await.unwrap_err(),
    };
    assert!(err.to_string().contains("a b é.txt"), "{err}");
    let short = stream::iter(vec![Ok::<_, mlflow_archive::Error>(Bytes::from_static(
        b"abc",
    ))]);
    let err = c
        .upload_artifact(&root, "short.txt", 10, short)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("short.txt"), "{err}");
    let missing = c
        .download_artifact(&root, "nope.txt", None)
        .await
        .err()
        .unwrap();
    assert!(missing.to_string().contains("nope.txt"), "{missing}");
}

#[tokio::test]
async fn registry_models_versions_stages_aliases_and_tags() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let run = experiment_with_run(&c, "reg").await;
    let rid = run.info.run_id;
    let name = unique("model");
    let m = c
        .create_registered_model(
            &name,
            Some("first description"),
            &[KeyValue::new("owner", "ml")],
        )
        .await
        .unwrap();
    assert_eq!(m.name, name);
    assert_eq!(m.description, "first description");
    assert_eq!(m.tags, vec![KeyValue::new("owner", "ml")]);

    c.update_registered_model(&name, "second description")
        .await
        .unwrap();
    c.set_registered_model_tag(&name, "extra", "1")
        .await
        .unwrap();
    c.set_registered_model_tag(&name, "gone", "1")
        .await
        .unwrap();
    c.delete_registered_model_tag(&name, "gone").await.unwrap();

    // Eleven versions, so that "10" and "11" must sort after "9".
    for i in 1..=11 {
        let v = c
            .create_model_version(&CreateModelVersion {
                name: name.clone(),
                source: format!("runs:/{rid}/model"),
                run_id: Some(rid.clone()),
                description: Some(format!("version {i}")),
                tags: vec![KeyValue::new("i", i.to_string())],
                run_link: Some("http://elsewhere.invalid/run".into()),
                ..CreateModelVersion::default()
            })
            .await
            .unwrap();
        assert_eq!(v.version, i.to_string());
        c.wait_model_version_ready(&name, &v.version, std::time::Duration::from_secs(30))
            .await
            .unwrap();
    }
    c.transition_model_version_stage(&name, "3", "Production", false)
        .await
        .unwrap();
    c.transition_model_version_stage(&name, "10", "Staging", false)
        .await
        .unwrap();
    c.set_registered_model_alias(&name, "champion", "3")
        .await
        .unwrap();
    c.set_registered_model_alias(&name, "old", "1")
        .await
        .unwrap();
    c.delete_registered_model_alias(&name, "old").await.unwrap();
    c.update_model_version(&name, "4", "changed").await.unwrap();
    c.set_model_version_tag(&name, "4", "extra", "yes")
        .await
        .unwrap();
    c.delete_model_version_tag(&name, "4", "i").await.unwrap();
    c.delete_model_version(&name, "2").await.unwrap();

    let m = c.get_registered_model(&name).await.unwrap();
    assert_eq!(m.description, "second description");
    let mut tags = m.tags.clone();
    tags.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        tags,
        vec![KeyValue::new("extra", "1"), KeyValue::new("owner", "ml")]
    );
    assert_eq!(m.aliases.len(), 1);
    assert_eq!(
        (m.aliases[0].alias.as_str(), m.aliases[0].version.as_str()),
        ("champion", "3")
    );

    let versions = c.all_model_versions(&name).await.unwrap();
    let numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(
        numbers,
        ["1", "3", "4", "5", "6", "7", "8", "9", "10", "11"]
    );
    for v in &versions {
        assert_eq!(v.name, name);
        assert_eq!(v.source, format!("runs:/{rid}/model"));
        assert_eq!(v.run_id, rid);
        assert_eq!(v.status, "READY");
        assert_eq!(v.run_link, "http://elsewhere.invalid/run");
        let want_stage = match v.version.as_str() {
            "3" => "Production",
            "10" => "Staging",
            _ => "None",
        };
        assert_eq!(v.current_stage, want_stage, "version {}", v.version);
        if v.version == "4" {
            assert_eq!(v.description, "changed");
            assert_eq!(v.tags, vec![KeyValue::new("extra", "yes")]);
        } else {
            assert_eq!(v.description, format!("version {}", v.version));
            assert_eq!(v.tags, vec![KeyValue::new("i", v.version.clone())]);
        }
    }
    let v3 = c.get_model_version(&name, "3").await.unwrap();
    assert_eq!(v3.aliases, vec!["champion".to_string()]);
    assert_eq!(
        c.get_model_version_by_alias(&name, "champion")
            .await
            .unwrap()
            .version,
        "3"
    );

    let filter = format!("name = '{name}'");
    let found: Vec<_> = c
        .search_registered_models(Some(&filter))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);

    let renamed = format!("{name}-renamed");
    c.rename_registered_model(&name, &renamed).await.unwrap();
    assert!(
        c.get_registered_model(&name)
            .await
            .unwrap_err()
            .is_not_found()
    );
    assert_eq!(c.all_model_versions(&renamed).await.unwrap().len(), 10);
    c.delete_registered_model(&renamed).await.unwrap();
    let gone = c.get_registered_model(&renamed).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone}");
    assert!(gone.to_string().contains(&renamed), "{gone}");
}

#[tokio::test]
async fn logged_models_with_params_tags_metrics_artifacts_and_run_links() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let exp = c.create_experiment(&unique("lm"), None, &[]).await.unwrap();
    let run = c
        .create_run(&CreateRun {
            experiment_id: exp.clone(),
            ..CreateRun::default()
        })
        .await
        .unwrap();
    let rid = run.info.run_id;
    let lm = c
        .create_logged_model(&CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("clf".into()),
            model_type: Some("sklearn".into()),
            source_run_id: Some(rid.clone()),
            params: vec![KeyValue::new("C", "1.0")],
            tags: vec![KeyValue::new("stage", "dev")],
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    let mid = lm.info.model_id.clone();
    assert!(mid.starts_with("m-"), "{mid}");
    assert_eq!(lm.info.status, "LOGGED_MODEL_PENDING");

    c.log_logged_model_params(&mid, &[KeyValue::new("D", "2")])
        .await
        .unwrap();
    c.set_logged_model_tags(
        &mid,
        &[KeyValue::new("t2", "v2"), KeyValue::new("gone", "x")],
    )
    .await
    .unwrap();
    c.delete_logged_model_tag(&mid, "gone").await.unwrap();
    let root = lm.artifact_root().unwrap();
    c.upload_artifact_bytes(&root, "MLmodel", Bytes::from_static(b"flavors: {}\n"))
        .await
        .unwrap();
    c.log_batch(
        &rid,
        &[Metric {
            key: "acc".into(),
            value: 0.9,
            timestamp: 5,
            step: 1,
            model_id: Some(mid.clone()),
            dataset_name: Some("ds".into()),
            dataset_digest: Some("d1".into()),
            ..Metric::default()
        }],
        &[],
        &[],
    )
    .await
    .unwrap();
    c.log_outputs(
        &rid,
        &[ModelOutput {
            model_id: mid.clone(),
            step: 1,
        }],
    )
    .await
    .unwrap();
    c.log_inputs(
        &rid,
        &[],
        &[ModelInput {
            model_id: mid.clone(),
        }],
    )
    .await
    .unwrap();
    let done = c
        .finalize_logged_model(&mid, "LOGGED_MODEL_READY")
        .await
        .unwrap();
    assert_eq!(done.info.status, "LOGGED_MODEL_READY");

    let got = c.get_logged_model(&mid).await.unwrap();
    assert_eq!(got.info.name, "clf");
    assert_eq!(got.info.model_type, "sklearn");
    assert_eq!(got.info.experiment_id, exp);
    assert_eq!(got.info.source_run_id, rid);
    assert_eq!(
        got.info.artifact_uri,
        format!("mlflow-artifacts:/{exp}/models/{mid}/artifacts")
    );
    let mut params = got.data.params.clone();
    params.sort_by(|a, b| a.key.cmp(&b.key));
    assert_eq!(
        params,
        vec![KeyValue::new("C", "1.0"), KeyValue::new("D", "2")]
    );
    assert_eq!(tag(&got.info.tags, "stage"), Some("dev"));
    assert_eq!(tag(&got.info.tags, "t2"), Some("v2"));
    assert_eq!(tag(&got.info.tags, "gone"), None);
    let m = got
        .data
        .metrics
        .iter()
        .find(|m| m.key == "acc")
        .expect("model metric");
    assert_eq!((m.value, m.step, m.timestamp), (0.9, 1, 5));
    assert_eq!(m.dataset_name.as_deref(), Some("ds"));
    let files: Vec<ArtifactFile> = c.walk_artifacts(&root).try_collect().await.unwrap();
    assert_eq!(
        files,
        vec![ArtifactFile {
            path: "MLmodel".into(),
            size: 12
        }]
    );

    let r = c.get_run(&rid).await.unwrap();
    assert_eq!(
        r.outputs.model_outputs,
        vec![ModelOutput {
            model_id: mid.clone(),
            step: 1
        }]
    );
    assert_eq!(
        r.inputs.model_inputs,
        vec![ModelInput {
            model_id: mid.clone()
        }]
    );

    let found: Vec<_> = c
        .search_logged_models(&[&exp], Some("tags.`stage` = 'dev'"))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].info.model_id, mid);

    // A version registered from the logged model.
    let name = unique("lm-model");
    c.create_registered_model(&name, None, &[]).await.unwrap();
    let v = c
        .create_model_version(&CreateModelVersion {
            name: name.clone(),
            source: format!("models:/{mid}"),
            run_id: Some(rid.clone()),
            model_id: Some(mid.clone()),
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    assert_eq!(
        c.get_model_version(&name, &v.version).await.unwrap().source,
        format!("models:/{mid}")
    );

    c.delete_logged_model(&mid).await.unwrap();
    assert!(c.get_logged_model(&mid).await.unwrap_err().is_not_found());
}

#[tokio::test]
async fn missing_objects_are_named_in_errors() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let e = c
        .get_run("0123456789abcdef0123456789abcdef")
        .await
        .unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("run 0123456789abcdef0123456789abcdef"),
        "{text}"
    );
    assert!(text.contains(&pair.src.uri), "{text}");
    let e = c.get_experiment("987654").await.unwrap_err();
    assert!(e.is_not_found() && e.to_string().contains("987654"), "{e}");
    let e = c.get_model_version("no-such-model", "3").await.unwrap_err();
    assert!(e.to_string().contains("\"no-such-model\" version 3"), "{e}");
    let info = c.server_info().await.unwrap();
    assert_eq!(info.store_type, "SqlStore");
}

#[tokio::test]
async fn requests_wait_for_a_slot_that_uploads_hold_and_downloads_do_not() {
    use futures_util::StreamExt;
    use mlflow_archive::mlflow::Concurrency;
    use std::time::Duration;

    let pair = live_pair!();
    let c = ClientBuilder::new(TrackingConfig::for_uri(&pair.src.uri).unwrap())
        .concurrency(Concurrency::Fixed(1))
        .build()
        .unwrap();
    let run = experiment_with_run(&c, "limit").await;
    let exp = run.info.experiment_id.clone();
    let root = ArtifactRoot::parse(&run.info.artifact_uri).unwrap();

    // A streamed upload whose second half waits for a signal holds the only slot meanwhile.
    let (go, wait) = tokio::sync::oneshot::channel::<()>();
    let body =
        stream::iter([Ok(Bytes::from_static(b"first half "))]).chain(stream::once(async move {
            wait.await.ok();
            Ok(Bytes::from_static(b"second half"))
        }));
    let before = c.requests_sent();
    let upload = tokio::spawn({
        let (c, root) = (c.clone(), root.clone());
        async move { c.upload_artifact(&root, "held.txt", 22, body).await }
    });
    // Sent (counted once it has its slot).
    while c.requests_sent() == before {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let held = tokio::time::timeout(Duration::from_millis(500), c.get_experiment(&exp)).await;
    assert!(held.is_err(), "a JSON call went out past the upload's slot");
    go.send(()).unwrap();
    upload.await.unwrap().unwrap();
    c.get_experiment(&exp).await.unwrap();

    // A download whose body is not read yet holds no slot.
    let d = c
        .download_artifact(&root, "held.txt", Some(22))
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), c.get_experiment(&exp)).await;
    assert!(
        got.is_ok(),
        "a JSON call waited for a download's unread body"
    );
    let bytes: Vec<Bytes> = d.body.try_collect().await.unwrap();
    assert_eq!(bytes.concat(), b"first half second half");

    // Every request went through the gate, one at a time; only the JSON calls are samples
    // (all but the upload and the download).
    let s = c.concurrency_summary();
    assert_eq!((s.lowest, s.highest, s.now), (1, 1, 1));
    assert_eq!(s.samples, c.requests_sent() - 2);
    assert!(s.base_rtt.is_some());
}
