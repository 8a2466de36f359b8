"""Changes a tracking server through MLflow's own Python client, for the `compare` tests.

Usage: python tamper.py COMMAND ARGS... (MLFLOW_TRACKING_URI names the server)
  log-point RUN_ID KEY STEP TIMESTAMP VALUE   log one more point into a metric's history
  delete-artifact RUN_ID PATH                 delete one file of a run (served artifacts)
  set-version-tag MODEL VERSION KEY VALUE     set a tag on a model version
  delete-run RUN_ID                           delete a run
  set-trace-tag TRACE_ID KEY VALUE            set a tag on a trace
"""

import sys

from mlflow import MlflowClient
from mlflow.entities import Metric
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository


def main(argv):
    client = MlflowClient()
    cmd, args = argv[0], argv[1:]
    if cmd == "log-point":
        run_id, key, step, ts, value = args
        client.log_batch(run_id, metrics=[Metric(key, float(value), int(ts), int(step))])
    elif cmd == "delete-artifact":
        run_id, path = args
        root = client.get_run(run_id).info.artifact_uri
        get_artifact_repository(root).delete_artifacts(path)
    elif cmd == "set-version-tag":
        model, version, key, value = args
        client.set_model_version_tag(model, version, key, value)
    elif cmd == "set-trace-tag":
        trace_id, key, value = args
        client.set_trace_tag(trace_id, key, value)
    elif cmd == "delete-run":
        client.delete_run(args[0])
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv[1:])
