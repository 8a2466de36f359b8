"""Reads a Unity Catalog registered model with MLflow's OWN Python client in Databricks mode (runs
against the Databricks stand-in, not a real workspace), so that what mlflow-archive wrote into
Unity Catalog is checked the way MLflow reads it.

Usage (the caller sets MLFLOW_TRACKING_URI=databricks, DATABRICKS_HOST, DATABRICKS_TOKEN and
MLFLOW_S3_ENDPOINT_URL = the stand-in's S3 front, as `DatabricksStandin::mlflow_client` does):
  python uc_read.py CATALOG.SCHEMA.MODEL

Prints one JSON line: the model's description, tags and aliases ({alias: version}), and every
version (search by name, as MLflow's client does on Unity Catalog) with its status,
description, tags, run id, source, aliases and files ({path: base64 of the bytes}: the tests'
files are small), downloaded through `models:/NAME/VERSION`: temporary credentials and the S3
front.
"""

import base64
import json
import os
import sys
import tempfile

import mlflow
from mlflow import MlflowClient


def tree(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, root).replace(os.sep, "/")] = base64.b64encode(fh.read()).decode()
    return dict(sorted(out.items()))


def main():
    name = sys.argv[1]
    mlflow.set_registry_uri("databricks-uc")
    client = MlflowClient(registry_uri="databricks-uc")
    model = client.get_registered_model(name)
    out = {
        "name": model.name,
        "description": model.description or "",
        "tags": dict(model.tags),
        "aliases": dict(model.aliases),
        "versions": [],
    }
    versions = sorted(client.search_model_versions(f"name = '{name}'"), key=lambda v: int(v.version))
    for v in versions:
        full = client.get_model_version(name, v.version)
        with tempfile.TemporaryDirectory() as d:
            files = tree(mlflow.artifacts.download_artifacts(f"models:/{name}/{v.version}", dst_path=d))
        out["versions"].append(
            {
                "version": full.version,
                "status": full.status,
                "description": full.description or "",
                "tags": dict(full.tags),
                "run_id": full.run_id,
                "source": full.source,
                "aliases": sorted(full.aliases),
                "files": files,
            }
        )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
