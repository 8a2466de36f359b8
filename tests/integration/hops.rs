//! Two hops (source → A, then A → B, as a back-up of a migrated server or a migration in two
//! steps): the import owns its lineage tags, whatever the archive carries; and who an imported
//! run belongs to.

use mlflow_archive::transfer::import::{LINEAGE_RUN, STATE, importing_user};

use crate::fidelity::populate_everything;
use crate::live_pair;
use crate::util::{cli, client, output, runs_of, unique};

async fn run_cli(args: &[&str]) {
    crate::util::run_ok(args).await;
}

fn tag<'a>(r: &'a mlflow_archive::mlflow::types::Run, key: &str) -> Option<&'a str> {
    r.data
        .tags
        .iter()
        .find(|t| t.key == key)
        .map(|t| t.value.as_str())
}

#[tokio::test]
async fn a_second_hop_imports_once_and_keeps_the_first_source_as_origin() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let (experiment, _) = populate_everything(&src).await;
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first.mlar");
    let second = dir.path().join("second.mlar");
    let (first_s, second_s) = (first.to_str().unwrap(), second.to_str().unwrap());
    let hop1 = unique("hop1");
    let hop2 = unique("hop2");
    run_cli(&[
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &experiment,
        "--export-deleted-runs",
        "-o",
        first_s,
    ])
    .await;
    run_cli(&[
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--experiment-name",
        &hop1,
        "-i",
        first_s,
    ])
    .await;
    // The second hop exports what the first import made, with its lineage tags.
    run_cli(&[
        "export-experiment",
        "--src-uri",
        &pair.dst.uri,
        "--experiment",
        &hop1,
        "--export-deleted-runs",
        "-o",
        second_s,
    ])
    .await;
    for _ in 0..2 {
        run_cli(&[
            "import-experiment",
            "--dst-uri",
            &pair.dst.uri,
            "--experiment-name",
            &hop2,
            "-i",
            second_s,
        ])
        .await;
    }
    let a = runs_of(&dst, &hop1).await;
    let b: Vec<_> = runs_of(&dst, &hop2)
        .await
        .into_iter()
        .filter(|r| !mlflow_archive::transfer::import::is_abandoned(r))
        .collect();
    let source_runs = runs_of(&src, &experiment).await;
    assert_eq!(a.len(), source_runs.len());
    assert_eq!(
        b.len(),
        a.len(),
        "one run per run of the first hop, after two imports"
    );
    for r in &b {
        let from = tag(r, LINEAGE_RUN).unwrap();
        let hop1_run = a.iter().find(|x| x.info.run_id == from).unwrap_or_else(|| {
            panic!(
                "{}: its lineage names {from}, not a run of the first hop",
                r.info.run_name
            )
        });
        assert_eq!(tag(r, STATE), Some("complete"));
        // The first source is kept as history, under another name.
        assert_eq!(
            tag(r, "mlflow_archive.origin.run_id"),
            tag(hop1_run, LINEAGE_RUN),
            "{}",
            r.info.run_name
        );
        assert!(
            source_runs
                .iter()
                .any(|s| Some(s.info.run_id.as_str()) == tag(r, "mlflow_archive.origin.run_id"))
        );
    }
    // The logged model of the experiment crossed both hops (it used to fail on a duplicate tag).
    let exp = dst.get_experiment_by_name(&hop2).await.unwrap().unwrap();
    use futures_util::TryStreamExt;
    let lms: Vec<_> = dst
        .search_logged_models(&[&exp.experiment_id], None)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(lms.len(), 1);
}

#[tokio::test]
async fn imported_runs_belong_to_the_importing_user_unless_the_source_user_is_kept() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let (experiment, _) = populate_everything(&src).await;
    let (mine, theirs) = (unique("user-mine"), unique("user-theirs"));
    for (name, keep) in [(&mine, false), (&theirs, true)] {
        let mut args = vec![
            "copy-experiment",
            "--src-uri",
            &pair.src.uri,
            "--dst-uri",
            &pair.dst.uri,
            "--src-experiment",
            &experiment,
            "--dst-experiment-name",
            name.as_str(),
        ];
        if keep {
            args.push("--use-src-user-id");
        }
        run_cli(&args).await;
    }
    let dst = client(&pair.dst.uri);
    let me = importing_user(&dst);
    assert!(!me.is_empty() && me != "alice", "{me}");
    for r in runs_of(&dst, &mine).await {
        assert_eq!(
            tag(&r, "mlflow.user"),
            Some(me.as_str()),
            "{}",
            r.info.run_name
        );
    }
    for r in runs_of(&dst, &theirs).await {
        assert_eq!(tag(&r, "mlflow.user"), Some("alice"), "{}", r.info.run_name);
    }
}

#[tokio::test]
async fn two_imports_at_once_end_with_one_run_per_source_run() {
    let pair = live_pair!();
    let src = client(&pair.src.uri);
    let dst = client(&pair.dst.uri);
    let experiment = crate::roundtrip::populate(&src).await;
    let sources = runs_of(&src, &experiment).await.len();
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("twice.mlar");
    let archive_s = archive.to_str().unwrap();
    run_cli(&[
        "export-experiment",
        "--src-uri",
        &pair.src.uri,
        "--experiment",
        &experiment,
        "--export-deleted-runs",
        "-o",
        archive_s,
    ])
    .await;
    for (trial, existing) in [(0, true), (1, true), (2, false), (3, false)] {
        let target = unique("twice");
        if existing {
            dst.create_experiment(&target, None, &[]).await.unwrap();
        }
        let import = || {
            let mut cmd = cli();
            cmd.args([
                "import-experiment",
                "--dst-uri",
                &pair.dst.uri,
                "--experiment-name",
                &target,
                "--json",
                "-i",
                archive_s,
            ]);
            output(cmd)
        };
        let (one, two) = tokio::join!(import(), import());
        let live: Vec<_> = runs_of(&dst, &target)
            .await
            .into_iter()
            .filter(|r| !mlflow_archive::transfer::import::is_abandoned(r))
            .collect();
        assert_eq!(live.len(), sources, "trial {trial}: one run per source run");
        for r in &live {
            assert_eq!(tag(r, STATE), Some("complete"), "trial {trial}");
        }
        for out in [one, two] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "trial {trial}: {err}");
            // What each reports imported (or found done) is there, complete.
            let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let runs = report["runs"].as_object().unwrap();
            assert_eq!(runs.len(), sources, "trial {trial}");
            for dst_id in runs.values() {
                assert!(
                    live.iter()
                        .any(|r| Some(r.info.run_id.as_str()) == dst_id.as_str()),
                    "trial {trial}: {dst_id} is reported but is not a live run"
                );
            }
        }
    }
}
