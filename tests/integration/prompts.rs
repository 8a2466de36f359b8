//! Prompts (MLflow 3 keeps them as registered models tagged `mlflow.prompt.is_prompt`, hidden
//! from the registry's searches): made and read back with MLflow's own `mlflow.genai` client.

use crate::live_pair;
use crate::util::server::venv;
use crate::util::{cli, output, unique};

const SCRIPT: &str = r#"
import json, sys
import mlflow
mlflow.set_tracking_uri(sys.argv[2])
name = sys.argv[3]
if sys.argv[1] == "make":
    mlflow.genai.register_prompt(name=name, template="Answer {{question}} briefly.",
                                 commit_message="first", tags={"team": "qa"})
    mlflow.genai.register_prompt(name=name, template=[
        {"role": "system", "content": "You answer questions."},
        {"role": "user", "content": "{{question}}"}], commit_message="as a chat")
    mlflow.genai.set_prompt_alias(name, alias="production", version=2)
else:
    seen = []
    for uri in [f"prompts:/{name}@production", f"prompts:/{name}/1"]:
        p = mlflow.genai.load_prompt(uri)
        # Without the import's own markers (README: mlflow_archive.* tags).
        tags = {k: v for k, v in p.tags.items() if not k.startswith("mlflow_archive.")}
        seen.append({"version": p.version, "template": p.template,
                     "message": p.commit_message, "tags": tags})
    print(json.dumps(seen, sort_keys=True))
"#;

/// Runs the script (`make` or `load`) against `uri` for the prompt `name`; returns its output.
pub async fn prompt(what: &str, uri: &str, name: &str) -> String {
    let python = venv().expect("the venv").join("bin/python");
    let args = [what.to_string(), uri.to_string(), name.to_string()];
    let out = tokio::process::Command::new(python)
        .arg("-c")
        .arg(SCRIPT)
        .args(args)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "prompt {what} on {uri}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_prompt_is_copied_by_name_and_loads_at_the_destination() {
    let pair = live_pair!();
    let name = unique("qa");
    prompt("make", &pair.src.uri, &name).await;
    let want = prompt("load", &pair.src.uri, &name).await;
    assert!(
        want.contains("as a chat") && want.contains("briefly"),
        "{want}"
    );
    let mut cmd = cli();
    cmd.args([
        "copy-model",
        "--src-uri",
        &pair.src.uri,
        "--dst-uri",
        &pair.dst.uri,
        "--src-model",
        &name,
        "--dst-experiment-name",
        &unique("prompt-exp"),
    ]);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(prompt("load", &pair.dst.uri, &name).await, want);
}

/// `export-prompts` → `import-prompts` carries a prompt by name (every version and alias), and
/// `list-registered-models --prompts` lists it where the plain listing does not (MLflow's
/// searches hide prompts).
#[tokio::test]
async fn export_prompts_and_import_prompts_carry_prompts_that_listings_show_only_when_asked() {
    let pair = live_pair!();
    let name = unique("qa");
    prompt("make", &pair.src.uri, &name).await;
    let want = prompt("load", &pair.src.uri, &name).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prompts.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-prompts",
        "--src-uri",
        &pair.src.uri,
        "--prompts",
        &name,
        "-o",
    ])
    .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("1 prompts with 2 versions"), "{err}");
    let mut cmd = cli();
    cmd.args(["import-prompts", "--dst-uri", &pair.dst.uri, "-i"])
        .arg(&path);
    let out = output(cmd).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(prompt("load", &pair.dst.uri, &name).await, want);

    for (flag, listed) in [(true, true), (false, false)] {
        let mut cmd = cli();
        cmd.args([
            "list-registered-models",
            "--src-uri",
            &pair.dst.uri,
            "-o",
            "-",
        ]);
        if flag {
            cmd.arg("--prompts");
        }
        let out = output(cmd).await;
        assert!(out.status.success());
        let json = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            json.contains(&format!("\"{name}\"")),
            listed,
            "--prompts {flag}: {json}"
        );
    }
    // A registered model is not a prompt.
    let mut cmd = cli();
    let model = crate::models::make_model(&crate::util::client(&pair.src.uri))
        .await
        .0;
    cmd.args([
        "export-prompts",
        "--src-uri",
        &pair.src.uri,
        "--prompts",
        &model,
        "-o",
    ])
    .arg(dir.path().join("x.mlar"));
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a prompt"),
        "{err}"
    );
}

/// A prompt is not imported over a registered model of the same name (MLflow's own client
/// refuses that too: the model would become a prompt and leave the model searches), and a
/// server is not copied into itself.
#[tokio::test]
async fn a_prompt_does_not_replace_a_model_and_copy_all_into_itself_is_refused() {
    let pair = live_pair!();
    let name = unique("clash");
    prompt("make", &pair.src.uri, &name).await;
    let dst = crate::util::client(&pair.dst.uri);
    dst.create_registered_model(&name, Some("a model"), &[])
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.mlar");
    let mut cmd = cli();
    cmd.args([
        "export-prompts",
        "--src-uri",
        &pair.src.uri,
        "--prompts",
        &name,
        "-o",
    ])
    .arg(&path);
    assert!(output(cmd).await.status.success());
    let mut cmd = cli();
    cmd.args(["import-prompts", "--dst-uri", &pair.dst.uri, "-i"])
        .arg(&path);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("is a registered model"),
        "{err}"
    );
    let model = dst.get_registered_model(&name).await.unwrap();
    assert_eq!(model.description, "a model");
    assert!(
        model
            .tags
            .iter()
            .all(|t| t.key != "mlflow.prompt.is_prompt")
    );

    let mut cmd = cli();
    cmd.args([
        "copy-all",
        "--src-uri",
        &pair.src.uri,
        "--dst-uri",
        &pair.src.uri,
    ]);
    let out = output(cmd).await;
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("into itself"),
        "{err}"
    );
}
