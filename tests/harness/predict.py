"""Loads a registered model with MLflow's own client and prints its answers, for the store tests.

Usage: python predict.py TRACKING_URI MODEL_URI...

Loads each MODEL_URI (models:/NAME/VERSION, models:/NAME@ALIAS) with mlflow.pyfunc.load_model
(MLflow reads the artifacts from wherever the version's source points: the store settings come
from the environment, as for populate.py) and prints, as JSON, each URI's predictions for one
fixed input, so that a test compares what the source and the destination answer.
"""

import contextlib
import json
import sys

import mlflow
import mlflow.pyfunc
import pandas as pd


def main() -> int:
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    uri, model_uris = sys.argv[1], sys.argv[2:]
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    data = pd.DataFrame({"x": [1.0, 2.5, -3.0], "y": [0.0, 10.0, 0.5]})
    answers = {}
    for model_uri in model_uris:
        # Only the answers go to stdout.
        with contextlib.redirect_stdout(sys.stderr):
            out = mlflow.pyfunc.load_model(model_uri).predict(data)
        if isinstance(out, pd.DataFrame):
            out = out.to_dict(orient="list")
        elif hasattr(out, "tolist"):
            out = out.tolist()
        answers[model_uri] = out
    print(json.dumps(answers, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
