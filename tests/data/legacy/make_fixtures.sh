#!/usr/bin/env bash
# Writes the v2-layout fixtures under tests/data/legacy/v2/ with the real Python tool
# (mlflow-export-import 1.2.0 from PyPI, installed by scripts/ensure-venv.sh): starts a local server (scripts/servers.sh),
# fills it with fixture_data.py, and runs the tool's export-experiment, export-model, export-run,
# export-all and its two bulk exports: export-experiments (experiments.json and <id>/ at the top)
# and export-models (manifest.json, experiments/, models/). The trees are committed as they come
# out; run this again only to refresh them.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$root"
venv=$(scripts/ensure-venv.sh)
tmp=$(mktemp -d -t mlflow-archive-fixtures.XXXXXX)
source scripts/servers.sh
trap 'stop_servers; rm -rf "$tmp"' EXIT
start_server src
export MLFLOW_TRACKING_URI=$SERVER_URI
out="$root/tests/data/legacy/v2"
rm -rf "$out"
mkdir -p "$out"
"$venv/bin/python" tests/data/legacy/fixture_data.py | tee "$tmp/ids"
parent=$(sed -n 's/.*runs \([0-9a-f]*\) (parent).*/\1/p' "$tmp/ids")
"$venv/bin/export-experiment" --experiment fixture/wine --output-dir "$out/experiment"
"$venv/bin/export-model" --model fixture-model --output-dir "$out/model"
"$venv/bin/export-run" --run-id "$parent" --output-dir "$out/run"
"$venv/bin/export-all" --output-dir "$out/all"
"$venv/bin/export-experiments" --experiments all --output-dir "$out/experiments"
"$venv/bin/export-models" --models all --output-dir "$out/models"
du -sh "$out"
