"""Drives the Databricks stand-in with MLflow's OWN Python client in Databricks mode (runs against
the stand-in, not a real workspace): whatever MLflow's client does must work against it.

Usage (the caller sets MLFLOW_TRACKING_URI=databricks, DATABRICKS_HOST and DATABRICKS_TOKEN, or
DATABRICKS_CLIENT_ID/_SECRET; MLFLOW_S3_ENDPOINT_URL = the stand-in's S3 front; AWS test keys):
  python dbx_client.py seed TAG USER [BIG] # prints JSON: what it made (BIG: size of large/big.bin)
  python dbx_client.py read TAG USER        # prints JSON: what MLflow reads back

`seed` makes, in the workspace: experiment /Users/USER/TAG/exp (after mkdirs of its parent)
with a run "r" (params, a metric history, artifacts in nested directories, an empty file, a
6 MiB file that goes through MLflow's multipart upload and ranged download: small thresholds
below) and a nested child run; a logged model "model" (pyfunc, with a signature) from run "r";
version 1 of the workspace registry model "ws-TAG" (registry URI databricks) from the logged
model, moved to Staging; version 1 of the Unity Catalog model "main.default.m_TAG" (registry URI
databricks-uc) from it, with an alias and tags.
`read` reads all of that back through MLflow only: the run's params, metrics and every artifact
(sha256), the logged model's files, the workspace-registry version's files (through
model-versions/list-artifacts + get-signed-download-uri) and the UC version's files (through
temporary credentials and the S3 front), each as {path: sha256}.
"""

import hashlib
import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient


class Model(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input


def tree(root):
    """{relative path: sha256} of the files under root, without `registered_model_meta` (MLflow
    writes that file into a local model directory when it downloads a registered model)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            if f == "registered_model_meta":
                continue
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = hashlib.sha256(
                    fh.read()
                ).hexdigest()
    return dict(sorted(out.items()))


def host_creds_mkdirs(path):
    """POST /api/2.0/workspace/mkdirs through MLflow's own Databricks request helper (the way
    mlflow-export-import prepares an experiment's parent)."""
    from mlflow.utils.databricks_utils import get_databricks_host_creds
    from mlflow.utils.rest_utils import http_request_safe

    creds = get_databricks_host_creds("databricks")
    http_request_safe(creds, "/api/2.0/workspace/mkdirs", "POST", json={"path": path})


# Small multipart thresholds, so MLflow's multipart upload (create-multipart-upload, part URLs,
# complete) and its ranged parallel download run on a 6 MiB file. AWS parts are at least 5 MiB.
os.environ.setdefault("MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
os.environ.setdefault("MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE", str(5 * 1024 * 1024))
os.environ.setdefault("MLFLOW_MULTIPART_DOWNLOAD_MINIMUM_FILE_SIZE", str(1024 * 1024))
os.environ.setdefault("MLFLOW_MULTIPART_DOWNLOAD_CHUNK_SIZE", str(1024 * 1024))
BIG = 6 * 1024 * 1024 + 123


def big_bytes(size=BIG):
    return bytes((i * 7 + i // 251) % 256 for i in range(size))


def seed(tag, user, big=BIG):
    exp_name = f"/Users/{user}/{tag}/exp"
    host_creds_mkdirs(os.path.dirname(exp_name))
    exp_id = mlflow.create_experiment(exp_name)
    mlflow.set_experiment(experiment_id=exp_id)
    with mlflow.start_run(run_name="r") as run:
        mlflow.log_params({"alpha": "0.5", "tag": tag})
        for i in range(3):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        with tempfile.TemporaryDirectory() as d:
            os.makedirs(os.path.join(d, "a", "b", "c"))
            with open(os.path.join(d, "top.txt"), "w") as f:
                f.write(f"top {tag}\n")
            with open(os.path.join(d, "a", "b", "c", "deep.bin"), "wb") as f:
                f.write(bytes(range(256)) * 4)
            open(os.path.join(d, "a", "empty.txt"), "w").close()
            mlflow.log_artifacts(d, "files")
        mlflow.log_text("just text", "notes/one.txt")
        with tempfile.TemporaryDirectory() as d:
            with open(os.path.join(d, "big.bin"), "wb") as f:
                f.write(big_bytes(big))
            mlflow.log_artifact(os.path.join(d, "big.bin"), "large")
        with mlflow.start_run(run_name="child", nested=True) as child:
            mlflow.log_param("child", "yes")
        import pandas as pd
        from mlflow.models import infer_signature

        frame = pd.DataFrame({"x": [1.0, 2.0]})
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Model(),
            signature=infer_signature(frame, frame),
            pip_requirements=["mlflow"],
        )
    # The workspace registry (asked for explicitly: MLflow 3's default under `databricks` is UC).
    mlflow.set_registry_uri("databricks")
    client = MlflowClient(registry_uri="databricks")
    ws_name = f"ws-{tag}"
    client.create_registered_model(
        ws_name, tags={"from": "mlflow"}, description="workspace registry"
    )
    # register_model creates the model first and carries on when it exists already.
    ws_mv = mlflow.register_model(info.model_uri, ws_name, tags={"v": "1"})
    client.transition_model_version_stage(ws_name, ws_mv.version, "Staging")
    # Unity Catalog: a model logged with a signature, a three-level name.
    mlflow.set_registry_uri("databricks-uc")
    uc = MlflowClient(registry_uri="databricks-uc")
    uc_name = f"main.default.m_{tag}"
    uc.create_registered_model(uc_name, description="uc model", tags={"team": "a"})
    uc_mv = mlflow.register_model(info.model_uri, uc_name, tags={"v": "1"})
    uc.set_registered_model_alias(uc_name, "champion", uc_mv.version)
    uc.set_model_version_tag(uc_name, uc_mv.version, "checked", "yes")
    print(
        json.dumps(
            {
                "experiment_id": exp_id,
                "experiment_name": exp_name,
                "run_id": run.info.run_id,
                "child_run_id": child.info.run_id,
                "artifact_uri": run.info.artifact_uri,
                "model_id": info.model_id,
                "model_uri": info.model_uri,
                "ws_model": ws_name,
                "ws_version": ws_mv.version,
                "ws_status": ws_mv.status,
                "uc_model": uc_name,
                "uc_version": uc_mv.version,
                "uc_status": uc_mv.status,
            }
        )
    )


def read(tag, user):
    client = MlflowClient()
    exp = client.get_experiment_by_name(f"/Users/{user}/{tag}/exp")
    runs = client.search_runs([exp.experiment_id], order_by=["attributes.start_time ASC"])
    [run] = [r for r in runs if r.info.run_name == "r"]
    [child] = [r for r in runs if r.info.run_name == "child"]
    out = {
        "experiment": {
            "name": exp.name,
            "tags": exp.tags,
            "artifact_location": exp.artifact_location,
        },
        "run": {
            "user_id": run.info.user_id,
            "mlflow_user": run.data.tags.get("mlflow.user"),
            "params": run.data.params,
            "loss": [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss")],
            "artifact_uri": run.info.artifact_uri,
        },
        "child": {
            "parent": child.data.tags.get("mlflow.parentRunId"),
            "params": child.data.params,
        },
    }
    with tempfile.TemporaryDirectory() as d:
        out["run"]["files"] = tree(client.download_artifacts(run.info.run_id, "", d))
    with tempfile.TemporaryDirectory() as d:
        out["run"]["files_dir"] = tree(client.download_artifacts(run.info.run_id, "files", d))
    out["run"]["listing"] = sorted(
        (f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run.info.run_id, "files/a")
    )
    [lm] = client.search_logged_models(experiment_ids=[exp.experiment_id])
    out["logged_model"] = {"model_id": lm.model_id, "artifact_location": lm.artifact_location}
    with tempfile.TemporaryDirectory() as d:
        out["logged_model"]["files"] = tree(
            mlflow.artifacts.download_artifacts(f"models:/{lm.model_id}", dst_path=d)
        )
    ws = MlflowClient(registry_uri="databricks")
    mv = ws.get_model_version(f"ws-{tag}", "1")
    out["ws_version"] = {
        "status": mv.status,
        "source": mv.source,
        "run_id": mv.run_id,
        "stage": mv.current_stage,
        "tags": mv.tags,
        "model_tags": ws.get_registered_model(f"ws-{tag}").tags,
    }
    with tempfile.TemporaryDirectory() as d:
        mlflow.set_registry_uri("databricks")
        out["ws_version"]["files"] = tree(
            mlflow.artifacts.download_artifacts(f"models:/ws-{tag}/1", dst_path=d)
        )
    uc = MlflowClient(registry_uri="databricks-uc")
    uc_name = f"main.default.m_{tag}"
    umv = uc.get_model_version(uc_name, "1")
    out["uc_version"] = {
        "status": umv.status,
        "source": umv.source,
        "run_id": umv.run_id,
        "aliases": umv.aliases,
        "tags": umv.tags,
        "model_tags": uc.get_registered_model(uc_name).tags,
        "listed": [m.name for m in uc.search_registered_models() if m.name == uc_name],
        "by_alias": uc.get_model_version_by_alias(uc_name, "champion").version,
        "search": [v.version for v in uc.search_model_versions(f"name = '{uc_name}'")],
    }
    with tempfile.TemporaryDirectory() as d:
        mlflow.set_registry_uri("databricks-uc")
        out["uc_version"]["files"] = tree(
            mlflow.artifacts.download_artifacts(f"models:/{uc_name}/1", dst_path=d)
        )
        loaded = mlflow.pyfunc.load_model(f"models:/{uc_name}@champion")
        import pandas as pd

        out["uc_version"]["predict"] = loaded.predict(pd.DataFrame({"x": [3.0]}))["x"].tolist()
    print(json.dumps(out, default=list))


def main():
    cmd, tag, user = sys.argv[1:4]
    if cmd == "seed" and len(sys.argv) > 4:
        # An optional size of large/big.bin (12 MiB makes mlflow-archive upload it in parts).
        seed(tag, user, int(sys.argv[4]))
        return
    {"seed": seed, "read": read}[cmd](tag, user)


if __name__ == "__main__":
    main()
