"""Data for benches/transfer.sh --set big, logged through MLflow's Python client:
experiment "bench/big" with run "artifact" (one file of SIZE_MIB MiB, incompressible) and run
"history" (one metric of POINTS points, steps 0..POINTS-1).

Usage: MLFLOW_TRACKING_URI=<server> python big_data.py SIZE_MIB POINTS SCRATCH_DIR
"""

import logging
import os
import sys
import time
import warnings

from mlflow import MlflowClient
from mlflow.entities import Metric

logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")
size_mib, points, scratch = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = MlflowClient()
exp = c.create_experiment("bench/big")

run = c.create_run(exp, run_name="artifact")
path = os.path.join(scratch, "blob.bin")
with open(path, "wb") as f:
    for _ in range(size_mib):
        f.write(os.urandom(1 << 20))
t = time.time()
c.log_artifact(run.info.run_id, path, "data")
os.remove(path)
c.set_terminated(run.info.run_id)
print(f"   run 'artifact': data/blob.bin, {size_mib} MiB, logged in {time.time() - t:.1f} s")

run = c.create_run(exp, run_name="history")
t = time.time()
base = 1_700_000_000_000
for start in range(0, points, 1000):
    batch = [Metric("loss", 1.0 / (i + 1), base + i, i) for i in range(start, min(points, start + 1000))]
    c.log_batch(run.info.run_id, metrics=batch)
c.set_terminated(run.info.run_id)
print(f"   run 'history': metric 'loss', {points} points, logged in {time.time() - t:.1f} s")
