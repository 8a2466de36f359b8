"""The demo's closing summary: what the source holds and what each import or copy produced on the
destination, read back through MLflow's own Python client (not through mlflow-archive).

Usage: MLFLOW_TRACKING_URI=<source> python demo_summary.py <destination-uri>
"""

import logging
import sys
import warnings

from mlflow import MlflowClient

logging.getLogger("mlflow").setLevel(logging.ERROR)
warnings.filterwarnings("ignore")
src = MlflowClient()
dst = MlflowClient(tracking_uri=sys.argv[1])


def files(c, run_id, path=None):
    out = []
    for f in c.list_artifacts(run_id, path):
        out += files(c, run_id, f.path) if f.is_dir else [(f.path, f.file_size)]
    return out


def experiment(c, name):
    """(runs, params, metric points, artifact files, artifact bytes, (name, start, end, status) per run)."""
    e = c.get_experiment_by_name(name)
    if e is None:
        return None
    runs = c.search_runs([e.experiment_id], max_results=1000)
    points = sum(len(c.get_metric_history(r.info.run_id, k)) for r in runs for k in r.data.metrics)
    arts = [f for r in runs for f in files(c, r.info.run_id)]
    times = sorted((r.info.run_name, r.info.start_time, r.info.end_time, r.info.status) for r in runs)
    return len(runs), sum(len(r.data.params) for r in runs), points, len(arts), sum(s for _, s in arts), times


def model(c, name):
    versions = c.search_model_versions(f"name='{name}'")
    m = c.get_registered_model(name)
    return sorted(
        (int(v.version), v.current_stage, v.description, own_tags(v.tags)) for v in versions
    ), sorted(m.aliases.items())


def own_tags(tags):
    # mlflow_archive.* tags are the import's own markers (the source version number, for resuming).
    return tuple(sorted((k, v) for k, v in tags.items() if not k.startswith("mlflow_archive.")))


a = experiment(src, "demo/wine-quality")
print(f"   {'':28} {'runs':>4} {'params':>6} {'points':>6} {'files':>5} {'bytes':>6}  same as the source?")
print(f"   {'source demo/wine-quality':28} {a[0]:>4} {a[1]:>6} {a[2]:>6} {a[3]:>5} {a[4]:>6}")
for how, name in [("imported", "demo/wine-quality"), ("piped", "demo/piped"), ("copied", "demo/copied")]:
    b = experiment(dst, name)
    if b is None:
        print(f"   {how + ' ' + name:28} missing")
        continue
    same = "yes, start/end times and status too" if a == b else "NO"
    print(f"   {how + ' ' + name:28} {b[0]:>4} {b[1]:>6} {b[2]:>6} {b[3]:>5} {b[4]:>6}  {same}")
(sv, sa), (dv, da) = model(src, "demo-wine"), model(dst, "demo-wine")
numbers = ", ".join(str(v[0]) for v in dv)
print(f"   model demo-wine: source versions {', '.join(str(v[0]) for v in sv)}")
print(f"   model demo-wine: copied versions {numbers}; aliases {dict(da)}")
same = (sv, sa) == (dv, da)
print(f"   versions, stages, descriptions, tags and aliases the same: {'yes' if same else 'NO'}")
if not same:
    print(f"   first difference: {next(((x, y) for x, y in zip(sv + [sa], dv + [da]) if x != y), None)}")
