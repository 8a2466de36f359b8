//! Regression tests of issue 12 (an adversarial pass: crafted archives, trees and zips, CLI misuse,
//! full disks, credentials). Crafted inputs are generated here, never committed as blobs.

use mlflow_archive::format::ArchiveWriter;
use mlflow_archive::format::model::{Experiment, RegisteredModel};

use crate::format_util::{run, version};
use crate::util::cli;

/// Item 5: a tracking URI without a scheme (`user:SECRET@host`, `//user:SECRET@host`), given as
/// an option or in `MLFLOW_TRACKING_URI`, was echoed with its password.
#[test]
fn a_password_in_a_uri_without_a_scheme_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.mlar");
    let out = out.to_str().unwrap();
    for uri in [
        "user:SECRET@127.0.0.1:5290",
        "//user:SECRET@127.0.0.1:5290",
        "user:SE/CRET@127.0.0.1:5290",
    ] {
        let runs: [(Vec<&str>, bool); 3] = [
            (
                vec![
                    "export-experiment",
                    "--src-uri",
                    uri,
                    "--experiment",
                    "x",
                    "-o",
                    out,
                ],
                false,
            ),
            (
                vec![
                    "import-experiment",
                    "--dst-uri",
                    uri,
                    "--experiment-name",
                    "x",
                    "-i",
                    out,
                ],
                false,
            ),
            (
                vec!["export-experiment", "--experiment", "x", "-o", out],
                true,
            ),
        ];
        for (args, via_env) in runs {
            let mut c = cli();
            c.args(&args);
            if via_env {
                c.env("MLFLOW_TRACKING_URI", uri);
            }
            let o = c.output().unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
            );
            assert_eq!(o.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(stderr.contains("tracking URI"), "{args:?}: {stderr}");
            assert!(
                !stderr.contains("SECRET") && !stderr.contains("CRET"),
                "{args:?}: {stderr}"
            );
            assert!(!stdout.contains("CRET"), "{args:?}: {stdout}");
        }
    }
}

/// Item 8: `sub` and `sub/notes.txt` in one run (a path both a file and a directory, §6.3) were
/// accepted. The reader's side is the vectors `file-and-directory` and `directory-and-file`; the
/// writer shares the rule, so it cannot write such an archive in either order.
#[test]
fn the_writer_refuses_a_path_that_is_both_a_file_and_a_directory() {
    for (first, second, fails_at_seal) in [
        ("sub", "sub/notes.txt", false),
        ("sub/notes.txt", "sub", true),
        ("a/b", "a/b/c/d", false),
    ] {
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        w.begin_run(&run("r1", "1", None)).unwrap();
        w.artifact(first, 1, &b"x"[..]).unwrap();
        let second = w.artifact(second, 1, &b"x"[..]);
        assert_eq!(second.is_ok(), fails_at_seal, "{first} then {second:?}");
        let e = second.and_then(|_| w.end_unit()).unwrap_err().to_string();
        assert!(e.contains("both a file and a directory (§6.3)"), "{e}");
        assert!(w.finish().is_err());
    }
    // Siblings that share a prefix are not directories of each other.
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.begin_run(&run("r1", "1", None)).unwrap();
    for rel in ["sub", "sub.txt", "sub-x/y", "subdir/notes.txt", "x/sub"] {
        w.artifact(rel, 1, &b"x"[..]).unwrap();
    }
    w.end_unit().unwrap();
    w.finish().unwrap();
}

/// Item 13: a run whose status is not an MLflow status (`"PWNED"`) verified as sound and imported
/// as RUNNING. Every field the spec enumerates is checked, by the writer as by the reader (the
/// vector `unknown-run-status`).
#[test]
fn the_writer_refuses_values_outside_the_enumerations_of_the_spec() {
    let exp = |stage: &str| Experiment {
        experiment_id: "1".into(),
        name: "e".into(),
        lifecycle_stage: stage.into(),
        ..Experiment::default()
    };
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    let e = w.experiment(&exp("archived")).unwrap_err().to_string();
    assert!(
        e.contains("lifecycle_stage \"archived\" is not one of active, deleted (§7.2)"),
        "{e}"
    );

    for (status, stage, want) in [
        (
            "PWNED",
            "active",
            "status \"PWNED\" is not one of RUNNING, SCHEDULED, FINISHED, FAILED, KILLED (§7.3)",
        ),
        ("finished", "active", "status \"finished\""),
        ("", "active", "status \"\""),
        (
            "FINISHED",
            "gone",
            "lifecycle_stage \"gone\" is not one of active, deleted (§7.3)",
        ),
    ] {
        let mut r = run("r1", "1", None);
        r.status = status.into();
        r.lifecycle_stage = stage.into();
        let mut w = ArchiveWriter::new(Vec::new()).unwrap();
        w.experiment(&exp("active")).unwrap();
        let e = w.begin_run(&r).unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
    }

    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.begin_registered_model(&RegisteredModel {
        name: "m".into(),
        ..RegisteredModel::default()
    })
    .unwrap();
    let mut v = version(1, "r1");
    v.current_stage = "Retired".into();
    let e = w.model_version(&v).unwrap_err().to_string();
    assert!(
        e.contains(
            "current_stage \"Retired\" is not one of None, Staging, Production, Archived (§7.7)"
        ),
        "{e}"
    );

    // Every value the spec names is accepted.
    let mut w = ArchiveWriter::new(Vec::new()).unwrap();
    w.experiment(&exp("deleted")).unwrap();
    for (i, status) in ["RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED"]
        .iter()
        .enumerate()
    {
        let mut r = run(&format!("r{i}"), "1", None);
        r.status = (*status).into();
        r.lifecycle_stage = if i % 2 == 0 { "active" } else { "deleted" }.into();
        w.begin_run(&r).unwrap();
        w.end_unit().unwrap();
    }
    w.begin_registered_model(&RegisteredModel {
        name: "m".into(),
        ..RegisteredModel::default()
    })
    .unwrap();
    for (i, stage) in ["None", "Staging", "Production", "Archived"]
        .iter()
        .enumerate()
    {
        let mut v = version(i as u64 + 1, "r1");
        v.current_stage = (*stage).into();
        w.model_version(&v).unwrap();
    }
    w.end_unit().unwrap();
    w.finish().unwrap();
}
