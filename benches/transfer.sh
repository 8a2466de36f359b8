#!/usr/bin/env bash
# End-to-end transfer benchmark: wall time and peak RSS (/usr/bin/time) of export, import, copy and
# export | import between two local MLflow servers (scripts/servers.sh: pinned version, sqlite,
# served artifacts, one worker), release build. Not part of CI.
#
#   bash benches/transfer.sh                    # the demo data set (scripts/demo_data.py)
#   bash benches/transfer.sh --set big          # one 1 GiB artifact and one 1 000 000-point history
#   bash benches/transfer.sh --set big --size-mib 256 --points 200000   # a smaller big set
#   ... --peer                                  # also the Python mlflow-export-import (PyPI) on the
#                                               # same servers (scripts/ensure-venv.sh installs it)
#   ... --jobs N                                # mlflow-archive's --jobs (default 4)
#   ... --bin PATH                              # another build of mlflow-archive (A/B comparisons)
#
# Prints a Markdown table (also written to target/bench-transfer-<set>.md). Every copy of the big
# artifact on the destination is checked byte for byte (sha256) against the source's.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
set_name=demo
size_mib=1024
points=1000000
peer=0
jobs=4
other_bin=
while [ $# -gt 0 ]; do
  case "$1" in
    --set) set_name=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    --peer) peer=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --bin) other_bin=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ -x /usr/bin/time ] || { sudo apt-get install -y time >/dev/null 2>&1 || apt-get install -y time >/dev/null; }
venv=$(scripts/ensure-venv.sh)
echo "== building mlflow-archive (release)"
cargo build --release --locked --quiet
bin="${other_bin:-$root/target/release/mlflow-archive}"

tmp=$(mktemp -d -t mlflow-archive-bench.XXXXXX)
source scripts/servers.sh
trap 'stop_servers; rm -rf "$tmp"' EXIT
start_server src
src=$SERVER_URI
start_server dst
dst=$SERVER_URI
echo "== source $src, destination $dst; data set '$set_name'"
case "$set_name" in
  demo)
    MLFLOW_TRACKING_URI="$src" "$venv/bin/python" scripts/demo_data.py
    experiment=demo/wine-quality ;;
  big)
    MLFLOW_TRACKING_URI="$src" "$venv/bin/python" benches/big_data.py "$size_mib" "$points" "$tmp"
    experiment=bench/big ;;
  *) echo "unknown set $set_name" >&2; exit 2 ;;
esac

results="$root/target/bench-transfer-$set_name.md"
{
  echo "| job | wall | peak RSS |"
  echo "|---|---|---|"
} > "$results"

# row LABEL WALL KIB
row() { printf '| %s | %.1f s | %.1f MiB |\n' "$1" "$2" "$(echo "$3 / 1024" | bc -l)" | tee -a "$results"; }

# measure LABEL CMD...: runs CMD under /usr/bin/time, adds a row (a failure is a row too).
measure() {
  local label=$1; shift
  if ! /usr/bin/time -f '%e %M' -o "$tmp/time" "$@" > "$tmp/out" 2> "$tmp/err"; then
    local why
    why=$(grep -v '^Command exited' "$tmp/err" | grep -E 'Error|error|Exception' | tail -1 | cut -c1-150)
    echo "| $label | failed: ${why:-see its output} | |" | tee -a "$results"
    tail -5 "$tmp/err" >&2
    return 0
  fi
  local wall kib; read -r wall kib < "$tmp/time"
  row "$label" "$wall" "$kib"
}

# measure_pipe LABEL "PRODUCER" "CONSUMER": both timed; the wall is the pipeline's.
measure_pipe() {
  local label=$1 t0 t1
  t0=$(date +%s.%N)
  if ! bash -c "/usr/bin/time -f '%e %M' -o '$tmp/t1' $2 2>'$tmp/e1' | /usr/bin/time -f '%e %M' -o '$tmp/t2' $3 2>'$tmp/e2'"; then
    echo "FAILED: $label" >&2; tail -5 "$tmp/e1" "$tmp/e2" >&2; return 1
  fi
  t1=$(date +%s.%N)
  local w1 k1 w2 k2; read -r w1 k1 < "$tmp/t1"; read -r w2 k2 < "$tmp/t2"
  row "$label (export side)" "$(echo "$t1 - $t0" | bc -l)" "$k1"
  row "$label (import side)" "$(echo "$t1 - $t0" | bc -l)" "$k2"
}

j=(--jobs "$jobs")
measure "mlflow-archive export-experiment" "$bin" "${j[@]}" export-experiment --src-uri "$src" \
  --experiment "$experiment" --export-deleted-runs -o "$tmp/a.mlar"
echo "   archive: $(stat -c %s "$tmp/a.mlar") bytes"
measure "mlflow-archive import-experiment" "$bin" "${j[@]}" import-experiment --dst-uri "$dst" \
  -i "$tmp/a.mlar" --experiment-name "$experiment-imported"
rm -f "$tmp/a.mlar"
measure "mlflow-archive copy-experiment" "$bin" "${j[@]}" copy-experiment --src-uri "$src" --dst-uri "$dst" \
  --src-experiment "$experiment" --dst-experiment-name "$experiment-copied" --export-deleted-runs
measure_pipe "mlflow-archive export -o - | import -i -" \
  "$bin ${j[*]} export-experiment --src-uri $src --experiment $experiment --export-deleted-runs -o -" \
  "$bin ${j[*]} import-experiment --dst-uri $dst -i - --experiment-name $experiment-piped"

if [ "$peer" = 1 ]; then
  export MLFLOW_TRACKING_URI
  # (1.2.0 has no --export-deleted-runs; the data sets have no deleted runs.)
  MLFLOW_TRACKING_URI="$src" measure "mlflow-export-import export-experiment" "$venv/bin/export-experiment" \
    --experiment "$experiment" --output-dir "$tmp/peer"
  echo "   staged on disk: $(du -sb "$tmp/peer" | cut -f1) bytes"
  MLFLOW_TRACKING_URI="$dst" measure "mlflow-export-import import-experiment" "$venv/bin/import-experiment" \
    --experiment-name "$experiment-peer" --input-dir "$tmp/peer"
  rm -rf "$tmp/peer"
fi

if [ "$set_name" = demo ]; then
  measure "mlflow-archive export-model" "$bin" "${j[@]}" export-model --src-uri "$src" --model demo-wine \
    -o "$tmp/m.mlar"
  measure "mlflow-archive import-model" "$bin" "${j[@]}" import-model --dst-uri "$dst" -i "$tmp/m.mlar" \
    --model demo-wine-imported --experiment-name demo/model-imported
  measure "mlflow-archive copy-model" "$bin" "${j[@]}" copy-model --src-uri "$src" --dst-uri "$dst" \
    --src-model demo-wine --dst-model demo-wine-copied --dst-experiment-name demo/model-copied
  if [ "$peer" = 1 ]; then
    MLFLOW_TRACKING_URI="$src" measure "mlflow-export-import export-model" "$venv/bin/export-model" \
      --model demo-wine --output-dir "$tmp/peer-model"
    MLFLOW_TRACKING_URI="$dst" measure "mlflow-export-import import-model" "$venv/bin/import-model" \
      --model demo-wine-peer --experiment-name demo/model-peer --input-dir "$tmp/peer-model"
  fi
fi

if [ "$set_name" = big ]; then
  want=$(find "$tmp/src/artifacts" -name blob.bin -exec sha256sum {} + | cut -d' ' -f1)
  n=0
  while read -r sum _; do
    [ "$sum" = "$want" ] || { echo "a copy of blob.bin differs from the source" >&2; exit 1; }
    n=$((n + 1))
  done < <(find "$tmp/dst/artifacts" -name blob.bin -exec sha256sum {} +)
  echo "   $n copies of data/blob.bin on the destination, each identical to the source (sha256)"
fi
echo "== results (also in $results)"
cat "$results"
