"""A small server for the legacy fixtures (tests/data/legacy/make_fixtures.sh), logged with MLflow's
Python client: experiment "fixture/wine" (a parent run with two children, one of them with a child
of its own; metric histories with NaN and repeated steps; params; tags; a dataset input; artifacts
with an MLmodel, an empty file and a unicode name; a logged model produced by a run) and registered
model "fixture-model" (versions 1, 3 and 4: version 2 deleted; stages, an alias, tags).
"""

import logging
import math
import os
import tempfile
import warnings

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric

logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")
c = MlflowClient()
exp = c.create_experiment("fixture/wine", tags={"team": "fixtures", "mlflow.note.content": "legacy fixtures"})


def run(name, parent=None, status="FINISHED", i=0):
    tags = {"mlflow.user": "fixture", "kind": name}
    if parent:
        tags["mlflow.parentRunId"] = parent
    r = c.create_run(exp, run_name=name, tags=tags, start_time=1_700_000_000_000 + i * 1000)
    rid = r.info.run_id
    points = [Metric("loss", 1.0 / (s + 1) + i, 1_700_000_000_000 + s, s // 2) for s in range(20)]
    points.append(Metric("odd", math.nan, 1_700_000_000_000, 0))
    c.log_batch(rid, metrics=points, params=[mlflow.entities.Param("alpha", str(0.1 * (i + 1)))])
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "model"))
        with open(os.path.join(d, "model", "MLmodel"), "w") as f:
            f.write(f"artifact_path: model\nflavors: {{}}\nrun_id: {rid}\n")
        open(os.path.join(d, "empty.txt"), "w").close()
        os.makedirs(os.path.join(d, "dir with space"))
        with open(os.path.join(d, "dir with space", "ünï.txt"), "w", encoding="utf-8") as f:
            f.write(f"run {name}\n")
        c.log_artifacts(rid, d)
    c.set_terminated(rid, status=status, end_time=1_700_000_100_000 + i * 1000)
    return rid


parent = run("parent", i=0)
child = run("child", parent=parent, status="FAILED", i=1)
grandchild = run("grandchild", parent=child, i=2)
other = run("other child", parent=parent, i=3)

dataset = mlflow.data.from_numpy(__import__("numpy").array([[1.0, 2.0], [3.0, 4.0]]), source="https://example.com/wine.csv", name="wine")
with mlflow.start_run(run_id=child):
    mlflow.log_input(dataset, context="training")

lm = c.create_logged_model(exp, name="elasticnet", source_run_id=parent, params={"alpha": "0.1"}, tags={"flavor": "sklearn"})
c.finalize_logged_model(lm.model_id, mlflow.entities.LoggedModelStatus.READY)

c.create_registered_model("fixture-model", description="legacy fixture", tags={"owner": "fixtures"})
for v, rid in enumerate([parent, child, grandchild, other], start=1):
    c.create_model_version("fixture-model", f"runs:/{rid}/model", run_id=rid, description=f"build {v}", tags={"build": str(v)})
c.delete_model_version("fixture-model", "2")
c.transition_model_version_stage("fixture-model", "3", "Production")
c.set_registered_model_alias("fixture-model", "champion", "3")
print(f"fixture/wine: runs {parent} (parent), {child}, {grandchild}, {other}; logged model {lm.model_id}")
