"""A stand-in for Databricks workspaces, built from Databricks' published REST API documentation and MLflow's own Databricks client code: it is NOT Databricks, and nothing here was checked against a real workspace.

Usage:
  python databricks_standin.py --mlflow http://127.0.0.1:M --s3 http://127.0.0.1:S \
      [--bucket dbx] [--workspaces 2] [--state DIR] [--ports P1,P2,...,PS]

`--mlflow` is a real `mlflow server` started with workspaces (`MLFLOW_ENABLE_WORKSPACES=true`),
a sqlite store and `--no-serve-artifacts`; `--s3` is a moto server. The stand-in listens on one
port per Databricks workspace and one for the S3 front (free ports unless `--ports` names them,
0 meaning any), and once all listen prints one JSON line to stdout:
  {"workspaces": [{"host": "http://127.0.0.1:P1", "workspace_id": "1111111111111111"}, ...],
   "s3_front": "http://127.0.0.1:PS", "control": "http://127.0.0.1:P1/_standin"}
It runs until killed. What it answers, and what is inferred or left out: dbx_standin/__init__.py.
"""

import argparse
import json
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dbx_standin.app import App  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mlflow", required=True)
    p.add_argument("--s3", required=True)
    p.add_argument("--bucket", default="dbx")
    p.add_argument("--workspaces", type=int, default=2)
    p.add_argument("--state", default=None)
    p.add_argument("--ports", default=None)
    args = p.parse_args()
    count = args.workspaces
    ports = [int(x) for x in args.ports.split(",")] if args.ports else [0] * (count + 1)
    if len(ports) != count + 1:
        p.error(f"--ports needs {count + 1} ports: one per workspace and the S3 front")
    if args.state:
        os.makedirs(args.state, exist_ok=True)
    app = App(args.mlflow, args.s3, args.bucket, count, args.state)
    app.start(ports)
    hosts = [{"host": w.host, "workspace_id": w.workspace_id} for w in app.state.workspaces]
    print(
        json.dumps(
            {
                "workspaces": hosts,
                "s3_front": app.s3_front_url,
                "control": f"{hosts[0]['host']}/_standin",
            }
        ),
        flush=True,
    )
    threading.Event().wait()


if __name__ == "__main__":
    main()
