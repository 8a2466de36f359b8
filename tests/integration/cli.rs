//! The command line as a user runs it: output, exit codes and one-line errors.

use mlflow_archive::mlflow::CreateModelVersion;

use crate::live_pair;
use crate::util::proxy::{Fault, FaultProxy};
use crate::util::{cli, client, experiment_with_run, output, unique};

#[tokio::test]
async fn list_registered_models_writes_every_version_in_numeric_order() {
    let pair = live_pair!();
    let c = client(&pair.dst.uri);
    let rid = experiment_with_run(&c, "cli").await.info.run_id;
    let name = unique("twelve");
    c.create_registered_model(&name, Some("desc"), &[])
        .await
        .unwrap();
    for _ in 0..12 {
        c.create_model_version(&CreateModelVersion {
            name: name.clone(),
            source: format!("runs:/{rid}/model"),
            run_id: Some(rid.clone()),
            ..CreateModelVersion::default()
        })
        .await
        .unwrap();
    }
    c.delete_model_version(&name, "5").await.unwrap();
    c.set_registered_model_alias(&name, "best", "11")
        .await
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("registered_models.json");
    let mut out_cmd = cli();
    out_cmd
        .args(["list-registered-models", "--src-uri", &pair.dst.uri, "-o"])
        .arg(&out_path);
    let out = output(out_cmd).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("registered models with"),
        "a summary: {stderr}"
    );
    assert!(!dir.path().join("registered_models.json.partial").exists());
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out_path).unwrap()).unwrap();
    let model = doc["registered_models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name.as_str())
        .expect("the model is listed");
    assert_eq!(model["description"], "desc");
    let versions: Vec<&str> = model["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_str().unwrap())
        .collect();
    assert_eq!(
        versions,
        ["1", "2", "3", "4", "6", "7", "8", "9", "10", "11", "12"]
    );
    let v11 = &model["versions"][9];
    assert_eq!(v11["aliases"], serde_json::json!(["best"]));
    assert_eq!(v11["run_id"], rid.as_str());

    let mut quiet_cmd = cli();
    quiet_cmd.args([
        "--quiet",
        "list-registered-models",
        "--src-uri",
        &pair.dst.uri,
        "-o",
        "-",
    ]);
    let quiet = output(quiet_cmd).await;
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert!(!doc["registered_models"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_servers_get_one_line_errors_and_exit_1() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    proxy.push([
        Fault::Reply(
            200,
            "text/html",
            "<!doctype html><html><body>Sign in</body></html>",
        ),
        Fault::Reply(404, "text/html", "<html><body>Not Found</body></html>"),
        Fault::Reply(200, "application/json", "{\"registered_models\": [tru"),
    ]);
    let cases = [
        (dead.as_str(), "cannot reach"),
        ("file:///tmp/mlruns", "backend store"),
        (proxy.uri.as_str(), "HTML page"),
        (proxy.uri.as_str(), "does not serve the MLflow REST API"),
        (proxy.uri.as_str(), "malformed JSON"),
    ];
    for (uri, want) in cases {
        let mut out_cmd = cli();
        out_cmd.args(["list-registered-models", "-o", "-", "--src-uri", uri]);
        let out = output(out_cmd).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{uri}: {stderr}");
        assert!(out.stdout.is_empty(), "{uri}: nothing written");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("mlflow-archive: error: "), "{stderr}");
        assert!(stderr.contains(want), "{uri}: want {want:?} in {stderr}");
    }
    let mut none = cli();
    none.args(["list-registered-models", "-o", "-"]);
    let none = output(none).await;
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("MLFLOW_TRACKING_URI"));

    let mut usage = cli();
    usage.args(["list-registered-models", "--bogus"]);
    let usage = output(usage).await;
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test]
async fn debug_and_rust_log_trace_requests_and_retries_on_stderr() {
    let pair = live_pair!();
    let proxy = FaultProxy::start(&pair.src.uri).await;
    let list = |env: (&str, &str)| {
        let mut c = cli();
        c.args(["list-registered-models", "-o", "-", "--src-uri", &proxy.uri])
            .env(env.0, env.1);
        c
    };
    let search = "path=\"/api/2.0/mlflow/registered-models/search\"";

    // MLFLOW_ARCHIVE_DEBUG: every request (no query string) and every retry.
    proxy.push([Fault::Status(503, None)]);
    let out = output(list(("MLFLOW_ARCHIVE_DEBUG", "1"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let requests: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains(" DEBUG mlflow_archive::mlflow::http: request method=GET"))
        .collect();
    assert_eq!(requests.len(), 2, "the 503 and its retry: {stderr}");
    assert!(
        requests[0].contains(&format!("{search} status=503 ms=")),
        "{stderr}"
    );
    assert!(
        requests[1].contains(&format!("{search} status=200 ms=")),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            " INFO mlflow_archive::mlflow::http: retrying call=\"GET registered-models/search\""
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("max_results"), "no query string: {stderr}");

    // RUST_LOG: targets and levels; info shows the retry, not the requests.
    proxy.push([Fault::Status(503, None)]);
    let out = output(list(("RUST_LOG", "mlflow_archive=info"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("retrying call="), "{stderr}");
    assert!(!stderr.contains("request method="), "{stderr}");

    // A RUST_LOG it cannot read is said once, then ignored.
    let out = output(list(("RUST_LOG", "mlflow_archive=loud"))).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("mlflow-archive: warning: RUST_LOG ignored"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().count(),
        2,
        "the warning and the summary: {stderr}"
    );
}

#[test]
fn every_command_has_help() {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    let top = std::process::Command::new(&bin)
        .arg("--help")
        .output()
        .unwrap();
    assert!(top.status.success());
    let text = String::from_utf8_lossy(&top.stdout).to_string();
    let commands: Vec<&str> = grouped_commands(&text)
        .into_iter()
        .flat_map(|(_, commands)| commands)
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(commands.len(), 24, "{commands:?}");
    for c in commands {
        let out = std::process::Command::new(&bin)
            .args([c, "--help"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{c} --help: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{c}"
        );
    }
}

/// The command list of the top-level help: each heading with its commands (the lines indented by
/// two spaces; deeper ones continue a wrapped description).
fn grouped_commands(help: &str) -> Vec<(&str, Vec<&str>)> {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for l in help
        .lines()
        .skip_while(|l| !l.starts_with("Usage:"))
        .skip(1)
        .take_while(|l| !l.starts_with("Options:"))
    {
        if let Some(heading) = l.strip_suffix(':').filter(|_| !l.starts_with(' ')) {
            groups.push((heading, Vec::new()));
        } else if l.starts_with("  ") && !l.starts_with("   ") {
            let group = groups.last_mut().expect("a command under a heading");
            group.1.extend(l.split_whitespace().next());
        }
    }
    groups
}

#[test]
fn help_lists_the_commands_in_groups() {
    let help = cli().arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    let groups = grouped_commands(&text);
    let want: [(&str, &[&str]); 8] = [
        (
            "Export (",
            &[
                "export-experiment",
                "export-experiment-list",
                "export-run",
                "export-model",
                "export-prompts",
                "export-all",
            ],
        ),
        (
            "Import (",
            &[
                "import-experiment",
                "import-experiment-list",
                "import-run",
                "import-model",
                "import-prompts",
                "import-all",
            ],
        ),
        (
            "Copy (",
            &["copy-experiment", "copy-run", "copy-model", "copy-all"],
        ),
        ("Sync (", &["sync"]),
        ("Check (", &["compare"]),
        ("Archives (offline)", &["inspect", "verify", "convert"]),
        ("Lists", &["list-registered-models"]),
        ("Help and shell", &["completions", "man", "help"]),
    ];
    assert_eq!(groups.len(), want.len(), "{text}");
    for ((heading, commands), (want_heading, want_commands)) in groups.iter().zip(want) {
        assert!(heading.starts_with(want_heading), "{heading:?}: {text}");
        assert_eq!(commands, want_commands, "{heading}");
    }
    assert!(!text.contains('\u{1b}'), "no escape sequences into a pipe");
    // `help` and `-h` show the same list; with no command, it comes on stderr with exit 2.
    let same = cli().arg("help").output().unwrap();
    assert_eq!(String::from_utf8_lossy(&same.stdout), text);
    let short = cli().arg("-h").output().unwrap();
    assert_eq!(
        grouped_commands(&String::from_utf8_lossy(&short.stdout)),
        groups
    );
    let none = cli().output().unwrap();
    assert_eq!(none.status.code(), Some(2));
    assert_eq!(
        grouped_commands(&String::from_utf8_lossy(&none.stderr)),
        groups
    );
}

#[test]
fn completions_are_generated_for_every_shell_from_the_definition() {
    for (shell, marker) in [
        ("bash", "complete -F _mlflow__archive"),
        ("zsh", "#compdef mlflow-archive"),
        ("fish", "complete -c mlflow-archive"),
        ("elvish", "edit:completion:arg-completer[mlflow-archive]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = cli().args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(out.stderr.is_empty(), "{shell}");
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: {marker}");
        for word in [
            "export-experiment",
            "import-model",
            "zstd-threads",
            "allow-lossy",
        ] {
            assert!(script.contains(word), "{shell}: {word}");
        }
        if shell == "bash" {
            // The script parses, and completes the commands and an option's closed values.
            let check = std::process::Command::new("bash")
                .args([
                    "-c",
                    r#"eval "$1"
                    COMP_WORDS=(mlflow-archive export-r); COMP_CWORD=1; _mlflow__archive mlflow-archive export-r mlflow-archive
                    echo "${COMPREPLY[*]}"
                    COMP_WORDS=(mlflow-archive convert --layout ''); COMP_CWORD=3; _mlflow__archive mlflow-archive '' --layout
                    echo "${COMPREPLY[*]}""#,
                    "complete",
                    &script,
                ])
                .output()
                .unwrap();
            let shown = String::from_utf8_lossy(&check.stdout);
            assert!(
                check.status.success(),
                "{}",
                String::from_utf8_lossy(&check.stderr)
            );
            assert_eq!(shown, "export-run\nv2 classic\n", "{shown}");
        }
    }
    let bad = cli().args(["completions", "tcsh"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("[possible values: bash, elvish, fish, powershell, zsh]"),
        "{stderr}"
    );
}

#[test]
fn man_prints_the_page_or_writes_one_per_command() {
    let out = cli().arg("man").output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(page.contains(".TH mlflow-archive 1"), "{page}");
    assert!(page.contains(".SH SUBCOMMANDS"), "{page}");
    for c in [
        "export\\-experiment",
        "import\\-all",
        "copy\\-run",
        "verify",
        "completions",
    ] {
        assert!(page.contains(c), "{c}: {page}");
    }

    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = cli().arg("man").arg(&pages).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("wrote 25 manual pages"), "{stderr}");
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 25, "{names:?}");
    assert!(names.contains(&"mlflow-archive.1".to_string()));
    let run = std::fs::read_to_string(pages.join("mlflow-archive-export-run.1")).unwrap();
    assert!(run.contains(".TH mlflow-archive-export-run 1"), "{run}");
    assert!(run.contains("\\-\\-zstd\\-threads"), "{run}");
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");

    // Again into the same directory: the pages are replaced, nothing else is touched.
    std::fs::write(pages.join("other.1"), "kept").unwrap();
    std::fs::write(pages.join("mlflow-archive.1"), "old").unwrap();
    let again = cli().arg("man").arg(&pages).output().unwrap();
    assert!(again.status.success());
    assert_eq!(std::fs::read_dir(&pages).unwrap().count(), 26);
    assert_eq!(
        std::fs::read_to_string(pages.join("other.1")).unwrap(),
        "kept"
    );
    let main = std::fs::read_to_string(pages.join("mlflow-archive.1")).unwrap();
    assert_eq!(main, page, "the main page, as printed");

    // A file in the way is an error that names it.
    let file = dir.path().join("file");
    std::fs::write(&file, "").unwrap();
    let refused = cli().arg("man").arg(&file).output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("creating the directory") && stderr.contains("file"),
        "{stderr}"
    );
}

/// Runs a command line under a pseudo-terminal (`script`), as a user at a terminal would, and
/// returns everything the terminal showed.
async fn on_a_terminal(args: &[String]) -> (bool, String) {
    let bin = assert_cmd::cargo::cargo_bin("mlflow-archive");
    let line = std::iter::once(bin.display().to_string())
        .chain(args.iter().cloned())
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut cmd = std::process::Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"]);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[tokio::test]
async fn progress_shows_on_a_terminal_and_never_in_pipes_or_with_quiet() {
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let run = experiment_with_run(&c, "progress").await;
    let rid = run.info.run_id.clone();
    let points: Vec<_> = (0..3000)
        .map(|i| mlflow_archive::mlflow::types::Metric {
            key: "loss".into(),
            value: f64::from(i),
            timestamp: 1_700_000_000_000 + i64::from(i),
            step: i64::from(i),
            ..Default::default()
        })
        .collect();
    c.log_batch(&rid, &points, &[], &[]).await.unwrap();
    let exp = c.get_experiment(&run.info.experiment_id).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mlar");
    let export = |quiet: bool| {
        let mut a: Vec<String> = Vec::new();
        if quiet {
            a.push("--quiet".into());
        }
        a.extend(
            [
                "export-experiment",
                "--src-uri",
                &pair.src.uri,
                "--experiment",
                &exp.name,
                "-o",
                &path.display().to_string(),
            ]
            .map(String::from),
        );
        a
    };

    let (ok, shown) = on_a_terminal(&export(false)).await;
    assert!(ok, "{shown}");
    assert!(shown.contains("exporting ["), "no progress line: {shown}");
    assert!(shown.contains(" runs · "), "{shown}");
    assert!(shown.contains("points ("), "{shown}");
    assert!(shown.contains("exported experiment"), "{shown}");

    let (ok, shown) = on_a_terminal(&export(true)).await;
    assert!(ok, "{shown}");
    assert!(shown.trim().is_empty(), "--quiet prints nothing: {shown}");

    // An import at a terminal shows its own line; through a pipe, only the summary.
    let target = unique("progress-import");
    let import = [
        "import-experiment",
        "--dst-uri",
        &pair.dst.uri,
        "--experiment-name",
        &target,
        "-i",
        &path.display().to_string(),
    ]
    .map(String::from);
    let (ok, shown) = on_a_terminal(&import).await;
    assert!(ok, "{shown}");
    assert!(shown.contains("importing ["), "no progress line: {shown}");
    let mut piped = cli();
    piped.args(&import);
    let out = output(piped).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("importing ["), "{stderr}");
    assert!(stderr.contains("1 runs imported") || stderr.contains("1 already complete"));
}

#[test]
fn closed_choices_list_their_values_and_exit_2() {
    let cases: [(&[&str], &str, &str); 2] = [
        (
            &["convert", "in.mlar", "out", "--layout", "bogus"],
            "'--layout <LAYOUT>'",
            "[possible values: v2, classic]",
        ),
        (
            &["convert", "in.mlar", "out", "--shape", "bogus"],
            "'--shape <SHAPE>'",
            "[possible values: experiment, experiments, model, run, all]",
        ),
    ];
    for (args, arg, values) in cases {
        let out = cli().args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("invalid value 'bogus' for {arg}")) && stderr.contains(values),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn output_settings_that_do_not_apply_are_refused_before_anything_is_done() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    let zip = dir.path().join("tree.zip");
    let archive = dir.path().join("a.mlar");
    let no_server = "http://127.0.0.1:9"; // never asked: usage is checked first
    let cases: Vec<(Vec<&std::ffi::OsStr>, &str)> = vec![
        (
            vec![
                "export-run".as_ref(),
                "--run-id".as_ref(),
                "r".as_ref(),
                "-o".as_ref(),
                tree.as_os_str(),
                "--level".as_ref(),
                "9".as_ref(),
            ],
            "--level and --zstd-threads apply to an archive output",
        ),
        (
            vec![
                "export-model".as_ref(),
                "--model".as_ref(),
                "m".as_ref(),
                "-o".as_ref(),
                zip.as_os_str(),
                "--zstd-threads".as_ref(),
                "2".as_ref(),
            ],
            "--level and --zstd-threads apply to an archive output",
        ),
        (
            vec![
                "export-all".as_ref(),
                "-o".as_ref(),
                archive.as_os_str(),
                "--layout".as_ref(),
                "classic".as_ref(),
            ],
            "--layout classic and --allow-lossy apply to a directory or zip output",
        ),
        (
            vec![
                "export-experiment-list".as_ref(),
                "--experiments".as_ref(),
                "all".as_ref(),
                "-o".as_ref(),
                "-".as_ref(),
                "--allow-lossy".as_ref(),
            ],
            "--layout classic and --allow-lossy apply to a directory or zip output",
        ),
        (
            vec![
                "export-experiment".as_ref(),
                "--experiment".as_ref(),
                "e".as_ref(),
                "-o".as_ref(),
                archive.as_os_str(),
                "--level".as_ref(),
                "20".as_ref(),
            ],
            "invalid value '20' for '--level <LEVEL>': 20 is not in 1..=19",
        ),
    ];
    for (args, want) in cases {
        let out = cli()
            .args(&args)
            .args(["--src-uri", no_server])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        if want.starts_with("--") {
            // Told as clap tells its own: with the command's usage line.
            assert!(
                stderr.contains("Usage: mlflow-archive export-"),
                "{args:?}: {stderr}"
            );
        }
        assert!(out.stdout.is_empty());
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

#[tokio::test]
async fn every_export_writes_at_the_level_and_threads_it_is_given() {
    use mlflow_archive::format::ArchiveReader;
    let pair = live_pair!();
    let c = client(&pair.src.uri);
    let run = experiment_with_run(&c, "level").await;
    let rid = run.info.run_id.clone();
    let points: Vec<_> = (0..2000)
        .map(|i| mlflow_archive::mlflow::types::Metric {
            key: "loss".into(),
            value: f64::from(i % 7),
            timestamp: 1_700_000_000_000 + i64::from(i),
            step: i64::from(i),
            ..Default::default()
        })
        .collect();
    c.log_batch(&rid, &points, &[], &[]).await.unwrap();
    let exp = c.get_experiment(&run.info.experiment_id).await.unwrap();
    let model = unique("level-model");
    c.create_registered_model(&model, None, &[]).await.unwrap();
    c.create_model_version(&CreateModelVersion {
        name: model.clone(),
        source: format!("runs:/{rid}/model"),
        run_id: Some(rid.clone()),
        ..CreateModelVersion::default()
    })
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let commands: [[&str; 3]; 4] = [
        ["export-experiment", "--experiment", &exp.name],
        ["export-experiment-list", "--experiments", &exp.name],
        ["export-run", "--run-id", &rid],
        ["export-model", "--model", &model],
    ];
    for what in commands {
        let mut sizes = Vec::new();
        for (i, settings) in [
            &["--level", "1"][..],
            &["--level", "19", "--zstd-threads", "2"],
        ]
        .into_iter()
        .enumerate()
        {
            let path = dir.path().join(format!("{}-{i}.mlar", what[0]));
            let mut cmd = cli();
            cmd.args(what)
                .args(["--src-uri", &pair.src.uri])
                .args(settings)
                .arg("-o")
                .arg(&path);
            let out = output(cmd).await;
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{what:?} {settings:?}: {stderr}");
            let bytes = std::fs::read(&path).unwrap();
            ArchiveReader::new(&bytes[..]).unwrap().verify().unwrap();
            sizes.push(bytes.len());
        }
        assert!(
            sizes[1] < sizes[0],
            "{what:?}: level 19 is smaller than level 1: {sizes:?}"
        );
    }
}

/// A reader of standard output that goes away is not our failure: every command that prints to
/// standard output (here `inspect`, one line per unit, and `--json` reports) ends quietly with
/// exit 0, never a panic.
#[test]
fn a_reader_of_standard_output_that_goes_away_ends_the_command_quietly() {
    use crate::format_util::{Item, run, write_items};
    let mut items = vec![Item::Experiment(
        mlflow_archive::format::model::Experiment {
            experiment_id: "1".into(),
            name: "many".into(),
            lifecycle_stage: "active".into(),
            ..Default::default()
        },
    )];
    for i in 0..3000 {
        items.push(Item::Run(run(&format!("{i:032x}"), "1", None)));
        items.push(Item::EndUnit);
    }
    let bytes = write_items(&items, mlflow_archive::format::WriterBuilder::new());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("many.mlar");
    std::fs::write(&path, bytes).unwrap();
    for args in [vec!["inspect"], vec!["inspect", "--json"]] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mlflow-archive"))
            .args(&args)
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away at once.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

/// `import-run --run-id R --just-peek` shows what would be imported: run R (and the
/// experiments), not every run of the input; a run the input lacks is an error naming it.
#[test]
fn peeking_at_one_run_shows_that_run() {
    use crate::format_util::{Item, run, write_items};
    let a = format!("{:032x}", 0xa);
    let b = format!("{:032x}", 0xb);
    let items = vec![
        Item::Experiment(mlflow_archive::format::model::Experiment {
            experiment_id: "1".into(),
            name: "two runs".into(),
            lifecycle_stage: "active".into(),
            ..Default::default()
        }),
        Item::Run(run(&a, "1", None)),
        Item::EndUnit,
        Item::Run(run(&b, "1", None)),
        Item::EndUnit,
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.mlar");
    std::fs::write(
        &path,
        write_items(&items, mlflow_archive::format::WriterBuilder::new()),
    )
    .unwrap();
    let peek = |id: &str| {
        let mut cmd = cli();
        cmd.args(["import-run", "--run-id", id, "--just-peek", "True"])
            .args([
                "--experiment-name",
                "e",
                "--dst-uri",
                "http://127.0.0.1:9",
                "-i",
            ])
            .arg(&path);
        cmd.output().unwrap()
    };
    let out = peek(&a);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&a), "{text}");
    assert!(!text.contains(&b), "{text}");
    assert!(
        text.contains(&format!("run {a}; would be imported")),
        "{text}"
    );
    let out = peek("ffff");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("run ffff: not in"), "{err}");
}
