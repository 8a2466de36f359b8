#!/usr/bin/env bash
# The main job end to end on an embedded default: starts two local MLflow servers (pinned version,
# sqlite, served artifacts), fills the first with sample data through MLflow's own Python client,
# lists its registered models, exports its experiment to an archive, inspects it, imports it into
# the second server (twice: the second import finds everything done), pipes export into import,
# copies the experiment and the registered model directly, and sums up what the second server now
# holds. Everything lives in a temporary directory removed at exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=$(scripts/ensure-venv.sh)
echo "== building mlflow-archive"
cargo build --locked --quiet
bin="$root/target/debug/mlflow-archive"

tmp=$(mktemp -d -t mlflow-archive-demo.XXXXXX)
source scripts/servers.sh
cleanup() {
  stop_servers
  rm -rf "$tmp"
}
trap cleanup EXIT

echo "== starting two local MLflow servers ($("$venv/bin/mlflow" --version))"
start_server src
src=$SERVER_URI
start_server dst
dst=$SERVER_URI
echo "   source $src, destination $dst"
echo "== adding sample data with MLflow's Python client"
MLFLOW_TRACKING_URI="$src" "$venv/bin/python" scripts/demo_data.py

echo "== mlflow-archive list-registered-models --src-uri $src -o $tmp/registered_models.json"
"$bin" list-registered-models --src-uri "$src" -o "$tmp/registered_models.json"
"$venv/bin/python" - "$tmp/registered_models.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
for m in doc["registered_models"]:
    aliases = {a["alias"]: a["version"] for a in m.get("aliases", [])}
    print(f"   {m['name']}: {len(m['versions'])} versions")
    for v in m["versions"]:
        extra = [f"stage {v['current_stage']}"] if v.get("current_stage", "None") != "None" else []
        extra += [f"alias {a}" for a in v.get("aliases", [])]
        print(f"     v{v['version']:>2}  run {v['run_id'][:8]}  {v.get('description', '')}{'  (' + ', '.join(extra) + ')' if extra else ''}")
PY
archive="$tmp/wine.mlar"
echo "== mlflow-archive export-experiment --src-uri $src --experiment demo/wine-quality -o $archive"
"$bin" export-experiment --src-uri "$src" --experiment demo/wine-quality -o "$archive"
echo "== mlflow-archive inspect $archive"
"$bin" inspect "$archive"
echo "== mlflow-archive import-experiment --dst-uri $dst -i $archive --experiment-name demo/wine-quality"
"$bin" import-experiment --dst-uri "$dst" -i "$archive" --experiment-name demo/wine-quality
echo "== the same import again: nothing is duplicated"
"$bin" import-experiment --dst-uri "$dst" -i "$archive" --experiment-name demo/wine-quality
echo "== export | import through a pipe, into a second experiment"
"$bin" export-experiment --src-uri "$src" --experiment demo/wine-quality -o - \
  | "$bin" import-experiment --dst-uri "$dst" -i - --experiment-name demo/piped
echo "== copy-experiment: server to server, nothing staged"
"$bin" copy-experiment --src-uri "$src" --dst-uri "$dst" --src-experiment demo/wine-quality \
  --dst-experiment-name demo/copied
echo "== copy-model: every version with its number, stage, alias and tags"
"$bin" copy-model --src-uri "$src" --dst-uri "$dst" --src-model demo-wine \
  --dst-experiment-name demo/model-runs
echo "== summary: the source and the destination, side by side"
MLFLOW_TRACKING_URI="$src" "$venv/bin/python" scripts/demo_summary.py "$dst"
echo "== compare: the source's experiment against the destination's, every run, point and file"
"$bin" compare --src-uri "$src" --dst-uri "$dst" --experiments demo/wine-quality
echo "== compare: the archive against the server it was imported into"
"$bin" compare "$archive" --dst-uri "$dst" --experiments demo/wine-quality --quiet && echo "   equal"
echo "== done"
