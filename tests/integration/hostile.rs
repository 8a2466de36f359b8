//! Regression tests of issue 12 (an adversarial pass: crafted archives, trees and zips, CLI misuse,
//! full disks, credentials). Crafted inputs are generated here, never committed as blobs.

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
