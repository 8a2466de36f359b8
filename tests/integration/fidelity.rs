//! Everything observable arrives: a source holding every object kind (3-level nested runs, a
//! deleted run, a running run, long histories with NaN, ±inf and repeated steps, dataset inputs,
//! artifacts with empty, deep, unicode and spaced names, a logged model with its params, tags,
//! artifacts and its producing and consuming runs, a registered model with 13 versions, a gap,
//! stages, aliases, tags and `runs:/`, `models:/` and `mlflow-artifacts:` sources) is moved through
//! archives (export-all → import-all) and directly (copy-experiment, copy-model), and what the
//! destination shows through the REST API equals what the source shows: every run, field, point,
//! byte and version, with ids replaced by names and nothing left out but the documented
//! non-transferable fields (ids, server-set timestamps and users, and the import's own
//! `mlflow_archive.*` tags).

use std::collections::BTreeMap;

use bytes::Bytes;
use futures_util::TryStreamExt;
use mlflow_archive::mlflow::types::{
    Dataset, DatasetInput, KeyValue, Metric, ModelInput, ModelOutput, ViewType,
};
use mlflow_archive::mlflow::{
    ArtifactRoot, Client, CreateLoggedModel, CreateModelVersion, CreateRun, UpdateRun,
};

use crate::util::server::MlflowServer;
use crate::util::{cli, client, output, unique};

/// Fills `c` with one experiment of every kind of run, a logged model and a registered model;
/// returns the experiment's and the registered model's names.
pub async fn populate_everything(c: &Client) -> (String, String) {
    let name = unique("everything");
    let exp = c
        .create_experiment(
            &name,
            None,
            &[
                KeyValue::new("mlflow.note.content", "every kind of object"),
                KeyValue::new("team", "fidelity"),
            ],
        )
        .await
        .unwrap();
    let mut ids: BTreeMap<&str, String> = BTreeMap::new();
    let plan: [(&str, Option<&str>, &str, Option<i64>); 5] = [
        ("root", None, "FINISHED", Some(1_600_000_900_000)),
        ("child", Some("root"), "FAILED", Some(1_600_000_800_000)),
        (
            "grandchild",
            Some("child"),
            "KILLED",
            Some(1_600_000_700_000),
        ),
        ("removed", None, "FINISHED", Some(1_600_000_600_000)),
        ("still running", None, "RUNNING", None),
    ];
    for (i, (run, parent, status, end)) in plan.into_iter().enumerate() {
        let mut tags = vec![
            KeyValue::new("mlflow.user", "alice"),
            KeyValue::new("mlflow.source.name", "train.py"),
            KeyValue::new("stage", run),
        ];
        if let Some(p) = parent {
            tags.push(KeyValue::new("mlflow.parentRunId", ids[p].clone()));
        }
        let id = c
            .create_run(&CreateRun {
                experiment_id: exp.clone(),
                run_name: Some(run.into()),
                start_time: Some(1_600_000_000_000 + i as i64 * 1000),
                tags,
                ..CreateRun::default()
            })
            .await
            .unwrap()
            .info
            .run_id;
        let mut points: Vec<Metric> = (0..3_000)
            .map(|j| Metric {
                key: "loss".into(),
                value: match j {
                    3 => f64::NAN,
                    4 => f64::NEG_INFINITY,
                    _ => 1.0 / (j as f64 + 1.0) + i as f64,
                },
                timestamp: 1_600_000_000_000 + j / 3,
                step: j / 2,
                ..Metric::default()
            })
            .collect();
        points.push(Metric {
            key: "accuracy".into(),
            value: 0.5 + i as f64 / 10.0,
            timestamp: 1_600_000_000_500,
            step: 0,
            ..Metric::default()
        });
        let params: Vec<KeyValue> = (0..30)
            .map(|p| KeyValue::new(format!("param.{p}"), format!("{run} {p}")))
            .collect();
        c.log_batch(&id, &points, &params, &[]).await.unwrap();
        let root = ArtifactRoot::parse(&c.get_run(&id).await.unwrap().info.artifact_uri).unwrap();
        for (path, data) in [
            (
                "model/MLmodel",
                format!("artifact_path: model\nrun_id: {id}\n").into_bytes(),
            ),
            ("model/model.pkl", vec![7u8; 50_000]),
            ("empty.txt", Vec::new()),
            ("a/b/c/d/e/f/deep.txt", b"deep".to_vec()),
            ("with space/ünïcödé ✓.txt", "ünï".as_bytes().to_vec()),
        ] {
            c.upload_artifact_bytes(&root, path, Bytes::from(data))
                .await
                .unwrap();
        }
        if run == "child" {
            c.log_inputs(
                &id,
                &[DatasetInput {
                    tags: vec![KeyValue::new("mlflow.data.context", "training")],
                    dataset: Dataset {
                        name: "wine".into(),
                        digest: "d1g35t".into(),
                        source_type: "http".into(),
                        source: r#"{"url": "https://example.com/wine.csv"}"#.into(),
                        schema: r#"{"mlflow_colspec": [{"type": "double", "name": "x"}]}"#.into(),
                        profile: r#"{"num_rows": 10}"#.into(),
                    },
                }],
                &[],
            )
            .await
            .unwrap();
        }
        if status != "RUNNING" {
            c.update_run(&UpdateRun {
                run_id: id.clone(),
                status: Some(status.into()),
                end_time: end,
                run_name: None,
            })
            .await
            .unwrap();
        }
        ids.insert(run, id);
    }
    c.delete_run(&ids["removed"]).await.unwrap();

    // A logged model produced by "root" (an output at step 3) and used by "child" (an input).
    let lm = c
        .create_logged_model(&CreateLoggedModel {
            experiment_id: exp.clone(),
            name: Some("elasticnet".into()),
            model_type: Some("sklearn".into()),
            source_run_id: Some(ids["root"].clone()),
            params: vec![KeyValue::new("alpha", "0.5")],
            tags: vec![KeyValue::new("flavor", "sklearn")],
            ..CreateLoggedModel::default()
        })
        .await
        .unwrap();
    let lm_id = lm.info.model_id.clone();
    let lm_root = lm.artifact_root().unwrap();
    c.upload_artifact_bytes(
        &lm_root,
        "MLmodel",
        Bytes::from_static(b"artifact_path: model\nflavors: {}\n"),
    )
    .await
    .unwrap();
    c.finalize_logged_model(&lm_id, "LOGGED_MODEL_READY")
        .await
        .unwrap();
    c.log_outputs(
        &ids["root"],
        &[ModelOutput {
            model_id: lm_id.clone(),
            step: 3,
        }],
    )
    .await
    .unwrap();
    c.log_inputs(
        &ids["child"],
        &[],
        &[ModelInput {
            model_id: lm_id.clone(),
        }],
    )
    .await
    .unwrap();
    // Points of the producing run linked to the logged model, one of them NaN (which the
    // server reports as 0.0 among the model's metrics).
    let linked: Vec<Metric> = [("lm_accuracy", 0.75), ("nan_metric", f64::NAN)]
        .into_iter()
        .map(|(key, value)| Metric {
            key: key.into(),
            value,
            timestamp: 1_600_000_000_900,
            step: 3,
            model_id: Some(lm_id.clone()),
            ..Metric::default()
        })
        .collect();
    c.log_batch(&ids["root"], &linked, &[], &[]).await.unwrap();

    // A registered model: 13 versions from three kinds of source, version 6 deleted.
    let model = unique("everything-model");
    c.create_registered_model(
        &model,
        Some("all versions"),
        &[KeyValue::new("owner", "ml")],
    )
    .await
    .unwrap();
    let root_uri = c.get_run(&ids["root"]).await.unwrap().info.artifact_uri;
    for v in 1..=13u32 {
        let run = ["root", "child", "grandchild"][v as usize % 3];
        let (source, run_id, model_id) = match v {
            7 => (
                format!("models:/{lm_id}"),
                ids["root"].clone(),
                Some(lm_id.clone()),
            ),
            9 => (format!("{root_uri}/model"), ids["root"].clone(), None),
            _ => (format!("runs:/{}/model", ids[run]), ids[run].clone(), None),
        };
        c.create_model_version(&CreateModelVersion {
            name: model.clone(),
            source,
            run_id: Some(run_id),
            description: Some(format!("build {v}")),
            tags: vec![KeyValue::new("build", v.to_string())],
            model_id,
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    // The gap is just before the `models:/` version, so the placeholder that reproduces it
    // would be made from a logged model's version.
    c.delete_model_version(&model, "6").await.unwrap();
    for (v, stage) in [("11", "Production"), ("12", "Staging"), ("2", "Archived")] {
        c.transition_model_version_stage(&model, v, stage, false)
            .await
            .unwrap();
    }
    c.set_registered_model_alias(&model, "champion", "11")
        .await
        .unwrap();
    c.set_registered_model_alias(&model, "first", "1")
        .await
        .unwrap();
    (name, model)
}

/// A metric point as (step, timestamp, value bits), NaN as one value.
pub type Point = (i64, i64, u64);

/// What the REST API shows of a run, ids replaced by names.
#[derive(Debug, PartialEq)]
pub struct SeenRun {
    pub status: String,
    pub start_time: Option<i64>,
    pub end_time: Option<i64>,
    pub lifecycle_stage: String,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub histories: BTreeMap<String, Vec<Point>>,
    pub datasets: Vec<DatasetInput>,
    pub model_inputs: Vec<String>,
    pub model_outputs: Vec<(String, i64)>,
    pub artifacts: BTreeMap<String, Vec<u8>>,
}

/// What the REST API shows of a logged model.
#[derive(Debug, PartialEq)]
pub struct SeenLoggedModel {
    pub model_type: String,
    pub status: String,
    pub source_run: String,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub artifacts: BTreeMap<String, Vec<u8>>,
    /// The keys of its metrics.
    pub metrics: Vec<String>,
}

/// What the REST API shows of a registered model version.
#[derive(Debug, PartialEq)]
pub struct SeenVersion {
    pub stage: String,
    pub description: String,
    pub source: String,
    pub run: String,
    pub logged_model: String,
    pub status: String,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, PartialEq)]
pub struct Seen {
    pub experiment_tags: BTreeMap<String, String>,
    pub runs: BTreeMap<String, SeenRun>,
    pub logged_models: BTreeMap<String, SeenLoggedModel>,
    pub model_description: String,
    pub model_tags: BTreeMap<String, String>,
    pub aliases: BTreeMap<String, String>,
    pub versions: BTreeMap<u64, SeenVersion>,
}

/// Tags as a map, without the import's own markers (documented in README: lineage and state).
fn tag_map(tags: &[KeyValue]) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|t| !t.key.starts_with("mlflow_archive."))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect()
}

async fn files(c: &Client, root: &ArtifactRoot) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let listed: Vec<_> = c.walk_artifacts(root).try_collect().await.unwrap();
    for f in listed {
        let dl = c
            .download_artifact(root, &f.path, Some(f.size))
            .await
            .unwrap();
        let chunks: Vec<Bytes> = dl.body.try_collect().await.unwrap();
        out.insert(f.path, chunks.concat());
    }
    out
}

/// Replaces every id in `text` by the name it stands for.
fn named(text: &str, names: &BTreeMap<String, String>) -> String {
    let mut s = text.to_string();
    for (id, name) in names {
        s = s.replace(id.as_str(), &format!("<{name}>"));
    }
    s
}

/// Reads experiment `experiment` (and registered model `model`, if given) from `c`, as names.
pub async fn observe(c: &Client, experiment: &str, model: Option<&str>) -> Seen {
    let e = c.get_experiment_by_name(experiment).await.unwrap().unwrap();
    let runs: Vec<_> = c
        .search_runs(&[&e.experiment_id], None, ViewType::All)
        .try_collect()
        .await
        .unwrap();
    // Each run as `runs/get` shows it (search answers may leave out inputs and outputs).
    let mut full = Vec::new();
    for r in runs {
        if !mlflow_archive::transfer::import::is_abandoned(&r) {
            full.push(c.get_run(&r.info.run_id).await.unwrap());
        }
    }
    let runs = full;
    let lms: Vec<_> = c
        .search_logged_models(&[&e.experiment_id], None)
        .try_collect()
        .await
        .unwrap();
    // Ids by name: runs by run name, logged models by model name, the experiment by "experiment".
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for r in &runs {
        assert!(
            names
                .insert(r.info.run_id.clone(), r.info.run_name.clone())
                .is_none()
        );
    }
    for m in &lms {
        names.insert(m.info.model_id.clone(), m.info.name.clone());
    }
    assert_eq!(names.len(), runs.len() + lms.len(), "names are unique");
    // MLmodel files name runs, logged models and their locations: all by name.
    let mut roots: Vec<(String, String)> = runs
        .iter()
        .map(|r| (r.info.artifact_uri.clone(), r.info.run_name.clone()))
        .chain(
            lms.iter()
                .map(|m| (m.info.artifact_uri.clone(), m.info.name.clone())),
        )
        .collect();
    roots.sort_by_key(|(uri, _)| std::cmp::Reverse(uri.len()));
    let mlmodel = |path: &str, data: Vec<u8>| -> Vec<u8> {
        match String::from_utf8(data.clone()) {
            Ok(mut text) if path.ends_with("MLmodel") => {
                for (uri, name) in &roots {
                    text = text.replace(uri.as_str(), &format!("<artifact root of {name}>"));
                }
                named(&text, &names).into_bytes()
            }
            _ => data,
        }
    };
    let mut seen_runs = BTreeMap::new();
    for r in &runs {
        let mut histories = BTreeMap::new();
        for m in &r.data.metrics {
            let pages: Vec<Vec<Metric>> = c
                .metric_history(&r.info.run_id, &m.key, None)
                .try_collect()
                .await
                .unwrap();
            let mut points: Vec<Point> = pages
                .concat()
                .iter()
                .map(|p| {
                    let bits = if p.value.is_nan() {
                        0
                    } else {
                        p.value.to_bits()
                    };
                    (p.step, p.timestamp, bits)
                })
                .collect();
            points.sort_unstable();
            histories.insert(m.key.clone(), points);
        }
        let root = ArtifactRoot::parse(&r.info.artifact_uri).unwrap();
        let artifacts = files(c, &root)
            .await
            .into_iter()
            .map(|(p, d)| {
                let d = mlmodel(&p, d);
                (p, d)
            })
            .collect();
        let mut tags = tag_map(&r.data.tags);
        if let Some(p) = tags.get_mut("mlflow.parentRunId") {
            *p = named(p, &names);
        }
        seen_runs.insert(
            r.info.run_name.clone(),
            SeenRun {
                status: r.info.status.clone(),
                start_time: r.info.start_time,
                end_time: r.info.end_time,
                lifecycle_stage: r.info.lifecycle_stage.clone(),
                params: tag_map(&r.data.params),
                tags,
                histories,
                datasets: r.inputs.dataset_inputs.clone(),
                model_inputs: r
                    .inputs
                    .model_inputs
                    .iter()
                    .map(|m| named(&m.model_id, &names))
                    .collect(),
                model_outputs: r
                    .outputs
                    .model_outputs
                    .iter()
                    .map(|m| (named(&m.model_id, &names), m.step))
                    .collect(),
                artifacts,
            },
        );
    }
    let mut logged_models = BTreeMap::new();
    for m in &lms {
        let root = m.artifact_root().unwrap();
        logged_models.insert(
            m.info.name.clone(),
            SeenLoggedModel {
                model_type: m.info.model_type.clone(),
                status: m.info.status.clone(),
                source_run: named(&m.info.source_run_id, &names),
                params: tag_map(&m.data.params),
                tags: tag_map(&m.info.tags),
                artifacts: files(c, &root)
                    .await
                    .into_iter()
                    .map(|(p, d)| {
                        let d = mlmodel(&p, d);
                        (p, d)
                    })
                    .collect(),
                metrics: {
                    let mut keys: Vec<String> =
                        m.data.metrics.iter().map(|p| p.key.clone()).collect();
                    keys.sort();
                    keys.dedup();
                    keys
                },
            },
        );
    }
    let rm = match model {
        Some(m) => c.get_registered_model(m).await.unwrap(),
        None => mlflow_archive::mlflow::types::RegisteredModel::default(),
    };
    let all_versions = match model {
        Some(m) => c.all_model_versions(m).await.unwrap(),
        None => Vec::new(),
    };
    let mut versions = BTreeMap::new();
    for v in all_versions {
        // A source inside a run's artifact root, by address: the root, named.
        let mut source = v.source.clone();
        if let Some(r) = runs
            .iter()
            .find(|r| source.starts_with(&r.info.artifact_uri))
        {
            source = format!(
                "<artifact root of {}>{}",
                r.info.run_name,
                &source[r.info.artifact_uri.len()..]
            );
        }
        versions.insert(
            v.number(),
            SeenVersion {
                stage: v.current_stage.clone(),
                description: v.description.clone(),
                source: named(&source, &names),
                run: named(&v.run_id, &names),
                logged_model: named(v.model_id.as_deref().unwrap_or(""), &names),
                status: v.status.clone(),
                tags: tag_map(&v.tags),
            },
        );
    }
    Seen {
        experiment_tags: tag_map(&e.tags),
        runs: seen_runs,
        logged_models,
        model_description: rm.description.clone(),
        model_tags: tag_map(&rm.tags),
        aliases: rm
            .aliases
            .iter()
            .map(|a| (a.alias.clone(), a.version.clone()))
            .collect(),
        versions,
    }
}

/// Compares two observations part by part, so a difference is shown where it is.
pub fn assert_same(a: &Seen, b: &Seen, how: &str) {
    assert_eq!(
        a.experiment_tags, b.experiment_tags,
        "{how}: experiment tags"
    );
    assert_eq!(
        a.runs.keys().collect::<Vec<_>>(),
        b.runs.keys().collect::<Vec<_>>(),
        "{how}: runs"
    );
    for (name, r) in &a.runs {
        let o = &b.runs[name];
        let at = format!("{how}: run {name:?}");
        assert_eq!(
            (&r.status, r.start_time, r.end_time, &r.lifecycle_stage),
            (&o.status, o.start_time, o.end_time, &o.lifecycle_stage),
            "{at}: status, times, lifecycle"
        );
        assert_eq!(r.params, o.params, "{at}: params");
        assert_eq!(r.tags, o.tags, "{at}: tags");
        assert_eq!(r.datasets, o.datasets, "{at}: dataset inputs");
        assert_eq!(r.model_inputs, o.model_inputs, "{at}: model inputs");
        assert_eq!(r.model_outputs, o.model_outputs, "{at}: model outputs");
        assert_eq!(
            r.histories.keys().collect::<Vec<_>>(),
            o.histories.keys().collect::<Vec<_>>(),
            "{at}: metric keys"
        );
        for (k, h) in &r.histories {
            let g = &o.histories[k];
            let first = h.iter().zip(g.iter()).position(|(x, y)| x != y);
            assert!(
                h == g,
                "{at}: metric {k:?}: {} vs {} points, first difference at {first:?}",
                h.len(),
                g.len()
            );
        }
        assert_eq!(
            r.artifacts.keys().collect::<Vec<_>>(),
            o.artifacts.keys().collect::<Vec<_>>(),
            "{at}: artifact paths"
        );
        for (p, d) in &r.artifacts {
            let (x, y) = (d, &o.artifacts[p]);
            assert!(
                x == y,
                "{at}: artifact {p:?} differs{}",
                if x.len() < 4096 && y.len() < 4096 {
                    format!(
                        ":\n{}\n---\n{}",
                        String::from_utf8_lossy(x),
                        String::from_utf8_lossy(y)
                    )
                } else {
                    String::new()
                }
            );
        }
    }
    assert_eq!(a.logged_models, b.logged_models, "{how}: logged models");
    assert_eq!(a.model_description, b.model_description, "{how}");
    assert_eq!(a.model_tags, b.model_tags, "{how}: registered model tags");
    assert_eq!(a.aliases, b.aliases, "{how}: aliases");
    for (n, v) in &a.versions {
        assert_eq!(Some(v), b.versions.get(n), "{how}: version {n}");
    }
    assert_eq!(a.versions.len(), b.versions.len(), "{how}: versions");
    assert!(a == b, "{how}: the observations differ");
}

async fn run_cli(args: &[&str]) {
    crate::util::run_ok(args).await;
}

#[tokio::test]
async fn everything_observable_arrives_through_archives_and_by_copy() {
    let servers = tokio::task::spawn_blocking(|| {
        let names = ["fid-src", "fid-archive", "fid-copy"];
        let started: Vec<_> = names
            .map(|n| std::thread::spawn(move || MlflowServer::start(n, None)))
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        started
    })
    .await
    .unwrap();
    let [Some(a), Some(b), Some(k)] = <[Option<MlflowServer>; 3]>::try_from(servers).ok().unwrap()
    else {
        return;
    };
    let src = client(&a.uri);
    let (experiment, model) = populate_everything(&src).await;
    let want = observe(&src, &experiment, Some(&model)).await;
    // The observation holds what it should (so equal observations mean something).
    assert_eq!(want.runs.len(), 5);
    assert_eq!(want.versions.len(), 12);
    assert!(!want.versions.contains_key(&6));
    assert_eq!(
        want.logged_models["elasticnet"].metrics,
        ["lm_accuracy", "nan_metric"]
    );
    assert!(
        want.logged_models["elasticnet"].tags["mlflow.modelVersions"].contains("\"version\": 7}"),
        "{:?}",
        want.logged_models["elasticnet"].tags
    );
    assert_eq!(want.logged_models.len(), 1);
    let (root, child) = (&want.runs["root"], &want.runs["child"]);
    assert_eq!(root.histories["loss"].len(), 3000);
    assert_eq!(root.artifacts.len(), 5);
    assert_eq!(
        root.artifacts["model/MLmodel"],
        b"artifact_path: model\nrun_id: <root>\n"
    );
    assert_eq!(root.model_outputs, [("<elasticnet>".to_string(), 3)]);
    assert_eq!(child.model_inputs, ["<elasticnet>"]);
    assert_eq!(child.datasets.len(), 1);
    assert_eq!(
        want.runs["grandchild"].tags["mlflow.parentRunId"],
        "<child>"
    );
    assert_eq!(want.runs["removed"].lifecycle_stage, "deleted");
    assert_eq!(want.runs["still running"].status, "RUNNING");
    assert_eq!(want.runs["still running"].end_time, None);
    assert_eq!(want.versions[&7].source, "models:/<elasticnet>");
    assert_eq!(want.versions[&9].source, "<artifact root of root>/model");
    assert_eq!(want.versions[&4].source, "runs:/<child>/model");
    assert_eq!(want.aliases["champion"], "11");
    assert_eq!(want.logged_models["elasticnet"].source_run, "<root>");

    // Through an archive: export-all, then import-all (twice: the second changes nothing).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.mlar");
    let archive = path.to_str().unwrap();
    run_cli(&[
        "export-all",
        "--src-uri",
        &a.uri,
        "--export-deleted-runs",
        "-o",
        archive,
    ])
    .await;
    for _ in 0..2 {
        let mut cmd = cli();
        cmd.args([
            "import-all",
            "--dst-uri",
            &b.uri,
            "-i",
            archive,
            "--use-src-user-id",
        ]);
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let got = observe(&client(&b.uri), &experiment, Some(&model)).await;
    assert_same(&want, &got, "export-all → import-all");

    // Directly: copy-experiment, then copy-model with the versions' runs in the same experiment.
    run_cli(&[
        "copy-experiment",
        "--src-uri",
        &a.uri,
        "--dst-uri",
        &k.uri,
        "--src-experiment",
        &experiment,
        "--export-deleted-runs",
        "--use-src-user-id",
    ])
    .await;
    run_cli(&[
        "copy-model",
        "--src-uri",
        &a.uri,
        "--dst-uri",
        &k.uri,
        "--src-model",
        &model,
        "--dst-experiment-name",
        &experiment,
        "--use-src-user-id",
    ])
    .await;
    let got = observe(&client(&k.uri), &experiment, Some(&model)).await;
    assert_same(&want, &got, "copy-experiment + copy-model");
}
