//! The matcher on prints made from hand-written events: what makes two objects equal across a
//! migration (ids mapped through lineage, histories in any order, rewritten `MLmodel` lines and
//! version sources) and what makes them differ.

use bytes::Bytes;

use super::*;
use crate::format::ArtifactEntry;
use crate::format::Record;
use crate::format::model::{self as rec, MetricChunk, Point, Tag};
use crate::format::path::UnitId;
use crate::format::validate::Sealed;

fn sealed(unit: UnitId) -> Event {
    Event::Record(Record::Sealed(Sealed {
        unit,
        members: 0,
        bytes: 0,
    }))
}

fn experiment(id: &str) -> Vec<Event> {
    experiment_named(id, "e")
}

fn experiment_named(id: &str, name: &str) -> Vec<Event> {
    vec![
        Event::Record(Record::Experiment(rec::Experiment {
            experiment_id: id.into(),
            name: name.into(),
            ..rec::Experiment::default()
        })),
        sealed(UnitId::Experiment(id.into())),
    ]
}

fn file(unit: UnitId, path: &str, body: &str) -> Vec<Event> {
    vec![
        Event::Artifact(ArtifactEntry {
            unit,
            path: path.into(),
            size: body.len() as u64,
        }),
        Event::Body(Bytes::from(body.to_string())),
        Event::ArtifactEnd,
    ]
}

/// A run `id` in experiment `exp` (root `…/<id>/artifacts`), child of `parent`, with `tags`, the
/// points `points` of `loss` (in that order) and an `MLmodel` naming it.
fn run(
    id: &str,
    exp: &str,
    parent: Option<&str>,
    tags: &[(&str, &str)],
    points: &[i64],
) -> Vec<Event> {
    let mut t: Vec<Tag> = tags.iter().map(|(k, v)| Tag::new(*k, *v)).collect();
    if let Some(p) = parent {
        t.push(Tag::new("mlflow.parentRunId", p));
    }
    let root = format!("mlflow-artifacts:/{exp}/{id}/artifacts");
    let mut ev = vec![
        Event::Record(Record::Run(rec::Run {
            run_id: id.into(),
            experiment_id: exp.into(),
            run_name: "r".into(),
            status: "FINISHED".into(),
            artifact_uri: root,
            params: vec![Tag::new("lr", "0.1")],
            tags: t,
            ..rec::Run::default()
        })),
        Event::Record(Record::MetricChunk(MetricChunk {
            key: "loss".into(),
            points: points
                .iter()
                .map(|&s| Point {
                    step: s,
                    timestamp: 1000 + s,
                    value: s as f64 / 2.0,
                })
                .collect(),
            ..MetricChunk::default()
        })),
    ];
    let unit = UnitId::Run(id.into());
    ev.extend(file(
        unit.clone(),
        "model/MLmodel",
        &format!("artifact_path: model\nflavors: {{}}\nrun_id: {id}\n"),
    ));
    ev.extend(file(unit.clone(), "data.txt", "abc"));
    ev.push(sealed(unit));
    ev
}

fn model(versions: &[(u64, &str, &str, Option<u64>)]) -> Vec<Event> {
    model_named("m", versions)
}

fn model_named(name: &str, versions: &[(u64, &str, &str, Option<u64>)]) -> Vec<Event> {
    let mut ev = vec![Event::Record(Record::RegisteredModel(
        rec::RegisteredModel {
            name: name.into(),
            aliases: vec![rec::Alias {
                alias: "champion".into(),
                version: versions[0].0,
            }],
            ..rec::RegisteredModel::default()
        },
    ))];
    for (n, source, run, lineage) in versions {
        ev.push(Event::Record(Record::ModelVersion(rec::ModelVersion {
            version: *n,
            source: source.to_string(),
            run_id: run.to_string(),
            tags: lineage
                .map(|l| vec![Tag::new(LINEAGE_VERSION, l.to_string())])
                .unwrap_or_default(),
            ..rec::ModelVersion::default()
        })));
    }
    ev.push(sealed(UnitId::Model(0)));
    ev
}

use crate::transfer::import::{LINEAGE_RUN, LINEAGE_VERSION};

fn matcher() -> Matcher {
    Matcher::new(CompareOptions::default(), true)
}

fn feed(m: &mut Matcher, end: End, events: Vec<Event>) {
    for e in events {
        m.event(end, e);
    }
}

/// A source with a parent and a child run and a model whose versions point at them (by
/// `runs:/` and by a location in the child's root), against its import: new ids, lineage
/// tags, the child's points in another order, and `changes` applied to the destination's child.
fn migrated(child_points: &[i64], child_data: &str) -> CompareReport {
    let mut m = matcher();
    let mut src = experiment("1");
    src.extend(run("a", "1", None, &[], &[0, 1, 2]));
    src.extend(run("b", "1", Some("a"), &[], &[0, 1, 2]));
    src.extend(model(&[
        (1, "runs:/a/model", "a", None),
        (3, "mlflow-artifacts:/1/b/artifacts/model", "b", None),
    ]));
    feed(&mut m, End::Src, src);
    let mut dst = experiment("7");
    // The child arrives first at the destination: its parent's id is learnt later.
    let mut child = run(
        "y",
        "7",
        Some("x"),
        &[(LINEAGE_RUN, "b"), ("mlflow_archive.import", "complete")],
        child_points,
    );
    if let Some(Event::Body(b)) = child.iter_mut().rev().find(|e| matches!(e, Event::Body(_))) {
        *b = Bytes::from(child_data.to_string());
    }
    dst.extend(child);
    dst.extend(run("x", "7", None, &[(LINEAGE_RUN, "a")], &[0, 1, 2]));
    dst.extend(model(&[
        (1, "runs:/x/model", "x", Some(1)),
        (2, "mlflow-artifacts:/7/y/artifacts/model", "y", Some(3)),
    ]));
    feed(&mut m, End::Dst, dst);
    m.finish()
}

#[test]
fn a_migrated_server_is_equal_whatever_its_ids_and_the_order_of_its_points() {
    let r = migrated(&[2, 0, 1], "abc");
    assert!(r.is_equal(), "{r:#?}");
    assert_eq!(r.kinds["runs"].equal, 2);
    assert_eq!(r.kinds["model versions"].equal, 2);
    assert_eq!(
        r.kinds["registered models"].equal, 1,
        "the alias maps to the source number"
    );
    assert_eq!(r.kinds["experiments"].equal, 1);
}

/// An import under `--experiment-name-prefix p/` and `--model-name-map m=m2`, next to an
/// experiment and a model of the source's names that it did not make; compared with `renames`.
fn renamed(renames: Renames) -> CompareReport {
    let mut m = Matcher::new(
        CompareOptions {
            renames,
            ..CompareOptions::default()
        },
        true,
    );
    let mut src = experiment_named("1", "e");
    src.extend(run("a", "1", None, &[], &[0, 1]));
    src.extend(model_named("m", &[(1, "runs:/a/model", "a", None)]));
    feed(&mut m, End::Src, src);
    let mut dst = experiment_named("7", "p/e");
    dst.extend(run("x", "7", None, &[(LINEAGE_RUN, "a")], &[0, 1]));
    dst.extend(experiment_named("8", "e"));
    dst.extend(model_named("m2", &[(1, "runs:/x/model", "x", Some(1))]));
    dst.extend(model_named("m", &[(1, "runs:/x/model", "x", Some(1))]));
    feed(&mut m, End::Dst, dst);
    m.finish()
}

#[test]
fn destination_names_the_import_gave_are_read_in_the_sources_terms() {
    let r = renamed(Renames {
        experiment_prefix: Some("p/".into()),
        models: ModelNames {
            map: [("m".to_string(), "m2".to_string())].into(),
            ..ModelNames::default()
        },
        ..Renames::default()
    });
    let counts = |kind: &str| {
        let c = &r.kinds[kind];
        (c.equal, c.missing, c.extra, c.different)
    };
    assert_eq!(counts("experiments"), (1, 0, 1, 0), "{r:#?}");
    assert_eq!(counts("runs"), (1, 0, 0, 0), "{r:#?}");
    assert_eq!(counts("registered models"), (1, 0, 1, 0), "{r:#?}");
    assert_eq!(counts("model versions"), (1, 0, 1, 0), "{r:#?}");
    // The objects of the source's names that the import did not make are extra, named as
    // what they are.
    let extra: Vec<&str> = r
        .differences
        .iter()
        .filter(|d| d.what == "extra")
        .map(|d| d.object.as_str())
        .collect();
    assert!(
        extra.contains(&"experiment \"e (not under the import's prefix)\""),
        "{extra:?}"
    );
    assert!(
        extra.contains(&"registered model \"m (not a name the import gave)\""),
        "{extra:?}"
    );
    // Without the names, the renamed objects are missing and extra.
    let plain = renamed(Renames::default());
    assert!(!plain.is_equal());
    assert_eq!(plain.kinds["experiments"].extra, 1, "{plain:#?}");
    assert_eq!(plain.kinds["registered models"].extra, 1, "{plain:#?}");
}

#[test]
fn model_names_follow_the_imports_rules_for_the_destinations_registry() {
    let map = ModelNames::parse(&["m=Main.Dev.M2".to_string()], None).unwrap();
    let uc = Renames {
        models: map.clone(),
        registry: RegistryKind::UnityCatalog,
        ..Renames::default()
    };
    // Unity Catalog keeps the import's names in lower case, mapped or not.
    assert_eq!(uc.dst_model("m"), "main.dev.m2");
    assert_eq!(uc.dst_model("Cat.Sch.Wine"), "cat.sch.wine");
    assert_eq!(uc.model("main.dev.m2").as_deref(), Some("m"));
    assert_eq!(uc.model("m"), None, "a source name mapped to another");
    // A name the import would refuse (two levels) stays as it is: missing at the destination.
    assert_eq!(uc.dst_model("two.levels"), "two.levels");
    // MLflow's own registry keeps the mapping's case.
    let oss = Renames {
        models: map,
        ..Renames::default()
    };
    assert_eq!(oss.dst_model("m"), "Main.Dev.M2");
    assert_eq!(oss.model("Main.Dev.M2").as_deref(), Some("m"));
    assert_eq!(oss.model("main.dev.m2").as_deref(), Some("main.dev.m2"));
}

#[test]
fn under_a_prefix_the_destinations_own_default_experiment_is_left_out() {
    // "De" strips "Default" to "fault": the server's own Default is still not the import's.
    let mut m = Matcher::new(
        CompareOptions {
            renames: Renames {
                experiment_prefix: Some("De".into()),
                ..Renames::default()
            },
            ..CompareOptions::default()
        },
        true,
    );
    feed(&mut m, End::Src, experiment_named("0", "Default"));
    let mut dst = experiment_named("0", "Default");
    dst.extend(experiment_named("5", "DeDefault"));
    feed(&mut m, End::Dst, dst);
    let r = m.finish();
    assert!(r.is_equal(), "{r:#?}");
    assert_eq!(r.kinds["experiments"].equal, 1);
}

#[test]
fn a_changed_point_and_a_changed_file_are_named_with_the_source_run() {
    let r = migrated(&[0, 1, 3], "abd");
    assert!(!r.is_equal());
    assert_eq!(r.kinds["runs"].different, 1, "{r:#?}");
    let d = &r.differences[0];
    assert!(
        d.object.starts_with("run b ") && d.object.contains("destination: y"),
        "{d:?}"
    );
    let fields: Vec<&str> = d.fields.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(fields, ["file data.txt", "metric loss"]);
}

#[test]
fn an_object_on_one_side_only_is_missing_or_extra() {
    let mut m = matcher();
    let mut src = experiment("1");
    src.extend(run("a", "1", None, &[], &[0]));
    feed(&mut m, End::Src, src);
    let mut dst = experiment("7");
    // A run no import made, and one of another source's run.
    dst.extend(run("z", "7", None, &[], &[0]));
    dst.extend(run("w", "7", None, &[(LINEAGE_RUN, "q")], &[0]));
    feed(&mut m, End::Dst, dst);
    let r = m.finish();
    assert_eq!(
        r.kinds["runs"],
        Counts {
            equal: 0,
            missing: 1,
            extra: 2,
            different: 0
        }
    );
    let what: Vec<(&str, &str)> = r
        .differences
        .iter()
        .map(|d| (d.what, d.object.as_str()))
        .collect();
    assert!(what.contains(&("missing", "run a (\"r\")")), "{what:?}");
    assert!(
        what.iter()
            .any(|(w, o)| *w == "extra" && o.starts_with("run z")),
        "{what:?}"
    );
}

#[test]
fn destination_objects_outside_what_an_archive_holds_are_not_extra() {
    let mut m = Matcher::new(CompareOptions::default(), false);
    let mut src = experiment("1");
    src.extend(run("a", "1", None, &[], &[0]));
    feed(&mut m, End::Src, src);
    let mut dst = experiment("7");
    dst.extend(run("x", "7", None, &[(LINEAGE_RUN, "a")], &[0]));
    let mut other = vec![Event::Record(Record::Experiment(rec::Experiment {
        experiment_id: "8".into(),
        name: "other".into(),
        ..rec::Experiment::default()
    }))];
    other.push(sealed(UnitId::Experiment("8".into())));
    other.extend(run("o", "8", None, &[], &[0]));
    dst.extend(other);
    feed(&mut m, End::Dst, dst);
    let r = m.finish();
    assert!(r.is_equal(), "{r:#?}");
    assert_eq!(r.outside_scope, 2, "the other experiment and its run");
}

#[test]
fn a_half_imported_run_differs_in_its_import_state_and_an_abandoned_one_is_left_out() {
    let mut m = matcher();
    let mut src = experiment("1");
    src.extend(run("a", "1", None, &[], &[0]));
    feed(&mut m, End::Src, src);
    let mut dst = experiment("7");
    dst.extend(run(
        "g",
        "7",
        None,
        &[(LINEAGE_RUN, "a"), ("mlflow_archive.abandoned", "x")],
        &[0],
    ));
    dst.extend(run(
        "x",
        "7",
        None,
        &[(LINEAGE_RUN, "a"), ("mlflow_archive.import", "in-progress")],
        &[0],
    ));
    feed(&mut m, End::Dst, dst);
    let r = m.finish();
    assert_eq!(r.kinds["runs"].different, 1, "{r:#?}");
    assert_eq!(
        r.kinds["runs"].extra, 0,
        "the abandoned run is not counted: {r:#?}"
    );
    let f = &r.differences[0].fields[0];
    assert_eq!(
        (f.field.as_str(), f.destination.as_deref()),
        ("import", Some("in-progress"))
    );
}

fn source_of(events: Vec<Result<Event>>) -> ArchiveSource {
    let (tx, rx) = tokio::sync::mpsc::channel(events.len().max(1));
    for e in events {
        tx.try_send(e).unwrap();
    }
    ArchiveSource::from_receiver(rx)
}

#[tokio::test]
async fn sides_in_opposite_orders_are_read_to_the_end_and_matched() {
    // With a lag of 1, each side soon holds more than the lag: both are read on regardless.
    let m = Matcher::new(
        CompareOptions {
            lag: 1,
            ..CompareOptions::default()
        },
        true,
    );
    let mut src = experiment("1");
    let mut dst = experiment("7");
    for i in 0..6 {
        src.extend(run(&format!("a{i}"), "1", None, &[], &[0]));
        let lineage = format!("a{}", 5 - i);
        dst.extend(run(
            &format!("x{i}"),
            "7",
            None,
            &[(LINEAGE_RUN, &lineage)],
            &[0],
        ));
    }
    let a = source_of(src.into_iter().map(Ok).collect());
    let b = source_of(dst.into_iter().map(Ok).collect());
    let r = m.run(a, b).await.unwrap();
    assert_eq!(r.kinds["runs"].equal, 6, "{r:#?}");
    assert!(r.is_equal());
}

#[tokio::test]
async fn a_side_that_cannot_be_read_fails_the_comparison_naming_the_side() {
    let a = source_of(experiment("1").into_iter().map(Ok).collect());
    let b = source_of(vec![Err(Error::Input("truncated archive".into()))]);
    let e = matcher().run(a, b).await.unwrap_err().to_string();
    assert!(
        e.contains("reading the destination") && e.contains("truncated archive"),
        "{e}"
    );
}

#[test]
fn mlmodel_lines_an_import_rewrites_are_compared_in_the_sources_terms() {
    let ids = print::Ids::default();
    let src =
        "artifact_path: s3://a/1/r1/artifacts/model\nflavors: {}\nrun_id: r1\nmodel_id: m-1\n";
    let dst = "artifact_path: mlflow-artifacts:/2/r9/artifacts/model\nflavors: {}\nrun_id: r9\nmodel_id: m-1\n";
    let (src_root, dst_root) = ("s3://a/1/r1/artifacts", "mlflow-artifacts:/2/r9/artifacts");
    let norm = |text: &str, role, own, root| {
        print::normalize_mlmodel(text.as_bytes(), role, &ids, own, root)
    };
    let a = norm(src, Role::Source, "r1", src_root);
    assert_eq!(a, norm(dst, Role::Destination, "r9", dst_root));
    let changed = dst.replace("flavors: {}", "flavors: {x: 1}");
    assert_ne!(
        a,
        norm(&changed, Role::Destination, "r9", dst_root),
        "the other lines are compared"
    );
    // A copy whose location still points at the source's store is not the same.
    let stale = dst.replace("mlflow-artifacts:/2/r9", "s3://a/1/r1");
    assert_ne!(
        a,
        norm(&stale, Role::Destination, "r9", dst_root),
        "the location is compared"
    );
}

#[test]
fn a_file_is_equal_by_its_digest_whatever_its_summary_says() {
    assert_eq!(
        Val::Hash(7, "120 bytes".into()),
        Val::Hash(7, "131 bytes".into())
    );
    assert_ne!(Val::Hash(7, "1".into()), Val::Hash(8, "1".into()));
}

#[test]
fn the_options_scope_what_is_compared_on_both_sides() {
    let scoped = |opts: CompareOptions| {
        let mut m = Matcher::new(opts, false);
        let mut src = experiment("1");
        src.extend(run("a", "1", None, &[], &[0]));
        src.extend(model(&[(1, "runs:/a/model", "a", None)]));
        // A deleted run, compared only when asked.
        let mut deleted = run("d", "1", None, &[], &[0]);
        if let Event::Record(Record::Run(r)) = &mut deleted[0] {
            r.lifecycle_stage = "deleted".into();
        }
        src.extend(deleted);
        feed(&mut m, End::Src, src);
        let mut dst = experiment("7");
        dst.extend(run("x", "7", None, &[(LINEAGE_RUN, "a")], &[0]));
        feed(&mut m, End::Dst, dst);
        m.finish()
    };
    // Everything: the model and the deleted run are missing at the destination.
    let all = scoped(CompareOptions {
        deleted_runs: true,
        ..CompareOptions::default()
    });
    assert_eq!(all.kinds["runs"].missing, 1, "{all:#?}");
    assert_eq!(all.kinds["registered models"].missing, 1, "{all:#?}");
    // The experiment alone, without deleted runs: equal.
    let e = scoped(CompareOptions {
        experiments: Some(vec!["e".into()]),
        ..CompareOptions::default()
    });
    assert!(e.is_equal(), "{e:#?}");
    assert_eq!(e.kinds["runs"].equal, 1);
    // Another experiment: nothing of this one is compared.
    let other = scoped(CompareOptions {
        experiments: Some(vec!["other".into()]),
        ..CompareOptions::default()
    });
    assert!(other.kinds.is_empty(), "{other:#?}");
    // The model alone, from an archive: versions only.
    let m = scoped(CompareOptions {
        models: Some(vec!["m".into()]),
        registry_only: true,
        ..CompareOptions::default()
    });
    assert_eq!(
        m.kinds.keys().copied().collect::<Vec<_>>(),
        ["model versions", "registered models"]
    );
}
