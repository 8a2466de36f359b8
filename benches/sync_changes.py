"""Changes to a bench source for benches/sync.sh, logged through MLflow's Python client.

    python sync_changes.py running SET SCRATCH   # one more run, left RUNNING
    python sync_changes.py change SET SCRATCH    # five new runs, and the running run finished

The new runs are shaped like the set's own (benches/scale_data.py: params, tags, metric
histories, small files); their indexes follow the set's.

Usage: MLFLOW_TRACKING_URI=<server> python sync_changes.py running|change SET SCRATCH_DIR
"""

import os
import sys

# scale_data.py ends by running its own main(): load its definitions without that call (its text
# is also the key of the cached sets, so it stays as it is).
_here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_here, "scale_data.py")) as _f:
    _text = _f.read()
scale_data = type(sys)("scale_data")
exec(compile(_text[: _text.rindex("main()")], "scale_data.py", "exec"), scale_data.__dict__)
args = sys.argv[1:]

from mlflow import MlflowClient  # noqa: E402


def main():
    what, set_name, scratch = args
    spec = scale_data.SETS[set_name]
    client = MlflowClient()
    exp_id = client.get_experiment_by_name(f"bench/{set_name}").experiment_id
    first = spec["runs"] + 1000
    if what == "running":
        rid = scale_data.log_run(client, exp_id, spec, first, None, scratch)
        client.update_run(rid, status="RUNNING")
        print(rid)
    elif what == "change":
        for i in range(first + 1, first + 6):
            scale_data.log_run(client, exp_id, spec, i, None, scratch)
        run = client.search_runs([exp_id], filter_string=f"attributes.run_name = 'run-{first:04d}'")[0]
        client.set_terminated(run.info.run_id, status="FINISHED")
    else:
        raise SystemExit(f"unknown change {what}")


main()
