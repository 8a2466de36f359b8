"""Writes the hand-made trees of this directory (run from it: python3 make_classic.py), in the
layouts mlflow-export-import wrote before file version 2, as its code of the time did; those
versions are not on PyPI, so the tool itself cannot write them here."""
import json
import os


def w(path, obj):
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)


def run(d, rid, exp, name, parent=None, status="FINISHED", i=0):
    tags = {"mlflow.runName": name, "mlflow.source.type": "LOCAL", "mlflow.user": "andre"}
    if parent:
        tags["mlflow.parentRunId"] = parent
    w(f"{d}/{rid}/run.json", {
        "info": {"run_uuid": rid, "run_id": rid, "experiment_id": exp, "user_id": "andre",
                 "status": status, "start_time": 1563572639000 + i, "end_time": 1563572645000 + i,
                 "lifecycle_stage": "active", "artifact_uri": f"/opt/mlflow/mlruns/{exp}/{rid}/artifacts"},
        "params": {"max_depth": str(16 + i), "max_leaf_nodes": "32"},
        "metrics": {"mae": 0.5845562996214364 + i, "r2": float("nan") if i == 1 else 0.28719674214710467},
        "tags": dict(sorted(tags.items()))})
    os.makedirs(f"{d}/{rid}/artifacts/sklearn-model", exist_ok=True)
    with open(f"{d}/{rid}/artifacts/sklearn-model/MLmodel", "w") as f:
        f.write(f"artifact_path: sklearn-model\nflavors: {{}}\nrun_id: {rid}\n")
    with open(f"{d}/{rid}/artifacts/plot.txt", "w") as f:
        f.write(f"run {name}\n")


r1, r2 = "50fa90e751eb4b3f9ba9cef0efe8ea30", "f4eaa7ddbb7c41148fe03c530d9b486f"
exp = {"experiment_id": "2", "name": "sklearn_wine", "artifact_location": "/opt/mlflow/mlruns/2",
       "lifecycle_stage": "active"}
# A classic experiment export.
run("experiment", r1, "2", "parent", i=0)
run("experiment", r2, "2", "child", parent=r1, status="FAILED", i=1)
w("experiment/manifest.json", {"experiment": exp, "export_info": {"export_time": "2020-09-10 20:23:45", "num_runs": 2},
                               "run_ids": [r1, r2], "failed_run_ids": []})
# A classic export list, with the README's run-ids spelling.
run("list/2", r1, "2", "parent", i=0)
w("list/2/manifest.json", {"experiment": exp, "export_info": {"export_time": "2020-09-10 20:23:45", "num_runs": 1},
                           "run-ids": [r1], "failed_run-ids": []})
w("list/manifest.json", {"info": {"mlflow_version": "1.11.0", "mlflow_tracking_uri": "http://localhost:5000",
                                  "export_time": "2020-09-10 20:23:45"},
                         "experiments": [{"id": "2", "name": "sklearn_wine"}]})
# A classic model export: latest_versions only, timestamps as strings.
run("model", r1, "2", "parent", i=0)
w("model/model.json", {"registered_model": {
    "name": "sklearn_wine", "creation_timestamp": "1587517284168", "last_updated_timestamp": "1587572072601",
    "description": "hi my desc",
    "latest_versions": [{"name": "sklearn_wine", "version": "1", "creation_timestamp": "1587517284216",
                         "current_stage": "Production",
                         "source": f"file:///opt/mlflow/mlruns/2/{r1}/artifacts/sklearn-model",
                         "run_id": r1, "status": "READY", "run_link": "",
                         "artifact_uri": f"file:///opt/mlflow/mlruns/2/{r1}/artifacts"}],
    "tags": [{"key": "k", "value": "v"}]}})
# The 1.1.x files: no sections, full histories, experiment.json listing export_info.ok_runs.
rid = r1
w(f"intermediate/{rid}/run.json", {
    "export_info": {"mlflow_version": "1.30.0", "export_time": "2022-11-20 10:00:00"},
    "info": {"run_uuid": rid, "run_id": rid, "experiment_id": "2", "user_id": "andre", "status": "FINISHED",
             "start_time": 1668938400000, "end_time": 1668938460000, "lifecycle_stage": "active",
             "artifact_uri": "x"},
    "params": {"alpha": "0.5"},
    "metrics": {"rmse": [{"value": 0.9, "timestamp": 1668938401000, "step": 0},
                         {"value": 0.7, "timestamp": 1668938402000, "step": 1},
                         {"value": float("inf"), "timestamp": 1668938403000, "step": 2}]},
    "tags": {"mlflow.runName": "intermediate"}})
os.makedirs(f"intermediate/{rid}/artifacts", exist_ok=True)
with open(f"intermediate/{rid}/artifacts/notes.txt", "w") as f:
    f.write("1.1.x\n")
w("intermediate/experiment.json", {
    "export_info": {"mlflow_version": "1.30.0", "export_time": "2022-11-20 10:00:00", "num_total_runs": 1,
                    "num_ok_runs": 1, "ok_runs": [rid], "num_failed_runs": 0, "failed_runs": []},
    "experiment": {"experiment_id": "2", "name": "sklearn_wine", "artifact_location": "x", "lifecycle_stage": "active",
                   "tags": {"team": "ds"}, "creation_time": 1668938000000, "last_update_time": 1668938000000}})
