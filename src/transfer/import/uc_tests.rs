//! Imports into registries without stages or without aliases, against the in-memory server
//! behaving as Unity Catalog or as a Databricks workspace registry: names, stages turned into
//! aliases and tags, version files uploaded then finalized, the signature check, collisions, and
//! a version left pending by a kill.

use std::io::Cursor;

use crate::format::WriterBuilder;
use crate::format::model::{Alias, Experiment, ModelVersion, RegisteredModel, Run as RecRun};
use crate::mlflow::api::registry::RegistryKind;
use crate::transfer::archive_source::ArchiveSource;
use crate::transfer::destination::Destination;
use crate::transfer::memory::MemoryServer;

use super::*;

const RUN: &str = "aaaa0000000000000000000000000001";
const BARE_RUN: &str = "bbbb0000000000000000000000000002";
const SIGNED: &str = "artifact_path: model\nsignature:\n  inputs: '[{\"type\": \"double\", \"name\": \"x\"}]'\n  outputs: '[{\"type\": \"long\"}]'\n  params: null\n";
const UNSIGNED: &str = "artifact_path: model\nflavors:\n  python_function: {}\n";

/// One experiment with a run whose model has a signature and one whose model has none; models
/// named `models` (each: versions 1 Production, 2 Staging, 3 Production, 4 Archived, all from
/// the signed run, alias `champion` on 1), and, with `unsigned`, a version 5 from the other run.
fn archive(models: &[&str], unsigned: bool) -> Vec<u8> {
    let mut w = WriterBuilder::new().build(Vec::new()).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "/Users/ann@example.com/exp".into(),
        lifecycle_stage: "active".into(),
        ..Experiment::default()
    })
    .unwrap();
    for (id, mlmodel) in [(RUN, SIGNED), (BARE_RUN, UNSIGNED)] {
        w.begin_run(&RecRun {
            run_id: id.into(),
            experiment_id: "1".into(),
            status: "FINISHED".into(),
            lifecycle_stage: "active".into(),
            ..RecRun::default()
        })
        .unwrap();
        w.artifact("model/MLmodel", mlmodel.len() as u64, mlmodel.as_bytes())
            .unwrap();
        w.artifact("model/model.pkl", 3, &b"pkl"[..]).unwrap();
        w.artifact("other.txt", 2, &b"no"[..]).unwrap();
        w.end_unit().unwrap();
    }
    for name in models {
        w.begin_registered_model(&RegisteredModel {
            name: (*name).into(),
            description: "wine quality".into(),
            aliases: vec![Alias {
                alias: "champion".into(),
                version: 1,
            }],
            ..RegisteredModel::default()
        })
        .unwrap();
        let mut versions = vec![
            (1, "Production", RUN),
            (2, "Staging", RUN),
            (3, "Production", RUN),
            (4, "Archived", RUN),
        ];
        if unsigned {
            versions.push((5, "None", BARE_RUN));
        }
        for (n, stage, run) in versions {
            w.model_version(&ModelVersion {
                version: n,
                source: format!("runs:/{run}/model"),
                run_id: run.into(),
                current_stage: stage.into(),
                description: format!("build {n}"),
                status: "READY".into(),
                ..ModelVersion::default()
            })
            .unwrap();
        }
        w.end_unit().unwrap();
    }
    w.finish().unwrap().0
}

async fn import(
    server: &MemoryServer,
    bytes: &[u8],
    opts: ImportOptions,
) -> std::result::Result<ImportReport, Failed> {
    let source = ArchiveSource::start(Cursor::new(bytes.to_vec()));
    import_archive(server, source, &opts).await
}

fn uc() -> MemoryServer {
    let s = MemoryServer::default();
    s.set_registry(RegistryKind::UnityCatalog);
    s
}

fn into_schema(stage_to: Option<StageTo>) -> ImportOptions {
    ImportOptions {
        model_names: ModelNames::parse(&[], Some("main.default")).unwrap(),
        stage_to,
        ..ImportOptions::default()
    }
}

fn tag<'a>(v: &'a crate::mlflow::types::ModelVersion, key: &str) -> Option<&'a str> {
    v.tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

#[tokio::test]
async fn into_unity_catalog_stages_become_aliases_and_tags_and_files_are_uploaded() {
    let server = uc();
    let report = import(&server, &archive(&["Wine"], false), into_schema(None))
        .await
        .unwrap();
    assert_eq!(report.models["Wine"], "main.default.wine");
    assert_eq!(report.versions_imported, 4);
    let versions = server.model_versions("main.default.wine").await.unwrap();
    let numbers: Vec<&str> = versions.iter().map(|v| v.version.as_str()).collect();
    assert_eq!(numbers, ["1", "2", "3", "4"]);
    for (v, stage) in versions
        .iter()
        .zip(["Production", "Staging", "Production", "Archived"])
    {
        assert_eq!(v.status, "READY", "finalized");
        assert_eq!(tag(v, SOURCE_STAGE), Some(stage), "version {}", v.version);
        let files = server.files(&v.storage_location);
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["MLmodel", "model.pkl"], "the model's files only");
        assert_eq!(&files["MLmodel"][..], SIGNED.as_bytes());
    }
    let model = server.registered_model("main.default.wine").await.unwrap();
    let mut aliases: Vec<(&str, &str)> = model
        .aliases
        .iter()
        .map(|a| (a.alias.as_str(), a.version.as_str()))
        .collect();
    aliases.sort();
    assert_eq!(
        aliases,
        [("champion", "1"), ("production", "3"), ("staging", "2")],
        "the newest version of each stage, and the source's own alias"
    );
    assert!(!server.log().contains(&"transition_stage"));
    assert_eq!(report.version_files, 8);
    // Again: nothing is written twice.
    let again = import(&server, &archive(&["Wine"], false), into_schema(None))
        .await
        .unwrap();
    assert_eq!((again.versions_imported, again.versions_skipped), (0, 4));
}

#[tokio::test]
async fn stages_as_tags_or_dropped() {
    let server = uc();
    import(
        &server,
        &archive(&["Wine"], false),
        into_schema(Some(StageTo::Tag)),
    )
    .await
    .unwrap();
    let model = server.registered_model("main.default.wine").await.unwrap();
    let aliases: Vec<&str> = model.aliases.iter().map(|a| a.alias.as_str()).collect();
    assert_eq!(aliases, ["champion"]);
    let versions = server.model_versions("main.default.wine").await.unwrap();
    assert_eq!(tag(&versions[3], SOURCE_STAGE), Some("Archived"));

    let server = uc();
    import(
        &server,
        &archive(&["Wine"], false),
        into_schema(Some(StageTo::None)),
    )
    .await
    .unwrap();
    let versions = server.model_versions("main.default.wine").await.unwrap();
    assert!(versions.iter().all(|v| tag(v, SOURCE_STAGE).is_none()));

    let e = import(
        &uc(),
        &archive(&["Wine"], false),
        into_schema(Some(StageTo::Stage)),
    )
    .await
    .unwrap_err();
    assert!(e.error.to_string().contains("no stages"), "{}", e.error);
}

#[tokio::test]
async fn a_version_without_a_signature_is_refused_by_name_unless_the_check_is_skipped() {
    let server = uc();
    let bytes = archive(&["Wine"], true);
    let e = import(&server, &bytes, into_schema(None))
        .await
        .unwrap_err();
    let text = e.error.to_string();
    assert!(
        text.contains(
            "model version Wine/5 has no signature with inputs and outputs; Unity Catalog requires one"
        ) && text.contains("--skip-signature-check"),
        "{text}"
    );
    // Nothing of version 5 was made.
    let versions = server.model_versions("main.default.wine").await.unwrap();
    assert_eq!(versions.len(), 4);
    let report = import(
        &server,
        &bytes,
        ImportOptions {
            skip_signature_check: true,
            ..into_schema(None)
        },
    )
    .await
    .unwrap();
    assert_eq!(report.versions_imported, 1);
    assert_eq!(report.unchecked_signatures, [("Wine".to_string(), 5)]);
    let v5 = server
        .model_versions("main.default.wine")
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!((v5.version.as_str(), v5.status.as_str()), ("5", "READY"));
    assert_eq!(
        &server.files(&v5.storage_location)["MLmodel"][..],
        UNSIGNED.as_bytes()
    );
}

#[tokio::test]
async fn names_into_unity_catalog_need_three_levels_and_may_not_collide() {
    let e = import(&uc(), &archive(&["wine"], false), ImportOptions::default())
        .await
        .unwrap_err();
    let text = e.error.to_string();
    assert!(
        text.contains("registered model \"wine\" cannot go into Unity Catalog"),
        "{text}"
    );
    let e = import(&uc(), &archive(&["Wine", "wine"], false), into_schema(None))
        .await
        .unwrap_err();
    let text = e.error.to_string();
    assert!(
        text.contains("\"Wine\" and \"wine\" would both become \"main.default.wine\""),
        "{text}"
    );
    // A mapping sends one elsewhere.
    let server = uc();
    let report = import(
        &server,
        &archive(&["Wine", "wine"], false),
        ImportOptions {
            model_names: ModelNames::parse(
                &["wine=main.default.wine_lower".to_string()],
                Some("main.default"),
            )
            .unwrap(),
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.models["wine"], "main.default.wine_lower");
    assert_eq!(report.models["Wine"], "main.default.wine");
}

#[tokio::test]
async fn into_a_workspace_registry_aliases_are_counted_not_set() {
    let server = MemoryServer::default();
    server.set_registry(RegistryKind::DatabricksWorkspace);
    let report = import(
        &server,
        &archive(&["Wine"], false),
        ImportOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.aliases_not_set, 1, "the source's alias");
    let versions = server.model_versions("Wine").await.unwrap();
    let stages: Vec<&str> = versions.iter().map(|v| v.current_stage.as_str()).collect();
    assert_eq!(stages, ["Production", "Staging", "Production", "Archived"]);
    // With stages as aliases, those are counted too.
    let server = MemoryServer::default();
    server.set_registry(RegistryKind::DatabricksWorkspace);
    let report = import(
        &server,
        &archive(&["Wine"], false),
        ImportOptions {
            stage_to: Some(StageTo::Alias),
            ..ImportOptions::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.aliases_not_set, 3);
}

#[tokio::test]
async fn a_version_left_pending_by_a_kill_is_uploaded_and_finalized_by_the_next_import() {
    let bytes = archive(&["Wine"], false);
    // Where the first upload happens.
    let probe = uc();
    import(&probe, &bytes, into_schema(None)).await.unwrap();
    let at = probe
        .log()
        .iter()
        .position(|c| *c == "upload_model_version_files")
        .unwrap() as u64
        + 1;
    let server = uc();
    server.fail_from(Some(at));
    assert!(import(&server, &bytes, into_schema(None)).await.is_err());
    server.fail_from(None);
    let pending = server.model_versions("main.default.wine").await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].status, "PENDING_REGISTRATION");
    let report = import(&server, &bytes, into_schema(None)).await.unwrap();
    assert_eq!(report.versions_imported, 4);
    let versions = server.model_versions("main.default.wine").await.unwrap();
    assert_eq!(versions.len(), 4, "no version twice");
    assert!(versions.iter().all(|v| v.status == "READY"));
    assert_eq!(server.files(&versions[0].storage_location).len(), 2);
}

#[tokio::test]
async fn a_version_without_files_is_refused_and_left_pending() {
    let server = uc();
    let mut w = WriterBuilder::new().build(Vec::new()).unwrap();
    w.experiment(&Experiment {
        experiment_id: "1".into(),
        name: "e".into(),
        lifecycle_stage: "active".into(),
        ..Experiment::default()
    })
    .unwrap();
    w.begin_run(&RecRun {
        run_id: RUN.into(),
        experiment_id: "1".into(),
        status: "FINISHED".into(),
        lifecycle_stage: "active".into(),
        ..RecRun::default()
    })
    .unwrap();
    w.artifact("other.txt", 2, &b"no"[..]).unwrap();
    w.end_unit().unwrap();
    w.begin_registered_model(&RegisteredModel {
        name: "empty".into(),
        ..RegisteredModel::default()
    })
    .unwrap();
    w.model_version(&ModelVersion {
        version: 1,
        source: format!("runs:/{RUN}/model"),
        run_id: RUN.into(),
        status: "READY".into(),
        ..ModelVersion::default()
    })
    .unwrap();
    w.end_unit().unwrap();
    let bytes = w.finish().unwrap().0;
    let e = import(
        &server,
        &bytes,
        ImportOptions {
            skip_signature_check: true,
            ..into_schema(None)
        },
    )
    .await
    .unwrap_err();
    assert!(
        e.error.to_string().contains("there are no files at"),
        "{}",
        e.error
    );
    let v = server.model_versions("main.default.empty").await.unwrap();
    assert_eq!(v[0].status, "PENDING_REGISTRATION", "not finalized");
}
