"""Scaled data sets for benches/transfer.sh (--set small | large), logged through MLflow's Python
client, several runs at once (threads) so that populating the large set takes minutes, not an hour.

One experiment "bench/<set>" with parent runs and nested children. Every run has params, tags,
several metric histories (noisy loss/accuracy curves, so they compress like real ones), a handful
of small files in two directories (text and JSON, a few KiB each), and a `model/MLmodel` file. A
few runs hold one large file each (incompressible bytes, like model weights). Registered models
have many versions, each pointing at one run's `model` directory, with stages, aliases and tags.

    set     runs  metrics x steps  points     small files  large files    models x versions
    small     25     4 x 500        50,000       ~200       1 x 10 MiB     1 x 12
    large    500     5 x 600     1,500,000      ~3,500       4 x 50 MiB     3 x 30

Usage: MLFLOW_TRACKING_URI=<server> python scale_data.py SET SCRATCH_DIR
"""

import concurrent.futures
import json
import logging
import math
import os
import random
import shutil
import sys
import time
import warnings

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")

SETS = {
    "small": dict(runs=25, metrics=4, steps=500, files=6, large=1, large_mib=10, models=1, versions=12),
    "large": dict(runs=500, metrics=5, steps=600, files=6, large=4, large_mib=50, models=3, versions=30),
}
METRIC_NAMES = ["loss", "val_loss", "accuracy", "val_accuracy", "learning_rate", "grad_norm"]
BASE_MS = 1_700_000_000_000


def small_files(d, rng, n, i):
    """n small files in two directories: CSV-like text and JSON, 1-8 KiB each."""
    os.makedirs(os.path.join(d, "eval"), exist_ok=True)
    os.makedirs(os.path.join(d, "plots", "data"), exist_ok=True)
    for k in range(n):
        rows = rng.randint(20, 160)
        if k % 2 == 0:
            path = os.path.join(d, "eval", f"fold-{k}.csv")
            with open(path, "w") as f:
                f.write("row,label,score,weight\n")
                for r in range(rows):
                    f.write(f"{r},{rng.randint(0, 9)},{rng.random():.6f},{rng.random():.3f}\n")
        else:
            path = os.path.join(d, "plots", "data", f"curve-{k}.json")
            with open(path, "w") as f:
                json.dump({"run": i, "points": [[r, round(rng.random(), 5)] for r in range(rows)]}, f)
    with open(os.path.join(d, "summary.txt"), "w") as f:
        f.write(f"run {i}: trained for a while\n")
    os.makedirs(os.path.join(d, "model"), exist_ok=True)
    with open(os.path.join(d, "model", "MLmodel"), "w") as f:
        f.write(f"artifact_path: model\nflavors: {{}}\nrun_index: {i}\n")


def log_run(client, exp_id, spec, i, parent_id, scratch):
    rng = random.Random(i)
    tags = {f"tag_{k}": f"value {k} of run {i}" for k in range(8)}
    tags["mlflow.user"] = "bench"
    if parent_id:
        tags["mlflow.parentRunId"] = parent_id
    start = BASE_MS + i * 3_600_000
    run = client.create_run(exp_id, start_time=start, run_name=f"run-{i:04d}", tags=tags)
    rid = run.info.run_id
    params = [Param(f"param_{k}", str(rng.choice([0.1, 0.01, 32, 64, "adam", "sgd"]))) for k in range(15)]
    client.log_batch(rid, params=params, tags=[RunTag("phase", "train")])
    steps, batch = spec["steps"], []
    for m in METRIC_NAMES[: spec["metrics"]]:
        level, decay = rng.uniform(0.5, 2.0), rng.uniform(50, 400)
        for s in range(steps):
            v = level * math.exp(-s / decay) + rng.gauss(0, 0.01)
            batch.append(Metric(m, v, start + s * 1000, s))
            if len(batch) == 1000:
                client.log_batch(rid, metrics=batch)
                batch = []
    if batch:
        client.log_batch(rid, metrics=batch)
    d = os.path.join(scratch, f"run-{i}")
    small_files(d, rng, spec["files"], i)
    client.log_artifacts(rid, d)
    shutil.rmtree(d)
    client.set_terminated(rid, status="FINISHED", end_time=start + steps * 1000)
    return rid


def log_large(client, rid, scratch, mib, k):
    path = os.path.join(scratch, f"weights-{k}.bin")
    with open(path, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    client.log_artifact(rid, path, "weights")
    os.remove(path)


def main():
    set_name, scratch = sys.argv[1], sys.argv[2]
    spec = SETS[set_name]
    client = MlflowClient()
    t0 = time.time()
    exp_id = client.create_experiment(f"bench/{set_name}", tags={"mlflow.note.content": f"{set_name} set"})
    # One parent per 25 runs; the others are its children (the first of each group is the parent).
    parents = {}
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        for g in range(0, spec["runs"], 25):
            parents[g] = pool.submit(log_run, client, exp_id, spec, g, None, scratch)
        run_ids = {g: f.result() for g, f in parents.items()}
        futures = {
            i: pool.submit(log_run, client, exp_id, spec, i, run_ids[i - i % 25], scratch)
            for i in range(spec["runs"])
            if i % 25
        }
        for i, f in futures.items():
            run_ids[i] = f.result()
        big = [pool.submit(log_large, client, run_ids[k], scratch, spec["large_mib"], k) for k in range(spec["large"])]
        for f in big:
            f.result()
    points = spec["runs"] * spec["metrics"] * spec["steps"]
    print(f"   {spec['runs']} runs, {points} points, {spec['large']} x {spec['large_mib']} MiB, "
          f"logged in {time.time() - t0:.0f} s")

    t0 = time.time()
    for m in range(spec["models"]):
        name = f"bench-{set_name}-model-{m}"
        client.create_registered_model(name, description=f"model {m}", tags={"owner": "bench"})
        for v in range(1, spec["versions"] + 1):
            rid = run_ids[(m * 7 + v) % spec["runs"]]
            client.create_model_version(
                name, f"runs:/{rid}/model", run_id=rid, description=f"build {v}", tags={"build": str(v)}
            )
        client.transition_model_version_stage(name, str(spec["versions"]), "Production")
        client.transition_model_version_stage(name, str(spec["versions"] - 1), "Staging")
        client.set_registered_model_alias(name, "champion", str(spec["versions"]))
    print(f"   {spec['models']} models x {spec['versions']} versions in {time.time() - t0:.0f} s")


main()
