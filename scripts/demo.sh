#!/usr/bin/env bash
# The main job end to end on an embedded default: starts two local MLflow servers (pinned version,
# sqlite, served artifacts), fills the first with sample data through MLflow's own Python client,
# lists its registered models, exports its experiment to an archive, inspects it, imports it into
# the second server (twice: the second import finds everything done), and pipes export into import. Everything lives in a temporary directory removed at exit.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=$(scripts/ensure-venv.sh)
echo "== building mlflow-archive"
cargo build --locked --quiet
bin="$root/target/debug/mlflow-archive"

tmp=$(mktemp -d -t mlflow-archive-demo.XXXXXX)
guards=()
cleanup() {
  for fd in "${guards[@]}"; do exec {fd}>&-; done   # closing a guard's input stops its server
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_server NAME: starts a server and sets SERVER_URI. (Not in a subshell: the guard's input must
# stay open in this shell for as long as the server is needed.)
start_server() {
  local dir="$tmp/$1" port fd
  mkdir -p "$dir"
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkfifo "$dir/guard"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false "$venv/bin/python" tests/harness/mlflow_server.py -- \
    "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --serve-artifacts --artifacts-destination "$dir/artifacts" \
    --workers 1 --allowed-hosts '127.0.0.1:*,localhost:*,127.0.0.1,localhost' \
    < "$dir/guard" > "$dir/server.log" 2>&1 &
  exec {fd}> "$dir/guard"
  guards+=("$fd")
  for _ in $(seq 240); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then
      SERVER_URI="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.5
  done
  echo "demo: mlflow server did not start; its log:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}

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
echo "== done"
