#!/usr/bin/env bash
# What a `sync` costs against a full copy (issue 17), on the small or large set of
# benches/transfer.sh (populated once, cached under target/bench-data/):
#   1. sync into an empty destination: the full copy;
#   2. sync again, nothing changed;
#   3. one new run, left RUNNING at the source (a run still training), synced;
#   4. five new runs, and that run finished: synced;
#   5. copy-all again into the synced destination: what a second copy costs without sync (every
#      run read from the source, then found complete and skipped).
# Each step's time, requests to each server (counted by the client: --json), runs new, updated
# and unchanged, metric points and files sent. Results: target/bench-sync-<set>.md.
#
#   bash benches/sync.sh --set large
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
set_name=small
while [ $# -gt 0 ]; do
  case "$1" in
    --set) set_name=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case "$set_name" in small | large) ;; *) echo "--set small or large" >&2; exit 2 ;; esac
venv=$(scripts/ensure-venv.sh)
echo "== building mlflow-archive (release)"
cargo build --release --locked --quiet
bin="$root/target/release/mlflow-archive"
export SERVER_WORKERS=2
tmp=$(mktemp -d -t mlflow-archive-sync.XXXXXX)
source scripts/servers.sh
source benches/sets.sh
cleanup() {
  stop_servers
  rm -rf "$tmp"
}
trap cleanup EXIT

ensure_set "$set_name"
cp -a "$cache" "$tmp/src"
start_server src
src=$SERVER_URI
start_server dst
dst=$SERVER_URI
change() {
  MLFLOW_TRACKING_URI="$src" "$venv/bin/python" benches/sync_changes.py "$1" "$set_name" "$tmp" \
    | { grep -v 'View \(run\|experiment\)' || true; } > /dev/null
}

out="$root/target/bench-sync-$set_name.md"
{
  echo "| step | seconds | requests to source | requests to destination | runs new / updated / unchanged | metric points sent | files sent (bytes) |"
  echo "|---|---:|---:|---:|---|---:|---|"
} > "$out"
# step NAME ARGS...: runs mlflow-archive ARGS --json, timed, and adds a row.
step() {
  local name=$1 t0 t1
  shift
  t0=$(date +%s.%N)
  "$bin" --quiet "$@" --json > "$tmp/report.json"
  t1=$(date +%s.%N)
  "$venv/bin/python" - "$tmp/report.json" "$name" "$(echo "$t1 - $t0" | bc)" >> "$out" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
name, secs = sys.argv[2], float(sys.argv[3])
if "runs_new" in r:
    runs = f'{r["runs_new"]} / {r["runs_updated"]} / {r["runs_unchanged"]}'
    req = (r["requests_source"], r["requests_destination"])
    pts, files, b = r["metric_points"], r["artifacts"], r["artifact_bytes"]
else:  # copy-all's report: the requests are not counted there
    runs = f'{r["runs_imported"]} / - / {r["runs_skipped"]} (skipped after reading)'
    req = ("-", "-")
    pts, files, b = r["metric_points"], r["artifacts"], r["artifact_bytes"]
print(f"| {name} | {secs:.1f} | {req[0]} | {req[1]} | {runs} | {pts} | {files} ({b}) |")
PY
  tail -1 "$out"
}
echo "== $set_name set: sync $src -> $dst"
step "1. sync into an empty server (full copy)" sync --src-uri "$src" --dst-uri "$dst"
step "2. sync, nothing changed" sync --src-uri "$src" --dst-uri "$dst"
change running
step "3. one new run, still running" sync --src-uri "$src" --dst-uri "$dst"
change change
step "4. five new runs, the running one finished" sync --src-uri "$src" --dst-uri "$dst"
step "5. sync, nothing changed" sync --src-uri "$src" --dst-uri "$dst"
step "6. copy-all again (no sync)" copy-all --src-uri "$src" --dst-uri "$dst"
echo "== results in $out"
cat "$out"
