"""Sample data for scripts/demo.sh, logged the way MLflow users log it (MLflow's Python client).

One experiment with a parent run and nested children, metric histories, params, tags, a dataset
input and artifacts, and a registered model with twelve versions (so 10, 11 and 12 must sort after
9), one of them deleted, with stages, an alias and tags.
"""

import logging
import math
import os
import tempfile
import warnings

import mlflow
from mlflow import MlflowClient

logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=FutureWarning)
client = MlflowClient()
exp_name = "demo/wine-quality"
exp = client.get_experiment_by_name(exp_name)
exp_id = exp.experiment_id if exp else client.create_experiment(
    exp_name, tags={"mlflow.note.content": "Sample experiment for the mlflow-archive demo", "team": "demo"}
)

parent = client.create_run(exp_id, run_name="sweep", tags={"mlflow.user": "demo"})
run_ids = []
for i, alpha in enumerate([0.1, 0.5, 1.0]):
    run = client.create_run(
        exp_id,
        run_name=f"alpha-{alpha}",
        tags={"mlflow.parentRunId": parent.info.run_id, "mlflow.user": "demo"},
    )
    rid = run.info.run_id
    client.log_param(rid, "alpha", str(alpha))
    client.log_param(rid, "l1_ratio", "0.5")
    for step in range(200):
        client.log_metric(rid, "rmse", 1.0 / (step + 1) + alpha, step=step)
    client.log_metric(rid, "odd", math.nan, step=0)
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "model"))
        with open(os.path.join(d, "model", "MLmodel"), "w") as f:
            f.write(f"artifact_path: model\nrun_id: {rid}\nflavors: {{}}\n")
        with open(os.path.join(d, "notes with spaces.txt"), "w") as f:
            f.write("alpha=%s\n" % alpha)
        client.log_artifacts(rid, d)
    client.set_terminated(rid, status="FINISHED" if i < 2 else "FAILED")
    run_ids.append(rid)
client.set_terminated(parent.info.run_id)

name = "demo-wine"
try:
    client.get_registered_model(name)
except Exception:
    client.create_registered_model(name, description="ElasticNet on wine quality", tags={"owner": "demo"})
    for v in range(1, 13):
        rid = run_ids[v % 3]
        client.create_model_version(
            name, f"runs:/{rid}/model", run_id=rid, description=f"build {v}", tags={"build": str(v)}
        )
    client.delete_model_version(name, "5")
    client.transition_model_version_stage(name, "11", "Production")
    client.transition_model_version_stage(name, "12", "Staging")
    client.set_registered_model_alias(name, "champion", "11")
print(f"   experiment {exp_name!r}: {len(run_ids) + 1} runs; model {name!r}: 11 versions (v5 deleted)")
