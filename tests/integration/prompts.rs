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
