"""Fills a tracking server through MLflow's own Python client, for the artifact-store tests.

Usage: python populate.py EXPERIMENT MODEL BIG_FILE_BYTES

MLFLOW_TRACKING_URI names the server; the store settings MLflow's artifact repositories read
(MLFLOW_S3_ENDPOINT_URL and AWS_*, AZURE_STORAGE_CONNECTION_STRING, STORAGE_EMULATOR_HOST) come
from the environment too, because with `--no-serve-artifacts` this client writes the store itself.

Creates the experiment EXPERIMENT with two runs:
- "files": params, metrics with a few steps, tags, and a tree of artifacts: data/big.bin
  (BIG_FILE_BYTES random bytes), data/empty.txt (empty), data/with space.txt, and
  data/nested/deeper/note.json;
- "model": params, a metric, tags, and a pyfunc model (a PythonModel that doubles its input;
  MLflow 3 keeps it as a logged model) registered as MODEL version 1 (source models:/m-…) with
  the alias "champion"; the same files copied into the run's artifacts under model/, registered
  as version 2 with that location as its source (how MLflow 2 registered models) and the alias
  "legacy".

Prints a JSON summary on stdout: the experiment (id, artifact_location), both runs (run_id,
artifact_uri), the artifacts of "files" with their sizes and SHA-256, the logged model
(model_id, artifact_location, model_uri) and both versions (source, run_id, aliases).
"""

import contextlib
import hashlib
import json
import os
import sys
import tempfile

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input * 2


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    # MLflow prints "View run … at …" on stdout: only the summary goes there.
    with contextlib.redirect_stdout(sys.stderr):
        summary = populate(sys.argv[1], sys.argv[2], int(sys.argv[3]))
    print(json.dumps(summary, indent=1, sort_keys=True))
    return 0


def populate(experiment: str, model: str, big: int) -> dict:
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(experiment)
    mlflow.set_experiment(experiment_id=experiment_id)

    files = {
        "data/big.bin": os.urandom(big),
        "data/empty.txt": b"",
        "data/with space.txt": b"a name with a space\n",
        "data/nested/deeper/note.json": b'{"note": "nested"}\n',
    }
    with mlflow.start_run(run_name="files") as run:
        mlflow.log_params({"lr": "0.01", "layers": "3"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        for step in range(3):
            mlflow.log_metric("acc", 0.5 + step / 10, step=step)
        mlflow.set_tags({"team": "stores", "kind": "files"})
        with tempfile.TemporaryDirectory() as d:
            for path, body in files.items():
                p = os.path.join(d, path)
                os.makedirs(os.path.dirname(p), exist_ok=True)
                with open(p, "wb") as f:
                    f.write(body)
            mlflow.log_artifacts(os.path.join(d, "data"), artifact_path="data")
        files_run = run.info.run_id

    with mlflow.start_run(run_name="model") as run:
        mlflow.log_param("kind", "doubler")
        mlflow.log_metric("score", 0.9)
        mlflow.set_tag("team", "stores")
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=Doubler(),
            # Given, so MLflow does not infer them (slow, and not what the tests look at).
            pip_requirements=[f"mlflow=={mlflow.__version__}"],
            registered_model_name=model,
        )
        # A model in the run's own artifacts, as MLflow 2 logged them (saved, then logged as
        # plain artifacts: no logged model, no model id).
        with tempfile.TemporaryDirectory() as d:
            saved = os.path.join(d, "model")
            mlflow.pyfunc.save_model(
                path=saved,
                python_model=Doubler(),
                pip_requirements=[f"mlflow=={mlflow.__version__}"],
            )
            mlflow.log_artifacts(saved, artifact_path="model")
        model_run = run.info.run_id
    client.set_registered_model_alias(model, "champion", "1")
    client.set_model_version_tag(model, "1", "stage", "tested")
    # Version 2 as MLflow 2 registered them: its source is a location inside the run's artifacts.
    run_source = client.get_run(model_run).info.artifact_uri + "/model"
    client.create_model_version(model, run_source, run_id=model_run)
    client.set_registered_model_alias(model, "legacy", "2")

    logged = client.get_logged_model(info.model_id)
    return {
        "experiment_id": experiment_id,
        "artifact_location": client.get_experiment(experiment_id).artifact_location,
        "runs": {
            name: {"run_id": rid, "artifact_uri": client.get_run(rid).info.artifact_uri}
            for name, rid in [("files", files_run), ("model", model_run)]
        },
        "files": {
            path: {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
            for path, body in files.items()
        },
        "logged_model": {
            "model_id": logged.model_id,
            "artifact_location": logged.artifact_location,
            "model_uri": info.model_uri,
        },
        "model": model,
        "versions": {
            v.version: {"source": v.source, "run_id": v.run_id, "aliases": sorted(v.aliases)}
            for v in (client.get_model_version(model, n) for n in ("1", "2"))
        },
    }


if __name__ == "__main__":
    sys.exit(main())
