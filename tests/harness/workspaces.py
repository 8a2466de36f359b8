"""Fills, or reads back, MLflow workspaces of a server started with --enable-workspaces, through
MLflow's own Python client (it names the workspace with the header X-MLFLOW-WORKSPACE, from
MLFLOW_WORKSPACE).

Usage:
  python workspaces.py populate TAG WS [WS ...]   # MLFLOW_TRACKING_URI names the server
  python workspaces.py dump TAG WS [WS ...]

`populate` makes, in each workspace WS (created if missing): an experiment "exp-TAG" (the same
name in every workspace) with a run "r" (a param, a metric history, an artifact), a registered
model "model-TAG" whose version 1 comes from that run, and a prompt "prompt-TAG".
`dump` prints, per workspace, what MLflow's client sees there: experiments named *TAG* with their
runs (params, metric history, artifact contents), models with versions (run name, source
readable), prompts with their templates.
"""

import contextlib
import json
import os
import sys
import tempfile

import mlflow
import requests
from mlflow import MlflowClient


def use(ws):
    # No header is the default workspace on a server with workspaces, and the only way to talk
    # to a server without them (which refuses any workspace header).
    if ws == "default":
        os.environ.pop("MLFLOW_WORKSPACE", None)
    else:
        os.environ["MLFLOW_WORKSPACE"] = ws


def ensure_workspace(ws):
    if ws == "default":
        return
    uri = mlflow.get_tracking_uri().rstrip("/")
    r = requests.post(f"{uri}/api/3.0/mlflow/workspaces", json={"name": ws}, timeout=30)
    if r.status_code not in (200, 201) and "ALREADY_EXISTS" not in r.text:
        raise RuntimeError(r.text)


def populate(tag, workspaces):
    for ws in workspaces:
        ensure_workspace(ws)
        use(ws)
        client = MlflowClient()
        exp = client.create_experiment(f"exp-{tag}")
        with mlflow.start_run(experiment_id=exp, run_name="r") as run:
            mlflow.log_param("ws", ws)
            for i in range(5):
                mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
            with tempfile.TemporaryDirectory() as d:
                p = os.path.join(d, "note.txt")
                with open(p, "w") as f:
                    f.write(f"from {ws}")
                mlflow.log_artifact(p, "files")
        client.create_registered_model(f"model-{tag}", tags={"ws": ws})
        client.create_model_version(
            f"model-{tag}", f"runs:/{run.info.run_id}/files", run_id=run.info.run_id
        )
        mlflow.genai.register_prompt(name=f"prompt-{tag}", template=f"Hi from {ws} {{{{x}}}}")


def dump(tag, workspaces):
    out = {}
    for ws in workspaces:
        use(ws)
        client = MlflowClient()
        seen = {"experiments": {}, "models": {}, "prompts": {}}
        for e in client.search_experiments(filter_string=f"name LIKE '%{tag}%'"):
            runs = {}
            for r in client.search_runs([e.experiment_id]):
                with tempfile.TemporaryDirectory() as d:
                    path = client.download_artifacts(r.info.run_id, "files/note.txt", d)
                    note = open(path).read()
                runs[r.info.run_name] = {
                    "params": r.data.params,
                    "loss": [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "loss")],
                    "note": note,
                }
            seen["experiments"][e.name] = runs
        for m in client.search_registered_models(filter_string=f"name LIKE '%{tag}%'"):
            versions = {}
            for v in client.search_model_versions(f"name = '{m.name}'"):
                run = client.get_run(v.run_id)
                versions[v.version] = {"run": run.data.params.get("ws")}
            seen["models"][m.name] = {
                "tags": {k: v for k, v in m.tags.items() if not k.startswith("mlflow_archive.")},
                "versions": versions,
            }
        try:
            p = mlflow.genai.load_prompt(f"prompts:/prompt-{tag}/1")
            seen["prompts"][p.name] = p.template
        except Exception as e:  # noqa: BLE001 (absent: the dump says so)
            seen["prompts"]["error"] = type(e).__name__
        out[ws] = seen
    return out


def main():
    what, tag, workspaces = sys.argv[1], sys.argv[2], sys.argv[3:]
    # MLflow prints "View run … at …" on stdout: only the result goes there.
    with contextlib.redirect_stdout(sys.stderr):
        result = populate(tag, workspaces) if what == "populate" else dump(tag, workspaces)
    print(json.dumps(result, indent=1, sort_keys=True))


if __name__ == "__main__":
    sys.exit(main())
