//! The Python tool's layouts. The trees under `tests/data/legacy/v2` were written by the real
//! `mlflow-export-import` 1.2.0 from PyPI (`tests/data/legacy/make_fixtures.sh`): importing them
//! with mlflow-archive gives what the Python tool's own import gives, and keeps what that import
//! drops.

use std::collections::BTreeMap;

use crate::fidelity::{SeenRun, observe};
use crate::live_pair;
use crate::util::server::{repo_root, venv};
use crate::util::{cli, client, output, unique};

fn fixture(kind: &str) -> std::path::PathBuf {
    repo_root().join("tests/data/legacy/v2").join(kind)
}

/// The Python tool's import of `tree` into `experiment` on `uri`.
async fn python_import(uri: &str, tree: &std::path::Path, args: &[&str]) {
    let venv = venv().expect("the test venv (scripts/ensure-venv.sh)");
    let mut cmd = std::process::Command::new(venv.join("bin").join(args[0]));
    cmd.args(&args[1..])
        .arg("--input-dir")
        .arg(tree)
        .env("MLFLOW_TRACKING_URI", uri);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "the Python tool's {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What both imports must agree on: names, params, tags, histories, artifacts, nesting.
fn comparable(runs: &BTreeMap<String, SeenRun>) -> BTreeMap<String, String> {
    runs.iter()
        .map(|(name, r)| {
            let tags: BTreeMap<&String, &String> = r
                .tags
                .iter()
                .filter(|(k, _)| !k.starts_with("mlflow_export_import."))
                .collect();
            (
                name.clone(),
                format!(
                    "params {:?}\ntags {:?}\nhistories {:?}\nartifacts {:?}",
                    r.params, tags, r.histories, r.artifacts
                ),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_v2_experiment_tree_imports_as_the_python_tool_imports_it_and_keeps_its_times() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let tree = fixture("experiment");
    let ours = unique("legacy-ours");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--use-src-user-id",
        "-i",
    ])
    .arg(&tree)
    .args(["--experiment-name", &ours]);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("4 runs imported"), "{stderr}");
    let theirs = unique("legacy-python");
    python_import(
        &pair.dst.uri,
        &tree,
        &[
            "import-experiment",
            "--experiment-name",
            &theirs,
            "--use-src-user-id",
            "True",
        ],
    )
    .await;

    let a = observe(&dst, &ours, None).await;
    let b = observe(&dst, &theirs, None).await;
    assert_eq!(a.runs.len(), 4);
    let (ca, cb) = (comparable(&a.runs), comparable(&b.runs));
    assert_eq!(ca.keys().collect::<Vec<_>>(), cb.keys().collect::<Vec<_>>());
    for (name, want) in &cb {
        assert_eq!(
            &ca[name], want,
            "run {name:?}: mlflow-archive vs the Python tool"
        );
    }
    assert_eq!(a.runs["grandchild"].tags["mlflow.parentRunId"], "<child>");
    assert_eq!(a.runs["grandchild"].histories["loss"].len(), 20);

    // What the tree holds of each run's times and status arrives too.
    for (name, r) in &a.runs {
        let dir = std::fs::read_dir(&tree)
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                std::fs::read_to_string(p.join("run.json"))
                    .is_ok_and(|t| t.contains(&format!("\"run_name\": \"{name}\"")))
            })
            .unwrap_or_else(|| panic!("no run.json for {name}"));
        let doc: serde_json::Value =
            mlflow_archive::mlflow::json::parse(&std::fs::read(dir.join("run.json")).unwrap())
                .unwrap();
        let info = &doc["mlflow"]["info"];
        assert_eq!(r.start_time, info["start_time"].as_i64(), "{name}");
        assert_eq!(r.end_time, info["end_time"].as_i64(), "{name}");
        assert_eq!(r.status, info["status"].as_str().unwrap(), "{name}");
    }
}

/// The Python tool's own `import-model` cannot import this tree into a server that serves
/// artifacts (it checks each version's source as a local path), so the destination is compared
/// with the tree itself.
#[tokio::test]
async fn a_v2_model_tree_imports_with_every_version_number_stage_alias_and_run() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let (model, experiment) = (unique("legacy-model"), unique("legacy-model-runs"));
    let mut cmd = cli();
    cmd.args(["import-model", "--dst-uri", &pair.dst.uri, "-i"])
        .arg(fixture("model"))
        .args(["--model", &model, "--experiment-name", &experiment]);
    let out = output(cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let got = observe(&dst, &experiment, Some(&model)).await;
    assert_eq!(got.model_description, "legacy fixture");
    assert_eq!(got.model_tags["owner"], "fixtures");
    assert_eq!(got.aliases["champion"], "3");
    assert_eq!(got.versions.keys().copied().collect::<Vec<_>>(), [1, 3, 4]);
    for (n, run) in [(1, "parent"), (3, "grandchild"), (4, "other child")] {
        let v = &got.versions[&n];
        assert_eq!(v.run, format!("<{run}>"), "version {n}");
        assert_eq!(v.source, format!("runs:/<{run}>/model"), "version {n}");
        assert_eq!(v.description, format!("build {n}"));
        assert_eq!(v.tags["build"], n.to_string());
        let stage = if n == 3 { "Production" } else { "None" };
        assert_eq!(v.stage, stage, "version {n}");
    }
    // The versions' runs, with their histories and files.
    assert_eq!(got.runs.len(), 3);
    assert_eq!(got.runs["parent"].histories["loss"].len(), 20);
    assert_eq!(got.runs["parent"].artifacts.len(), 3);
}

/// Copies a fixture tree to a scratch directory, to break it.
fn scratch_copy(kind: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(fixture(kind))
        .arg(dir.path().join("t"))
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn inspect_fails(tree: &std::path::Path, want: &[&str]) {
    let out = assert_cmd::Command::cargo_bin("mlflow-archive")
        .unwrap()
        .arg("inspect")
        .arg(tree)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for w in want {
        assert!(stderr.contains(w), "{w:?} not in: {stderr}");
    }
    // The tree's fault is named as such, not as a corrupt archive.
    assert!(!stderr.contains("corrupt"), "{stderr}");
}

#[test]
fn malformed_trees_get_an_error_naming_the_file() {
    // A listed run whose directory is missing.
    let d = scratch_copy("experiment");
    let t = d.path().join("t");
    let run = std::fs::read_dir(&t)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .unwrap();
    let id = run.file_name().unwrap().to_string_lossy().to_string();
    std::fs::remove_dir_all(&run).unwrap();
    inspect_fails(&t, &[&id, "is listed but neither"]);

    // A run.json of the wrong shape.
    let d = scratch_copy("run");
    let t = d.path().join("t");
    std::fs::write(t.join("run.json"), r#"{"mlflow": {"info": 5}}"#).unwrap();
    inspect_fails(
        &t,
        &["run.json", "not the layout mlflow-export-import writes"],
    );

    // Unknown keys are ignored; a symbolic link among the artifacts is refused.
    let d = scratch_copy("run");
    let t = d.path().join("t");
    std::os::unix::fs::symlink("/etc/passwd", t.join("artifacts/escape")).unwrap();
    inspect_fails(&t, &["escape", "not a regular file"]);

    // Not a tree of the Python tool at all.
    let d = tempfile::tempdir().unwrap();
    inspect_fails(d.path(), &["not an export of mlflow-export-import"]);
}

/// Issue 12 item 3: a run's `artifacts/`, or the run's own directory, that is a symbolic link to a
/// directory outside the tree is refused with the link named, not followed (its files would go
/// into the archive or to the server).
#[test]
fn symlinked_directories_of_a_tree_are_refused_naming_the_link() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "not part of any export").unwrap();
    let run_dirs = |t: &std::path::Path| -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(t)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_dir())
            .collect();
        v.sort();
        v
    };

    // A run's artifacts/.
    let d = scratch_copy("experiment");
    let t = d.path().join("t");
    let artifacts = run_dirs(&t)[0].join("artifacts");
    std::fs::remove_dir_all(&artifacts).unwrap();
    std::os::unix::fs::symlink(outside.path(), &artifacts).unwrap();
    inspect_fails(
        &t,
        &[&artifacts.display().to_string(), "a symbolic link (refused"],
    );

    // A run's own directory (a copy of a real run, outside the tree).
    let d = scratch_copy("experiment");
    let t = d.path().join("t");
    let run = run_dirs(&t)[1].clone();
    let moved = outside.path().join("run");
    std::fs::rename(&run, &moved).unwrap();
    std::os::unix::fs::symlink(&moved, &run).unwrap();
    inspect_fails(
        &t,
        &[&run.display().to_string(), "a symbolic link (refused"],
    );

    // The top of the tree may be a link.
    let d = scratch_copy("run");
    let link = d.path().join("link");
    std::os::unix::fs::symlink(d.path().join("t"), &link).unwrap();
    assert!(inspect_counts(&link).contains("1 runs"));
}

#[tokio::test]
async fn a_v2_export_all_tree_imports_whole_and_twice_changes_nothing() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let prefix = unique("bulk");
    for round in 0..2 {
        let mut cmd = cli();
        cmd.args(["import-all", "--dst-uri", &pair.dst.uri, "-i"])
            .arg(fixture("all"))
            .args(["--experiment-name-prefix", &format!("{prefix}/")]);
        let out = output(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        if round == 1 {
            assert!(
                stderr.contains("0 runs imported, 4 already complete"),
                "{stderr}"
            );
        }
    }
    let got = observe(
        &dst,
        &format!("{prefix}/fixture/wine"),
        Some("fixture-model"),
    )
    .await;
    assert_eq!(got.runs.len(), 4);
    assert_eq!(got.versions.keys().copied().collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(got.versions[&3].run, "<grandchild>");
    assert_eq!(got.aliases["champion"], "3");
}

/// Units of an archive, each as one comparable string: tags and params sorted, a metric's chunks
/// joined, artifacts by path (the v2 layout keeps no order of tags or files, and chunks its
/// histories its own way).
fn units(items: Vec<crate::format_util::Item>) -> BTreeMap<String, String> {
    use crate::format_util::Item;
    use mlflow_archive::format::model::Tag;
    let sorted = |t: &[Tag]| {
        let mut v: Vec<(String, String)> =
            t.iter().map(|t| (t.key.clone(), t.value.clone())).collect();
        v.sort();
        v
    };
    let mut out = BTreeMap::new();
    let mut key = String::new();
    let mut body: Vec<String> = Vec::new();
    let mut histories: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    fn flush(
        out: &mut BTreeMap<String, String>,
        key: &mut String,
        body: &mut Vec<String>,
        histories: &mut BTreeMap<String, Vec<String>>,
        files: &mut BTreeMap<String, usize>,
    ) {
        if !key.is_empty() {
            body.push(format!("histories {histories:?}\nfiles {files:?}"));
            out.insert(std::mem::take(key), body.join("\n"));
        }
        body.clear();
        histories.clear();
        files.clear();
    }
    for it in items {
        match it {
            Item::Experiment(mut e) => {
                flush(&mut out, &mut key, &mut body, &mut histories, &mut files);
                let tags = sorted(&e.tags);
                e.tags.clear();
                out.insert(
                    format!("experiment {}", e.experiment_id),
                    format!("{e:?} {tags:?}"),
                );
            }
            Item::Run(mut r) => {
                flush(&mut out, &mut key, &mut body, &mut histories, &mut files);
                key = format!("run {}", r.run_id);
                let (p, t) = (sorted(&r.params), sorted(&r.tags));
                r.params.clear();
                r.tags.clear();
                body.push(format!("{r:?} {p:?} {t:?}"));
            }
            Item::LoggedModel(mut m) => {
                flush(&mut out, &mut key, &mut body, &mut histories, &mut files);
                key = format!("logged model {}", m.model_id);
                let (p, t) = (sorted(&m.params), sorted(&m.tags));
                m.params.clear();
                m.tags.clear();
                body.push(format!("{m:?} {p:?} {t:?}"));
            }
            Item::Model(mut m) => {
                flush(&mut out, &mut key, &mut body, &mut histories, &mut files);
                key = format!("model {}", m.name);
                let t = sorted(&m.tags);
                m.tags.clear();
                body.push(format!("{m:?} {t:?}"));
            }
            Item::Version(mut v) => {
                let t = sorted(&v.tags);
                v.tags.clear();
                body.push(format!("{v:?} {t:?}"));
            }
            Item::Chunk(c) => {
                let h = histories.entry(c.key.clone()).or_default();
                for p in &c.points {
                    h.push(format!(
                        "{:?}/{:?}/{:?} {} {} {}",
                        c.model_id,
                        c.dataset_name,
                        c.dataset_digest,
                        p.step,
                        p.timestamp,
                        if p.value.is_nan() {
                            0
                        } else {
                            p.value.to_bits()
                        }
                    ));
                }
            }
            Item::Artifact(path, data) => {
                files.insert(path, data.len());
            }
            Item::EndUnit => flush(&mut out, &mut key, &mut body, &mut histories, &mut files),
            Item::Trace(_)
            | Item::Dataset(_)
            | Item::Records(_)
            | Item::OpenExperiment(_)
            | Item::Permissions(_) => {
                panic!("the Python tool's layout holds no traces, datasets or permissions yet")
            }
        }
    }
    out
}

fn convert(input: &std::path::Path, output: &std::path::Path) {
    let out = assert_cmd::Command::cargo_bin("mlflow-archive")
        .unwrap()
        .args(["-q", "convert"])
        .arg(input)
        .arg(output)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "convert {} {}: {}",
        input.display(),
        output.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Traces and evaluation datasets have no place in the Python tool's layout yet: converting an
/// archive that holds them is refused, naming the first, and leaves no tree behind presented as
/// complete.
#[test]
fn converting_traces_or_datasets_to_the_python_layout_is_refused_by_name() {
    use crate::format_util::{sample_items, write_items};
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mlar");
    std::fs::write(
        &a,
        write_items(
            &sample_items(),
            mlflow_archive::format::WriterBuilder::new(),
        ),
    )
    .unwrap();
    let out = crate::util::cli()
        .arg("convert")
        .arg(&a)
        .arg(dir.path().join("tree"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("evaluation dataset d-0001") && err.contains("not supported yet"),
        "{err}"
    );
}

/// The convert matrix: archive → v2 tree → archive keeps every unit and field, for a rich
/// archive (two experiments, nesting across them, a deleted run, NaN and infinities, a 3 MiB file,
/// a logged model, a model named with a slash, versions with a gap, an empty model) and for every
/// fixture the Python tool wrote (tree → archive → tree → archive).
#[test]
fn convert_round_trips_between_archives_and_v2_trees() {
    use crate::format_util::{read_items, sample_items_1_0, write_items};
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mlar");
    std::fs::write(
        &a,
        write_items(
            &sample_items_1_0(),
            mlflow_archive::format::WriterBuilder::new(),
        ),
    )
    .unwrap();
    let tree = dir.path().join("tree");
    convert(&a, &tree);
    assert!(tree.join("manifest.json").is_file());
    assert!(tree.join("models/models.json").is_file());
    let b = dir.path().join("b.mlar");
    convert(&tree, &b);
    let read = |p: &std::path::Path| read_items(std::fs::File::open(p).unwrap()).unwrap();
    let (ua, ub) = (units(read(&a)), units(read(&b)));
    assert_eq!(ua.keys().collect::<Vec<_>>(), ub.keys().collect::<Vec<_>>());
    for (k, v) in &ua {
        assert_eq!(v, &ub[k], "{k}");
    }
    // The same through a zip of the tree.
    let z = dir.path().join("tree.zip");
    convert(&a, &z);
    let c = dir.path().join("c.mlar");
    convert(&z, &c);
    assert_eq!(ua, units(read(&c)), "archive → zip → archive");

    for kind in [
        "experiment",
        "model",
        "run",
        "all",
        "experiments",
        "models",
        "models/models",
    ] {
        let file = kind.replace('/', "-");
        let x = dir.path().join(format!("{file}-1.mlar"));
        convert(&fixture(kind), &x);
        let t = dir.path().join(format!("{file}-tree"));
        convert(&x, &t);
        let y = dir.path().join(format!("{file}-2.mlar"));
        convert(&t, &y);
        assert_eq!(units(read(&x)), units(read(&y)), "{kind}");
        // The tree has the shape the Python tool gave it.
        let top = match kind {
            "experiment" => "experiment.json",
            "model" => "model.json",
            "run" => "run.json",
            "experiments" => "experiments.json",
            _ => "manifest.json",
        };
        assert!(t.join(top).is_file(), "{kind}: no {top}");
    }
}

/// Issue 19: a model whose versions come from MLflow 3 logged models (`models:/m-…` sources), and a
/// run with the logged models it produced, written as a model tree (what `export-model -o DIR`
/// writes) and a run tree (`export-run -o DIR`): archive → tree → archive keeps every logged model
/// (read from the tree's `logged_models/`, which no file lists), with its experiment, its files
/// and the metric points linked to it; a zip of the tree too.
#[test]
fn model_and_run_trees_round_trip_the_logged_models_their_versions_come_from() {
    use crate::format_util::{Item, read_items, run, version, write_items};
    use mlflow_archive::format::model::{
        Experiment, LoggedModel, MetricChunk, Point, RegisteredModel, Tag,
    };
    // What such a tree can hold of an experiment: its id and name.
    let bare = |id: &str, name: &str| {
        Item::Experiment(Experiment {
            experiment_id: id.into(),
            name: name.into(),
            lifecycle_stage: "active".into(),
            ..Experiment::default()
        })
    };
    let logged = |id: &str, exp: &str, source: &str| {
        Item::LoggedModel(LoggedModel {
            model_id: id.into(),
            experiment_id: exp.into(),
            name: format!("clf {id}"),
            model_type: "sklearn".into(),
            source_run_id: source.into(),
            status: "LOGGED_MODEL_READY".into(),
            artifact_uri: format!("mlflow-artifacts:/{exp}/models/{id}/artifacts"),
            creation_timestamp: Some(1_700_000_000_000),
            last_updated_timestamp: Some(1_700_000_000_001),
            params: vec![Tag::new("C", "1")],
            tags: vec![Tag::new("mlflow.modelVersions", "[1]")],
            ..LoggedModel::default()
        })
    };
    let src = "aaaa0000000000000000000000000001";
    let linked = |model: &str| {
        Item::Chunk(MetricChunk {
            key: "accuracy".into(),
            model_id: Some(model.into()),
            points: vec![Point {
                step: 1,
                timestamp: 5,
                value: 0.9,
            }],
            ..MetricChunk::default()
        })
    };
    let from_logged = |n: u64, model: &str, run_id: &str| {
        let mut v = version(n, run_id);
        v.source = format!("models:/{model}");
        v.model_id = model.into();
        Item::Version(v)
    };
    let model_items = vec![
        bare("1", "team/one"),
        bare("2", "other"),
        Item::Run(run(src, "1", None)),
        linked("m-0001"),
        Item::Artifact("model/MLmodel".into(), b"flavors: {}\n".to_vec()),
        Item::EndUnit,
        logged("m-0001", "1", src),
        Item::Artifact("MLmodel".into(), b"flavors: {}\n".to_vec()),
        Item::EndUnit,
        // From another experiment, made by no run of the export.
        logged("m-0002", "2", ""),
        Item::Artifact("MLmodel".into(), b"artifact_path: x\n".to_vec()),
        Item::EndUnit,
        Item::Model(RegisteredModel {
            name: "from-logged-models".into(),
            ..RegisteredModel::default()
        }),
        Item::Version(version(1, src)),
        from_logged(2, "m-0001", src),
        from_logged(3, "m-0002", ""),
        Item::EndUnit,
    ];
    let run_items = vec![
        bare("1", "experiment 1"),
        Item::Run(run(src, "1", None)),
        linked("m-0001"),
        Item::EndUnit,
        logged("m-0001", "1", src),
        Item::Artifact("MLmodel".into(), b"flavors: {}\n".to_vec()),
        Item::EndUnit,
    ];
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &std::path::Path| read_items(std::fs::File::open(p).unwrap()).unwrap();
    for (shape, items, logged_models) in [("model", model_items, 2), ("run", run_items, 1)] {
        let a = dir.path().join(format!("{shape}.mlar"));
        std::fs::write(
            &a,
            write_items(&items, mlflow_archive::format::WriterBuilder::new()),
        )
        .unwrap();
        let want = units(read(&a));
        assert_eq!(
            want.keys()
                .filter(|k| k.starts_with("logged model"))
                .count(),
            logged_models
        );
        for out in [format!("{shape}-tree"), format!("{shape}-tree.zip")] {
            let tree = dir.path().join(&out);
            let o = assert_cmd::Command::cargo_bin("mlflow-archive")
                .unwrap()
                .args(["-q", "convert", "--shape", shape])
                .arg(&a)
                .arg(&tree)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let b = dir.path().join(format!("{out}.mlar"));
            convert(&tree, &b);
            let got = units(read(&b));
            assert_eq!(
                want.keys().collect::<Vec<_>>(),
                got.keys().collect::<Vec<_>>(),
                "{out}"
            );
            for (k, v) in &want {
                assert_eq!(v, &got[k], "{out}: {k}");
            }
        }
    }
}

/// Issue 12 item 9: registered models whose names map to one directory of a bulk tree
/// (`team\\model` and `team_model`; `Team_Model` on a file system that ignores case; names that
/// would stand where the tree has a file) each get a directory of their own, which `models.json`
/// lists: archive → tree (directory or zip) → archive keeps every model under its name.
#[test]
fn registered_models_whose_names_map_to_one_directory_all_round_trip() {
    use crate::format_util::{Item, read_items, run, version, write_items};
    use mlflow_archive::format::model::{Experiment, RegisteredModel};
    let src = "aaaa0000000000000000000000000001";
    let mut items = vec![
        Item::Experiment(Experiment {
            experiment_id: "1".into(),
            name: "e".into(),
            lifecycle_stage: "active".into(),
            ..Experiment::default()
        }),
        Item::Run(run(src, "1", None)),
        Item::EndUnit,
    ];
    let names = [
        "team\\model",
        "team_model",
        "Team_Model",
        "model.json",
        "models.json",
        "x/model.json",
    ];
    for (i, name) in names.iter().enumerate() {
        items.push(Item::Model(RegisteredModel {
            name: name.to_string(),
            description: format!("model {i}"),
            ..RegisteredModel::default()
        }));
        for n in 1..=i as u64 + 1 {
            items.push(Item::Version(version(n, src)));
        }
        items.push(Item::EndUnit);
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("all.mlar");
    std::fs::write(
        &a,
        write_items(&items, mlflow_archive::format::WriterBuilder::new()),
    )
    .unwrap();
    let read = |p: &std::path::Path| read_items(std::fs::File::open(p).unwrap()).unwrap();
    let want = units(read(&a));
    assert_eq!(
        want.keys().filter(|k| k.starts_with("model ")).count(),
        names.len()
    );
    for out in ["tree", "tree.zip"] {
        let t = dir.path().join(out);
        convert(&a, &t);
        if out == "tree" {
            let list: serde_json::Value =
                serde_json::from_slice(&std::fs::read(t.join("models/models.json")).unwrap())
                    .unwrap();
            let dirs: Vec<&str> = list["mlflow"]["models"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            let distinct: std::collections::BTreeSet<String> =
                dirs.iter().map(|d| d.to_lowercase()).collect();
            assert_eq!(distinct.len(), names.len(), "{dirs:?}");
            for d in &dirs {
                assert!(t.join("models").join(d).join("model.json").is_file(), "{d}");
            }
        }
        let b = dir.path().join(format!("{out}.mlar"));
        convert(&t, &b);
        let got = units(read(&b));
        assert_eq!(
            want.keys().collect::<Vec<_>>(),
            got.keys().collect::<Vec<_>>(),
            "{out}"
        );
        for (k, v) in &want {
            assert_eq!(v, &got[k], "{out}: {k}");
        }
    }
}

/// Zips each fixture `kinds` names (with a top directory, as people zip trees) into `dir`.
fn zip_fixtures(dir: &std::path::Path, kinds: &[&str]) {
    for kind in kinds {
        python_in(
            dir,
            &format!(
                r#"
import os, zipfile
root = {root:?}
with zipfile.ZipFile({name:?}, "w", zipfile.ZIP_DEFLATED) as z:
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            z.write(p, os.path.join("top", os.path.relpath(p, root)))
"#,
                root = fixture(kind).display().to_string(),
                name = format!("{}.zip", kind.replace('/', "-")),
            ),
        );
    }
}

/// The counts line `inspect` prints for `input`.
fn inspect_counts(input: &std::path::Path) -> String {
    let out = assert_cmd::Command::cargo_bin("mlflow-archive")
        .unwrap()
        .arg("inspect")
        .arg(input)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "inspect {}: {}",
        input.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find(|l| l.contains(" runs, "))
        .unwrap_or_else(|| panic!("no counts in: {stdout}"))
        .to_string()
}

/// The Python tool's bulk exports, as its users make them: `export-experiments --experiments all`
/// (`experiments.json` and `<id>/` at the top), `export-models --models all` (`manifest.json`,
/// `experiments/`, `models/`), and the `models/` of the latter on its own (`models.json` at the
/// top). Each is read, from its directory and from a zip of it, with everything it holds.
#[test]
fn the_python_tools_bulk_exports_are_read_from_directories_and_zips() {
    let dir = tempfile::tempdir().unwrap();
    let kinds = ["experiments", "models", "models/models"];
    zip_fixtures(dir.path(), &kinds);
    for (kind, want) in [
        (
            "experiments",
            "2 experiments, 4 runs, 84 metric points in 8 chunks, 12 artifacts (348 B), 0 logged models, 0 registered models with 0 versions, 0 prompts with 0 versions, 0 traces with 0 assessments, 0 evaluation datasets with 0 records",
        ),
        (
            "models",
            "1 experiments, 3 runs, 63 metric points in 6 chunks, 9 artifacts (264 B), 0 logged models, 1 registered models with 3 versions, 0 prompts with 0 versions, 0 traces with 0 assessments, 0 evaluation datasets with 0 records",
        ),
        (
            "models/models",
            "0 experiments, 0 runs, 0 metric points in 0 chunks, 0 artifacts (0 B), 0 logged models, 1 registered models with 3 versions, 0 prompts with 0 versions, 0 traces with 0 assessments, 0 evaluation datasets with 0 records",
        ),
    ] {
        assert_eq!(inspect_counts(&fixture(kind)), want, "{kind}");
        let zip = dir.path().join(format!("{}.zip", kind.replace('/', "-")));
        assert_eq!(inspect_counts(&zip), want, "{kind}, zipped");
    }
}

/// `import-experiment-list -i D` of `export-experiments`' output imports every experiment it lists,
/// with what the Python tool's own `import-experiments` gives; from a zip of it too.
#[tokio::test]
async fn an_export_experiments_tree_imports_as_the_python_tools_import_experiments_imports_it() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let dir = tempfile::tempdir().unwrap();
    zip_fixtures(dir.path(), &["experiments"]);
    let prefix = unique("bulk-top");
    for (input, p) in [
        (fixture("experiments"), format!("{prefix}/dir/")),
        (dir.path().join("experiments.zip"), format!("{prefix}/zip/")),
    ] {
        let mut cmd = cli();
        cmd.args(["import-experiment-list", "--dst-uri", &pair.dst.uri, "-i"])
            .arg(&input)
            .args(["--experiment-name-prefix", &p, "--use-src-user-id"]);
        let out = output(cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{}: {stderr}", input.display());
        assert!(stderr.contains("4 runs imported"), "{stderr}");
    }
    // The Python tool imports under the names experiments.json gives: a copy with new names.
    let copy = scratch_copy("experiments");
    let tree = copy.path().join("t");
    let list = tree.join("experiments.json");
    let mut doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    for e in doc["mlflow"]["experiments"].as_array_mut().unwrap() {
        let name = format!("{prefix}/python/{}", e["name"].as_str().unwrap());
        e["name"] = name.into();
    }
    std::fs::write(&list, serde_json::to_vec(&doc).unwrap()).unwrap();
    python_import(
        &pair.dst.uri,
        &tree,
        &["import-experiments", "--use-src-user-id", "True"],
    )
    .await;

    let theirs = observe(&dst, &format!("{prefix}/python/fixture/wine"), None).await;
    assert_eq!(theirs.runs.len(), 4);
    for how in ["dir", "zip"] {
        let ours = observe(&dst, &format!("{prefix}/{how}/fixture/wine"), None).await;
        assert_eq!(comparable(&ours.runs), comparable(&theirs.runs), "{how}");
        assert_eq!(ours.experiment_tags, theirs.experiment_tags, "{how}");
        assert!(
            dst.get_experiment_by_name(&format!("{prefix}/{how}/Default"))
                .await
                .unwrap()
                .is_some(),
            "{how}: the empty Default experiment is listed too"
        );
    }
}

/// `export-experiment-list -o DIR` writes what `export-experiments` writes (`experiments.json`,
/// `<id>/experiment.json`, `<id>/<run_id>/`): the Python tool's `import-experiments` reads it, and
/// so does mlflow-archive, to the same runs.
#[tokio::test]
async fn export_experiment_list_to_a_directory_writes_the_export_experiments_layout() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let (a, b) = (
        crate::roundtrip::populate(&src).await,
        crate::roundtrip::populate(&src).await,
    );
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("list");
    let mut cmd = cli();
    cmd.args([
        "export-experiment-list",
        "--src-uri",
        &pair.src.uri,
        "--experiments",
        &format!("{a},{b}"),
        "--output-dir",
    ])
    .arg(&tree);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.join("experiments.json").is_file());
    assert!(!tree.join("manifest.json").exists());
    let ids: Vec<String> = {
        let doc: serde_json::Value =
            serde_json::from_slice(&std::fs::read(tree.join("experiments.json")).unwrap()).unwrap();
        doc["mlflow"]["experiments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(ids.len(), 2);
    for id in &ids {
        assert!(tree.join(id).join("experiment.json").is_file(), "{id}");
    }

    // The Python tool imports it under the source names (unique on the destination).
    python_import(
        &pair.dst.uri,
        &tree,
        &["import-experiments", "--use-src-user-id", "True"],
    )
    .await;
    let prefix = unique("ours");
    let mut cmd = cli();
    cmd.args(["import-experiment-list", "--dst-uri", &pair.dst.uri, "-i"])
        .arg(&tree)
        .args([
            "--experiment-name-prefix",
            &format!("{prefix}/"),
            "--use-src-user-id",
        ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for name in [&a, &b] {
        let theirs = observe(&dst, name, None).await;
        let ours = observe(&dst, &format!("{prefix}/{name}"), None).await;
        assert_eq!(theirs.runs.len(), 3, "{name}: its active runs");
        // The runs' user is in their tags only (the REST API's create-run left user_id empty),
        // and the Python tool takes user_id: the user is left out of the comparison.
        let (mut ours, mut theirs) = (ours.runs, theirs.runs);
        for r in ours.values_mut().chain(theirs.values_mut()) {
            r.tags.remove("mlflow.user");
        }
        assert_eq!(comparable(&ours), comparable(&theirs), "{name}");
    }
}

/// The other direction: a tree mlflow-archive writes in the v2 layout is one the Python tool's
/// `import-experiment` reads, with the same result as from the tree the tool itself wrote.
#[tokio::test]
async fn a_v2_tree_written_by_mlflow_archive_imports_with_the_python_tool() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.mlar");
    convert(&fixture("experiment"), &a);
    let ours = dir.path().join("tree");
    convert(&a, &ours);
    let (from_theirs, from_ours) = (unique("py-from-py"), unique("py-from-ours"));
    for (tree, name) in [
        (fixture("experiment"), &from_theirs),
        (ours.clone(), &from_ours),
    ] {
        python_import(
            &pair.dst.uri,
            &tree,
            &["import-experiment", "--experiment-name", name],
        )
        .await;
    }
    let a = observe(&dst, &from_theirs, None).await;
    let b = observe(&dst, &from_ours, None).await;
    assert_eq!(a.runs.len(), 4);
    assert_eq!(comparable(&a.runs), comparable(&b.runs));
    assert_eq!(a.experiment_tags, b.experiment_tags);
}

/// `export-experiment -o DIR` writes the Python tool's layout directly (nothing staged), and that
/// tree imports back with mlflow-archive to the same runs.
#[tokio::test]
async fn export_to_a_directory_writes_the_v2_layout_and_it_imports_back() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let name = crate::roundtrip::populate(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("exported");
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &name,
        "--export-deleted-runs",
        "-o",
    ])
    .arg(&tree);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.join("experiment.json").is_file());
    assert!(!dir.path().join("exported.partial").exists());

    // Into a directory that is not empty: refused before anything is read.
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &name,
        "-o",
    ])
    .arg(&tree);
    let out = output(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an empty directory"));

    // -o x.zip: the same tree, zipped as it streams.
    let zipped = dir.path().join("exported.zip");
    let mut cmd = cli();
    cmd.args([
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &name,
        "--export-deleted-runs",
        "-o",
    ])
    .arg(&zipped);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_zip = unique("from-zip");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--use-src-user-id",
        "-i",
    ])
    .arg(&zipped)
    .args(["--experiment-name", &from_zip]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let target = unique("from-tree");
    let mut cmd = cli();
    cmd.args([
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--use-src-user-id",
        "-i",
    ])
    .arg(&tree)
    .args(["--experiment-name", &target]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let a = observe(&src, &name, None).await;
    let b = observe(&dst, &target, None).await;
    assert_eq!(a.runs.len(), 4);
    let z = observe(&dst, &from_zip, None).await;
    assert!(
        z.runs == b.runs,
        "the zipped export imports like the directory"
    );
    for (run, r) in &a.runs {
        let o = &b.runs[run];
        assert_eq!(
            (
                &r.status,
                r.start_time,
                r.end_time,
                &r.lifecycle_stage,
                &r.params,
                &r.tags
            ),
            (
                &o.status,
                o.start_time,
                o.end_time,
                &o.lifecycle_stage,
                &o.params,
                &o.tags
            ),
            "{run}"
        );
        assert!(r.histories == o.histories, "{run}: histories");
        assert!(r.artifacts == o.artifacts, "{run}: artifacts");
    }
}

/// The older generations: a classic (2020-2021) experiment, export list and model, and the 1.1.x
/// files, all read as they are (hand-written per the tool's code of the time; see
/// tests/data/legacy/classic/README.md). A classic run keeps one value per metric, with no time:
/// it arrives at step 0, at the run's end time.
#[tokio::test]
async fn classic_and_1_1_trees_import_with_what_they_hold() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let classic = |k: &str| repo_root().join("tests/data/legacy/classic").join(k);
    let import = |cmd_name: &'static str, tree: std::path::PathBuf, extra: Vec<String>| {
        let uri = pair.dst.uri.clone();
        async move {
            let mut cmd = cli();
            cmd.args([cmd_name, "--dst-uri", &uri, "--use-src-user-id", "-i"])
                .arg(&tree)
                .args(&extra);
            let out = output(cmd).await;
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(out.status.success(), "{}: {stderr}", tree.display());
            stderr
        }
    };
    let e = unique("classic");
    import(
        "import-experiment",
        classic("experiment"),
        vec!["--experiment-name".into(), e.clone()],
    )
    .await;
    let got = observe(&dst, &e, None).await;
    let child = &got.runs["child"];
    assert_eq!(child.status, "FAILED");
    assert_eq!(child.start_time, Some(1_563_572_639_001));
    assert_eq!(child.end_time, Some(1_563_572_645_001));
    assert_eq!(child.tags["mlflow.parentRunId"], "<parent>");
    assert_eq!(child.tags["mlflow.user"], "andre");
    assert_eq!(child.params["max_depth"], "17");
    assert_eq!(
        child.histories["r2"],
        [(0, 1_563_572_645_001, 0)],
        "NaN, at the end time"
    );
    assert_eq!(
        child.histories["mae"],
        [(0, 1_563_572_645_001, 1.5845562996214364f64.to_bits())]
    );
    assert_eq!(
        child.artifacts["sklearn-model/MLmodel"],
        b"artifact_path: sklearn-model\nflavors: {}\nrun_id: <child>\n"
    );

    let prefix = unique("classic-list");
    import(
        "import-experiment-list",
        classic("list"),
        vec!["--experiment-name-prefix".into(), format!("{prefix}/")],
    )
    .await;
    let got = observe(&dst, &format!("{prefix}/sklearn_wine"), None).await;
    assert_eq!(got.runs.len(), 1);

    let (m, me) = (unique("classic-model"), unique("classic-model-runs"));
    import(
        "import-model",
        classic("model"),
        vec![
            "--model".into(),
            m.clone(),
            "--experiment-name".into(),
            me.clone(),
        ],
    )
    .await;
    let got = observe(&dst, &me, Some(&m)).await;
    assert_eq!(got.model_description, "hi my desc");
    assert_eq!(got.model_tags["k"], "v");
    let v = &got.versions[&1];
    assert_eq!(
        (v.stage.as_str(), v.run.as_str()),
        ("Production", "<parent>")
    );

    let i = unique("intermediate");
    import(
        "import-experiment",
        classic("intermediate"),
        vec!["--experiment-name".into(), i.clone()],
    )
    .await;
    let got = observe(&dst, &i, None).await;
    let r = &got.runs["intermediate"];
    assert_eq!(r.histories["rmse"].len(), 3);
    // +Infinity comes back as f64::MAX: the sqlite store's limit (README, "What is not carried").
    assert_eq!(r.histories["rmse"][2].2, f64::MAX.to_bits());
    assert_eq!(r.end_time, Some(1_668_938_460_000));
}

/// Runs a Python snippet (the system's python3) in `dir`, to build zips the way other tools do.
fn python_in(dir: &std::path::Path, code: &str) {
    let status = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "{code}");
}

/// Zips: a tree zipped (with its top directory) imports like the directory; names that leave
/// the tree, duplicate names and an entry longer than the zip says are refused with the entry named.
#[tokio::test]
async fn zipped_trees_import_like_directories_and_bad_zips_are_refused() {
    let pair = live_pair!();
    let dst = client(&pair.dst.uri);
    let dir = tempfile::tempdir().unwrap();
    let tree = fixture("experiment");
    python_in(
        dir.path(),
        &format!(
            r#"
import os, zipfile
root = {root:?}
with zipfile.ZipFile("exp.zip", "w", zipfile.ZIP_DEFLATED) as z:
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            z.write(p, os.path.join("experiment", os.path.relpath(p, root)))
with zipfile.ZipFile("slip.zip", "w") as z:
    z.writestr("run.json", "{{}}")
    z.writestr("artifacts/../../evil.txt", "x")
import warnings
warnings.simplefilter("ignore")
with zipfile.ZipFile("dup.zip", "w") as z:
    z.writestr("run.json", "{{}}")
    z.writestr("run.json", "{{}}")
import struct
with zipfile.ZipFile("lie.zip", "w") as z:
    z.writestr("run.json", '{{"mlflow": {{"info": {{"run_id": "r", "experiment_id": "1"}}}}}}')
    z.writestr("artifacts/a.txt", "hello world")
d = bytearray(open("lie.zip", "rb").read())
i = d.find(b"PK\x01\x02", d.find(b"PK\x01\x02") + 1)
struct.pack_into("<I", d, i + 24, 5)
open("lie.zip", "wb").write(d)
"#,
            root = tree.display().to_string()
        ),
    );
    let (from_dir, from_zip) = (unique("zip-dir"), unique("zip-zip"));
    for (input, name) in [
        (tree.clone(), &from_dir),
        (dir.path().join("exp.zip"), &from_zip),
    ] {
        let mut cmd = cli();
        cmd.args(["import-experiment", "--dst-uri", &pair.dst.uri, "-i"])
            .arg(&input)
            .args(["--experiment-name", name]);
        let out = output(cmd).await;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let a = observe(&dst, &from_dir, None).await;
    let b = observe(&dst, &from_zip, None).await;
    assert_eq!(a.runs.len(), 4);
    assert!(a.runs == b.runs, "a zipped tree imports like the directory");

    inspect_fails(
        &dir.path().join("slip.zip"),
        &["evil.txt", "could leave the tree"],
    );
    inspect_fails(&dir.path().join("dup.zip"), &["appears twice"]);
    inspect_fails(
        &dir.path().join("lie.zip"),
        &["a.txt", "longer than the zip says"],
    );
}

/// The classic layout as output: what it can hold round-trips (the classic fixtures: tree →
/// archive → classic tree → archive); what it cannot (histories, here) stops the conversion with
/// the object named, unless --allow-lossy, which lists every object it dropped.
#[test]
fn classic_output_round_trips_what_it_holds_and_refuses_silent_loss() {
    use crate::format_util::read_items;
    let dir = tempfile::tempdir().unwrap();
    let read = |p: &std::path::Path| read_items(std::fs::File::open(p).unwrap()).unwrap();
    let run = |args: &[&std::ffi::OsStr]| {
        assert_cmd::Command::cargo_bin("mlflow-archive")
            .unwrap()
            .args(args)
            .output()
            .unwrap()
    };
    for kind in ["experiment", "model", "list"] {
        let a = dir.path().join(format!("classic-{kind}.mlar"));
        convert(
            &repo_root().join("tests/data/legacy/classic").join(kind),
            &a,
        );
        for out in [format!("classic-{kind}"), format!("classic-{kind}.zip")] {
            let t = dir.path().join(&out);
            let o = run(&[
                "convert".as_ref(),
                a.as_os_str(),
                t.as_os_str(),
                "--layout".as_ref(),
                "classic".as_ref(),
            ]);
            assert!(
                o.status.success(),
                "{kind}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let b = dir.path().join(format!("{out}.mlar"));
            convert(&t, &b);
            assert_eq!(units(read(&a)), units(read(&b)), "{out}");
        }
    }

    let v2 = dir.path().join("v2.mlar");
    convert(&fixture("experiment"), &v2);
    let refused = dir.path().join("refused");
    let o = run(&[
        "convert".as_ref(),
        v2.as_os_str(),
        refused.as_os_str(),
        "--layout".as_ref(),
        "classic".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot hold run")
            && stderr.contains("metric \"loss\"")
            && stderr.contains("--allow-lossy"),
        "{stderr}"
    );
    assert!(!refused.exists() && !dir.path().join("refused.partial").exists());

    let lossy = dir.path().join("lossy");
    let o = run(&[
        "convert".as_ref(),
        v2.as_os_str(),
        lossy.as_os_str(),
        "--layout".as_ref(),
        "classic".as_ref(),
        "--allow-lossy".as_ref(),
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(
        stderr
            .matches("dropped (the classic layout cannot hold it): run")
            .count(),
        4,
        "one line per run's history: {stderr}"
    );
    assert!(lossy.join("manifest.json").is_file());
}

/// The Python tool's `import-model` reads each version's source as a local path, so it works only
/// against a server whose artifact root is local to it (not one that serves artifacts). On such a
/// server, importing the model tree mlflow-archive writes gives what importing the tool's own tree
/// gives: every version's description, stage and tags, and every run's params, tags and history,
/// read back with MLflow's Python client.
#[tokio::test]
async fn a_v2_model_tree_written_by_mlflow_archive_imports_with_the_python_tools_import_model() {
    let Some(server) = tokio::task::spawn_blocking(|| {
        crate::util::server::MlflowServer::start_without_artifact_proxy("py-model")
    })
    .await
    .unwrap() else {
        assert!(!crate::util::server::required(), "CI=true needs MLflow");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("m.mlar");
    convert(&fixture("model"), &a);
    let ours = dir.path().join("ours");
    convert(&a, &ours);
    assert!(ours.join("model.json").is_file());
    for (tree, model, exp) in [
        (fixture("model"), "from-python", "runs-from-python"),
        (ours.clone(), "from-ours", "runs-from-ours"),
    ] {
        python_import(
            &server.uri,
            &tree,
            &["import-model", "--model", model, "--experiment-name", exp],
        )
        .await;
    }
    let server_uri = server.uri.clone();
    let dump = move |model: &'static str| {
        let venv = venv().unwrap();
        let uri = server_uri.clone();
        let code = format!(
            r#"
import json, mlflow
c = mlflow.MlflowClient()
out = []
for v in sorted(c.search_model_versions("name='{model}'"), key=lambda v: int(v.version)):
    r = c.get_run(v.run_id)
    hist = {{k: [(m.step, m.timestamp, m.value) for m in c.get_metric_history(r.info.run_id, k)] for k in r.data.metrics}}
    tags = {{k: x for k, x in r.data.tags.items() if not k.startswith("mlflow.") and not k.startswith("mlflow_")}}
    out.append([v.description, v.current_stage, v.tags, r.info.run_name, r.data.params, tags, {{k: sorted(h) for k, h in hist.items()}}])
print(json.dumps(out, sort_keys=True))
"#
        );
        let out = std::process::Command::new(venv.join("bin/python"))
            .arg("-c")
            .arg(code)
            .env("MLFLOW_TRACKING_URI", uri)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let (theirs, ours) =
        tokio::task::spawn_blocking(move || (dump("from-python"), dump("from-ours")))
            .await
            .unwrap();
    assert!(theirs.contains("build 3"), "{theirs}");
    assert_eq!(theirs, ours);
}
