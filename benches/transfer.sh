#!/usr/bin/env bash
# End-to-end transfer benchmark (issue step 5). Not part of CI. On the same pinned MLflow servers
# (sqlite, served artifacts, 2 workers each), side by side in one run, it measures:
#   - the floor: benches/src/floor.rs, a raw client sending only the requests each job needs, at
#     each concurrency --floor-jobs lists (comma-separated); each floor job's best is its row;
#   - mlflow-archive: export-all to an archive, import-all from it, export-all -o - | import-all
#     -i - through a pipe, copy-all;
#   - with --peer, the Python mlflow-export-import (PyPI, pinned by scripts/ensure-venv.sh), with
#     its defaults (sequential): export-all to a directory, import-experiments from it (its
#     import-all fails at the first model on servers with served artifacts).
# Every job gets a fresh, empty destination server. Each server sits behind benches/src/proxy.rs,
# which counts the requests each job sends (and, with --latency-ms D, delays each direction by D).
# Per job: wall time, peak RSS and bytes written to disk (/usr/bin/time: %e, %M, %O x 512) and
# requests (the proxies' counters); each try also prints the CPU seconds both servers spent on it.
# Then a table of ratios: ours / floor and peer / ours.
#
#   bash benches/transfer.sh --set large --peer       # the README table (about an hour with --peer)
#   bash benches/transfer.sh --set small --peer --latency-ms 20
#   bash benches/transfer.sh --set big                # one 1 GiB file and a 1,000,000-point history
#   bash benches/transfer.sh --set large --store both # proxied, then S3: the S3 / proxied table
#   options: --set small|large|big|demo  --jobs N|auto (mlflow-archive; auto: no --jobs, its
#            default, measured)  --floor-jobs N[,N...] (default 8,16,32)  --peer
#            --latency-ms D  --bin PATH (another mlflow-archive build, for A/B)  --only ours|floor|peer
#            --only compare: mlflow-archive's export and import (once), then `compare` of the
#            archive with the destination and of the two servers, each after what it is held
#            against: an export of the destination, both exported at once, and, each server
#            pinned to a core of its own (taskset, as on machines of their own), each one's
#            export and the compare (also part of a run without --only)
#            --only pipe: the floor's copy, mlflow-archive's export | import and copy-all
#            --repeat N: every job N times (a fresh destination before each), its row the median
#            wall (the floor: the median at each --floor-jobs, then the best of those), the
#            largest peak RSS and disk writes, the last try's requests; the tries in the row
#            --interleave (with --repeat N): the jobs run in N rounds, each job once a round, in
#            the usual order, instead of each job N times in a row, so that a box whose pace
#            drifts during the run (a shared machine; servers warming up) weighs on every job
#            alike; the rows are the same medians (the floor's: of each round's best --jobs)
#            --size-mib N --points N (the big set)  --store proxied|s3|both
#            --only archive: mlflow-archive's export and import alone (no pipe, no copy)
#            --only exim: the floor's export and import and mlflow-archive's export and import
#            (no copy, no pipe: the two jobs of an archive, each against its floor)
#            --floor-import-jobs N[,N...]: the floor's import at these instead of --floor-jobs
#            (at 100 ms its import at 32 fails on the server's "QueuePool limit": a try lost)
#            --only transfer: the floor's export, import and copy and mlflow-archive's export,
#            import, pipe and copy (a run without --only, less the compares)
#            --timeline DIR: each proxy appends its counters to DIR/proxy-<src|dst>.tsv every
#            250 ms (benches/src/proxy.rs), each try its label, start and end (Unix ms) to
#            DIR/tries.tsv and both servers' CPU ticks (every 0.5 s) to DIR/cpu.tsv, so a job's
#            phases can be read afterwards; it costs a few forks a second
#
# Each try's line also says how busy the job kept each server: the mean number of requests at
# it, and the share of the wall during which at least one and at least two were (the proxies
# count a request from its sending upstream to its response head).
#
# --store s3 (small and large sets) runs mlflow-archive's four jobs on servers whose artifacts are
# in S3 (moto_server, in memory, on loopback): `mlflow server --no-serve-artifacts
# --default-artifact-root s3://...`, every client reading and writing the bucket itself. The source
# is the same cached set: its artifacts uploaded to s3://bench-src/ under the same keys, and its
# sqlite copy rewritten to point there (benches/s3.py rewrite); its server has no local artifacts
# at all. Each destination gets a fresh prefix s3://bench-dst/<n>, and after each job that fills
# one, its files are checked against the source's (sha256 of every file). The floor and the peer
# run on proxied servers only. The proxies count the tracking requests; the requests column of an
# S3 job adds the S3 requests (moto's log). --store both runs the proxied pass, then the S3 pass,
# and adds a table "mlflow-archive on S3 / on proxied servers" per job, and moto's own pace for the
# same files (boto3 puts and gets, --jobs at once: the part of the S3 time that is the emulator's).
# moto_server and boto3 come from $MOTO_VENV (default: the venv of scripts/ensure-venv.sh).
#
# The small and large sets (benches/scale_data.py) are populated once and kept under
# target/bench-data/ (keyed by the generator's and the pin's hash); each run starts its source
# server on a fresh copy. Results: target/bench-transfer-<set>[-s3|-both][-latency<D>].md.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
set_name=small
size_mib=1024
points=1000000
peer=0
jobs=auto
floor_jobs=8,16,32
floor_import_jobs=
delay=0
only=
other_bin=
store=proxied
repeat=1
interleave=0
timeline=
while [ $# -gt 0 ]; do
  case "$1" in
    --set) set_name=$2; shift 2 ;;
    --size-mib) size_mib=$2; shift 2 ;;
    --points) points=$2; shift 2 ;;
    --peer) peer=1; shift ;;
    --jobs) jobs=$2; shift 2 ;;
    --floor-jobs) floor_jobs=$2; shift 2 ;;
    --floor-import-jobs) floor_import_jobs=$2; shift 2 ;;
    --latency-ms) delay=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --bin) other_bin=$2; shift 2 ;;
    --store) store=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --interleave) interleave=1; shift ;;
    --timeline) timeline=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || { echo "--repeat takes a count (1 or more)" >&2; exit 2; }
case "$store" in
  proxied) ;;
  s3 | both) case "$set_name" in small | large) ;; *) echo "--store $store needs --set small or large" >&2; exit 2 ;; esac ;;
  *) echo "unknown store $store (proxied, s3 or both)" >&2; exit 2 ;;
esac
[ -x /usr/bin/time ] || { sudo apt-get install -y time >/dev/null 2>&1 || apt-get install -y time >/dev/null; }
command -v bc >/dev/null || { sudo apt-get install -y bc >/dev/null 2>&1 || apt-get install -y bc >/dev/null; }
venv=$(scripts/ensure-venv.sh)
echo "== building mlflow-archive, the floor client and the proxy (release)"
cargo build --release --locked --quiet
(cd benches && cargo build --release --locked --quiet --bin floor --bin bench-proxy)
bin="${other_bin:-$root/target/release/mlflow-archive}"
floor="$root/target/release/floor"
proxy="$root/target/release/bench-proxy"
export SERVER_WORKERS=2

tmp=$(mktemp -d -t mlflow-archive-bench.XXXXXX)
source scripts/servers.sh
source benches/sets.sh
declare -A proxies=()
cleanup() {
  local p
  for p in "${proxies[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_servers
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_proxy NAME UPSTREAM_URI: a counting (and delaying) proxy in front of it; sets PROXY_URI.
start_proxy() {
  local name=$1 pf="$tmp/proxy-$1.port"
  [ -z "${proxies[$name]:-}" ] || kill "${proxies[$name]}" 2>/dev/null || true
  rm -f "$pf"
  (without_guards "$proxy" --upstream "$2" --delay-ms "$delay" --port-file "$pf" \
    ${timeline:+--timeline "$timeline/proxy-$name.tsv"} 2>> "$tmp/proxy.log") &
  proxies[$name]=$!
  for _ in $(seq 100); do [ -s "$pf" ] && break; sleep 0.05; done
  PROXY_URI="http://127.0.0.1:$(cat "$pf")"
}

# requests PROXY_URI: requests forwarded so far (the stats read itself is not counted or delayed).
requests() { curl -s "$1/__proxy/stats" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["requests"])'; }

# ---------------------------------------------------------------- the sources
case "$set_name" in
  small | large)
    ensure_set "$set_name" ;;
  demo | big) ;;
  *) echo "unknown set $set_name" >&2; exit 2 ;;
esac

s3py="${MOTO_VENV:-$venv}/bin/python"
s3() { "$s3py" benches/s3.py "$@"; }
# s3_requests: the S3 requests moto has answered so far (one log line each).
s3_requests() { grep -c '" [0-9][0-9][0-9] ' "$tmp/moto/server.log" || true; }

# start_source STORE: (re)starts the source server with its artifacts served (proxied) or in
# s3://bench-src (s3), behind its proxy; sets src (through the proxy) and src_direct.
start_source() {
  stop_server src
  rm -rf "$tmp/src"
  case "$1/$set_name" in
    proxied/small | proxied/large)
      cp -a "$cache" "$tmp/src"
      start_server src ;;
    proxied/demo)
      start_server src
      MLFLOW_TRACKING_URI="$SERVER_URI" "$venv/bin/python" scripts/demo_data.py ;;
    proxied/big)
      start_server src
      MLFLOW_TRACKING_URI="$SERVER_URI" "$venv/bin/python" benches/big_data.py "$size_mib" "$points" "$tmp" ;;
    s3/*)
      echo "== S3: moto_server $("$s3py" -c 'import moto; print(moto.__version__)'); the source's artifacts to s3://bench-src"
      start_s3 moto
      s3 buckets bench-src bench-dst
      s3 upload "$cache/artifacts" bench-src
      mkdir -p "$tmp/src"
      cp "$cache/mlflow.db" "$tmp/src/"
      "$venv/bin/python" benches/s3.py rewrite "$tmp/src/mlflow.db" s3://bench-src
      src_digest=$(s3 digest "$cache/artifacts")
      start_server src s3://bench-src
      # What the server tells its clients: each run's artifacts are in the bucket (and nowhere else).
      curl -fs "$SERVER_URI/api/2.0/mlflow/runs/search" -H 'Content-Type: application/json' \
        -d '{"experiment_ids": ["1"], "max_results": 1}' \
        | "$venv/bin/python" -c 'import json,sys; print("   a source run'"'"'s artifact_uri:", json.load(sys.stdin)["runs"][0]["info"]["artifact_uri"])'
      [ ! -e "$tmp/src/artifacts" ] ;;
  esac
  start_proxy src "$SERVER_URI"
  src=$PROXY_URI
  src_direct=$SERVER_URI
}

# fresh_dst: a new, empty destination server behind its proxy (for S3, with the next fresh prefix
# of bench-dst, emptied first); sets dst.
dst_n=0
fresh_dst() {
  stop_server dst
  rm -rf "$tmp/dst"
  if [ "$pass" = s3 ]; then
    s3 clear bench-dst
    dst_n=$((dst_n + 1))
    start_server dst "s3://bench-dst/$dst_n"
  else
    start_server dst
  fi
  start_proxy dst "$SERVER_URI"
  dst=$PROXY_URI
}

# check_dst: on S3, the destination's files are the source's (every file's path and sha256).
check_dst() {
  [ "$pass" = s3 ] || return 0
  local got
  got=$(s3 digest "s3://bench-dst/$dst_n/")
  if [ "$got" = "$src_digest" ]; then
    echo "   s3://bench-dst/$dst_n holds the source's files: $got"
  else
    echo "   s3://bench-dst/$dst_n differs from the source: $got, the source $src_digest" >&2
    exit 1
  fi
}

suffix=${delay/#0/}
suffix=${suffix:+-latency$delay}
store_suffix=
[ "$store" = proxied ] || store_suffix=-$store
results="$root/target/bench-transfer-$set_name$store_suffix$suffix.md"
summary="$tmp/summary"
: > "$summary"
{
  echo "| job | wall | peak RSS | written to disk | requests |"
  echo "|---|---|---|---|---|"
} > "$results"

# record LABEL WALL KIB WRITTEN_BYTES REQUESTS [NOTE]: a table row (NOTE after the label), and a
# line for the ratios.
# Within rounds (--interleave), each try's row is kept in $tmp/tries instead, until `collapse`
# makes the rows (the loads were noted at each try then).
record() {
  if [ -n "${collecting:-}" ]; then
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "${6:-}" >> "$tmp/tries"
  else
    printf '| %s%s | %.1f s | %.1f MiB | %s | %s |\n' "$1" "${6:+ ($6)}" "$2" "$(echo "$3 / 1024" | bc -l)" \
      "$(numfmt --to=iec --suffix=B "$4")" "$5" | tee -a "$results"
    printf '%s\t%s\n' "$1" "$2" >> "$summary"
    [ -z "${collapsing:-}" ] || return 0
  fi
  # This box is shared: the load at the end of each job says how much else was running.
  cut -d' ' -f1 /proc/loadavg >> "$tmp/loads"
  echo "   load average: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# server_cpu NAME: CPU ticks (user + system, their reaped children's too) server NAME's
# processes have used so far (0 if it is not running).
server_cpu() {
  local p
  [ -n "${owners[$1]:-}" ] || { echo 0; return; }
  for p in $(process_tree "${owners[$1]}"); do
    # The fields after the command's ")": utime, stime, cutime, cstime are the 12th to 15th.
    sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 + $14 + $15 }'
  done | awk '{ t += $1 } END { print t + 0 }'
}

# servers_cpu: the CPU seconds both servers have used so far; a try's difference says what its
# requests cost them.
servers_cpu() {
  echo "scale=1; ($(server_cpu src) + $(server_cpu dst)) / $(getconf CLK_TCK)" | bc
}

# occupancy: each proxy's busy_ms, busy2_ms and request_ms so far (six numbers: the source's,
# then the destination's, zeros without one).
occupancy() {
  local u
  for u in "$src" "${dst:-}"; do
    if [ -z "$u" ]; then echo 0 0 0; continue; fi
    { curl -sf "$u/__proxy/stats" || true; } | "$venv/bin/python" -c '
import json, sys
try:
    s = json.load(sys.stdin)
    print(s["busy_ms"], s["busy2_ms"], s["request_ms"])
except ValueError:
    print(0, 0, 0)  # no proxy there (any more)'
  done | tr '\n' ' '
}

# try_begin LABEL: notes a try's start (r0, c0, o0 in the caller) and, with --timeline, starts
# sampling the servers' CPU.
try_begin() {
  r0=$(all_requests) c0=$(servers_cpu) o0=$(occupancy) t_begin=$(date +%s%3N)
  [ -n "${timeline:-}" ] || return 0
  (
    while :; do
      printf '%s\t%s\t%s\n' "$(date +%s%3N)" "$(server_cpu src)" "$(server_cpu dst)"
      sleep 0.5
    done >> "$timeline/cpu.tsv"
  ) &
  sampler=$!
}

# try_stop: stops the try's CPU sampler, if any (also when the try failed).
try_stop() {
  [ -z "${sampler:-}" ] || kill "$sampler" 2> /dev/null || true
}

# try_end LABEL WALL: what the try cost the servers and how busy it kept them, as a line's end.
try_end() {
  try_stop
  if [ -n "${timeline:-}" ]; then
    printf '%s\t%s\t%s\n' "$1" "$t_begin" "$(date +%s%3N)" >> "$timeline/tries.tsv"
  fi
  local o1; o1=$(occupancy)
  echo "the servers' $(echo "$(servers_cpu) - $c0" | bc) s CPU; $(busy_since "$o0" "$o1" "$2")"
}

# busy_since O0 O1 WALL: at each server, the mean requests at it and the shares of WALL with at
# least one and at least two.
busy_since() {
  "$venv/bin/python" - "$1" "$2" "$3" << 'PY'
import sys
a, b, wall = [float(x) for x in sys.argv[1].split()], [float(x) for x in sys.argv[2].split()], float(sys.argv[3]) * 1000
out = []
for name, i in (("source", 0), ("destination", 3)):
    d = [b[i + k] - a[i + k] for k in range(3)]
    if d[0] or d[2]:
        out.append(f"at the {name} {d[2] / wall:.1f} in flight, >=1 {100 * d[0] / wall:.0f} %, >=2 {100 * d[1] / wall:.0f} %")
print("; ".join(out))
PY
}

# all_requests: tracking requests so far (both proxies) and, on S3, S3 requests, tab-separated.
all_requests() {
  printf '%s\t%s\n' $(( $(requests "$src") + $([ -z "${dst:-}" ] && echo 0 || requests "$dst") )) "$([ "$pass" = s3 ] && s3_requests || echo 0)"
}

# requests_since "R0 S0" "R1 S1": the requests cell: tracking requests, plus S3 requests on S3.
requests_since() {
  local r0 s0 r1 s1; read -r r0 s0 <<< "$1"; read -r r1 s1 <<< "$2"
  if [ "$pass" = s3 ]; then echo "$((r1 - r0)) + $((s1 - s0)) S3"; else echo $((r1 - r0)); fi
}

# median WALL...: the middle one (the mean of the two middle ones for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# prepare: what a try of a job needs first, per $FRESH: dst (a fresh destination), archive
# ($tmp/a.mlar removed), out (the floor's export directory removed), or nothing.
prepare() {
  case "${FRESH:-}" in
    dst) fresh_dst ;;
    archive) rm -f "$tmp/a.mlar" ;;
    out) rm -rf "$tmp/floor" ;;
  esac
}

# tries WALL...: a row's note on its tries (nothing for one).
tries() { if [ $# -gt 1 ]; then echo "median of $#: $(printf '%s s, ' "$@" | sed 's/, $//')"; fi; }

# collapse: the rows kept in $tmp/tries (one per job and round), one row per job, in the order
# they first ran: the median wall with its tries, the largest peak RSS and disk writes, the last
# round's requests, and the floor's --jobs of each round.
collapse() {
  local label l w k b q note
  while read -r label; do
    local walls=() top_kib=0 top_blocks=0 req= js=()
    while IFS=$'\t' read -r l w k b q note; do
      [ "$l" = "$label" ] || continue
      keep "$w" "$k" "$b"; req=$q
      if [[ "$note" == --jobs* ]]; then js+=("${note%%;*}"); js[-1]=${js[-1]#--jobs }; fi
    done < "$tmp/tries"
    note=$(tries "${walls[@]}")
    [ ${#js[@]} = 0 ] || note="$note; at --jobs $(printf '%s, ' "${js[@]}" | sed 's/, $//') by round"
    collapsing=1 record "$label" "$(median "${walls[@]}")" "$top_kib" "$top_blocks" "$req" "$note"
  done < <(cut -f1 "$tmp/tries" | awk '!seen[$0]++')
}

# keep WALL KIB WRITTEN: one try's wall added to the caller's `walls`, its peak RSS and disk writes
# (in the caller's unit) to the caller's `top_kib` and `top_blocks` (the largest of its tries).
keep() {
  walls+=("$1")
  [ "$2" -le "$top_kib" ] || top_kib=$2
  [ "$3" -le "$top_blocks" ] || top_blocks=$3
}

# measure LABEL CMD...: runs CMD under /usr/bin/time against the current servers, --repeat times
# (each try prepared as $FRESH says; `@DST@` in CMD stands for the destination).
measure() {
  local label=$1; shift
  local r0 r1 c0 o0 t_begin sampler= k walls=() top_kib=0 top_blocks=0 req= cmd a
  for k in $(seq "$repeat"); do
    prepare
    cmd=()
    for a in "$@"; do cmd+=("${a//@DST@/${dst:-}}"); done
    try_begin "$label"
    if ! /usr/bin/time -f '%e %M %O %U %S' -o "$tmp/time" "${cmd[@]}" > "$tmp/out" 2> "$tmp/err"; then
      try_stop
      local why
      why=$(grep -v '^Command exited' "$tmp/err" | grep -E 'Error|error|Exception' | tail -1 | cut -c1-150)
      echo "| $label | failed: ${why:-see its output} | | | |" | tee -a "$results"
      tail -5 "$tmp/err" >&2
      return 1
    fi
    r1=$(all_requests)
    local wall kib blocks user sys; read -r wall kib blocks user sys < "$tmp/time"
    echo "   $label$([ "$repeat" = 1 ] || echo ", try $k"): $wall s, $(echo "$user + $sys" | bc) s CPU; $(try_end "$label" "$wall")"
    keep "$wall" "$kib" "$blocks"; req=$(requests_since "$r0" "$r1")
  done
  record "$label" "$(median "${walls[@]}")" "$top_kib" $((top_blocks * 512)) "$req" "$(tries "${walls[@]}")"
}

# measure_pipe LABEL "PRODUCER" "CONSUMER": both timed, --repeat times (each try prepared as
# $FRESH says; `@DST@` stands for the destination); the wall is the pipeline's; the peak RSS and
# disk writes are the sum of both sides'.
measure_pipe() {
  local label=$1 t0 t1 r0 r1 c0 o0 t_begin sampler= k walls=() top_kib=0 top_blocks=0 req= p c
  for k in $(seq "$repeat"); do
    prepare
    p=${2//@DST@/${dst:-}} c=${3//@DST@/${dst:-}}
    try_begin "$label"
    t0=$(date +%s.%N)
    if ! bash -c "set -o pipefail; /usr/bin/time -f '%e %M %O %U %S' -o '$tmp/t1' $p 2>'$tmp/e1' | /usr/bin/time -f '%e %M %O %U %S' -o '$tmp/t2' $c 2>'$tmp/e2'"; then
      try_stop
      echo "| $label | failed | | | |" | tee -a "$results"; tail -5 "$tmp/e1" "$tmp/e2" >&2; return 1
    fi
    t1=$(date +%s.%N)
    r1=$(all_requests)
    local w1 k1 b1 u1 s1 w2 k2 b2 u2 s2 wall
    read -r w1 k1 b1 u1 s1 < "$tmp/t1"; read -r w2 k2 b2 u2 s2 < "$tmp/t2"
    wall=$(printf '%.2f' "$(echo "$t1 - $t0" | bc -l)")
    echo "   $label$([ "$repeat" = 1 ] || echo ", try $k"): $wall s (export side $(echo "$k1 / 1024" | bc) MiB, $(echo "$u1 + $s1" | bc) s CPU; import side $(echo "$k2 / 1024" | bc) MiB, $(echo "$u2 + $s2" | bc) s CPU); $(try_end "$label" "$wall")"
    keep "$wall" $((k1 + k2)) $((b1 + b2)); req=$(requests_since "$r0" "$r1")
  done
  record "$label" "$(median "${walls[@]}")" "$top_kib" $((top_blocks * 512)) "$req" "$(tries "${walls[@]}")"
}

# floor_best LABEL FRESH CMD...: the floor job CMD at each concurrency of --floor-jobs (`@J@` in
# CMD stands for it, `@DST@` for the destination), recorded once, at its best. Before each try,
# FRESH=dst: a fresh destination; FRESH=out: the export directory removed.
floor_best() {
  local label=$1 fresh=$2; shift 2
  local fj best= best_j= best_kib= best_blocks= best_req= tried= k
  for fj in ${floor_jobs//,/ }; do
    local walls=() top_kib=0 top_blocks=0 req= failed=
    for k in $(seq "$repeat"); do
      FRESH=$fresh prepare
      local r0 r1 c0 o0 t_begin sampler= cmd=() a
      for a in "$@"; do a=${a//@J@/$fj}; cmd+=("${a//@DST@/${dst:-}}"); done
      try_begin "$label"
      if ! /usr/bin/time -f '%e %M %O' -o "$tmp/time" "${cmd[@]}" > "$tmp/out" 2> "$tmp/err"; then
        try_stop
        failed=1
        echo "   $label at --jobs $fj failed: $(grep -v '^Command exited' "$tmp/err" | grep -E 'Error|error|Exception' | tail -1 | cut -c1-150)"
        break
      fi
      r1=$(all_requests)
      local wall kib blocks; read -r wall kib blocks < "$tmp/time"
      echo "   $label at --jobs $fj: $wall s; $(try_end "$label --jobs $fj" "$wall")"
      keep "$wall" "$kib" "$blocks"; req=$(requests_since "$r0" "$r1")
    done
    if [ -n "$failed" ]; then
      tried="$tried, $fj: failed"
      continue
    fi
    local mid; mid=$(median "${walls[@]}")
    if [ "$repeat" = 1 ]; then tried="$tried, $fj: $mid s"; else tried="$tried, $fj: $(tries "${walls[@]}")"; fi
    if [ -z "$best" ] || [ "$(echo "$mid < $best" | bc -l)" = 1 ]; then
      best=$mid best_j=$fj best_kib=$top_kib best_blocks=$top_blocks best_req=$req
    fi
  done
  if [ -z "$best" ]; then
    echo "| $label | failed at every --jobs | | | |" | tee -a "$results"
    return 1
  fi
  record "$label" "$best" "$best_kib" $((best_blocks * 512)) "$best_req" "--jobs $best_j; tried ${tried#, }"
}

# --only transfer: the floor's jobs and mlflow-archive's four (issue 18's rows), no compare.
want() { [ -z "$only" ] || [ "$only" = "$1" ] || { [[ "$only" =~ ^(transfer|exim)$ ]] && [[ "$1" =~ ^(floor|ours)$ ]]; }; }

# pin NAME CPUS: server NAME's processes (its workers too) on those cores only (taskset's list).
pin() {
  local p
  for p in $(process_tree "${owners[$1]}"); do taskset -a -p -c "$2" "$p" > /dev/null; done
}
process_tree() { echo "$1"; local c; for c in $(pgrep -P "$1"); do process_tree "$c"; done; }

# run_pass STORE: every wanted job on the servers of that kind (the floor and the peer on proxied
# servers only); the labels of the S3 pass end in " on S3".
run_pass() {
  pass=$1
  local on=
  [ "$pass" = proxied ] || on=" on S3"
  start_source "$pass"
  echo "== $set_name set$on; source $src_direct (proxy $src), latency ${delay} ms each way"
  if [ "$interleave" = 1 ] && [ "$repeat" -gt 1 ]; then
    local rounds=$repeat r
    : > "$tmp/tries"
    for r in $(seq "$rounds"); do
      echo "== round $r of $rounds"
      round=$r repeat=1 collecting=1 pass_jobs
    done
    collapse
  else
    round=1 pass_jobs
  fi

  if [ "$pass" = s3 ]; then
    # The emulator's own pace on the same files, with nothing else running.
    stop_server dst
    s3 clear bench-dst
    moto_pace=$(s3 floor "$cache/artifacts" bench-dst "$jobs")
    echo "   moto's own pace (boto3, $jobs at once): $moto_pace"
    s3 clear bench-dst
  fi
  stop_server src
}

# pass_jobs: the wanted jobs of the pass, each --repeat times (within a round: once; the peer in
# the first round only).
pass_jobs() {
  if [ "$pass" = proxied ] && { want floor || [ "$only" = pipe ]; }; then
    [ "$only" = pipe ] || floor_best "floor export" out "$floor" export --src "$src" --out "$tmp/floor" --jobs @J@ || true
    [ "$only" = pipe ] || floor_jobs=${floor_import_jobs:-$floor_jobs} floor_best "floor import" dst "$floor" import --dst @DST@ --in "$tmp/floor" --jobs @J@ || true
    rm -rf "$tmp/floor"
    [ "$only" = exim ] || floor_best "floor copy" dst "$floor" copy --src "$src" --dst @DST@ --jobs @J@ || true
  fi

  if want ours || [ "$only" = archive ] || [ "$only" = compare ]; then
    local j=(--quiet)
    [ "$jobs" = auto ] || j=(--jobs "$jobs" --quiet)
    # --only compare: the export and import that fill the destination once, the compares
    # --repeat times.
    local once=$repeat
    [ "$only" != compare ] || once=1
    repeat=$once FRESH=archive measure "mlflow-archive export$on" "$bin" "${j[@]}" export-all --src-uri "$src" --export-deleted-runs -o "$tmp/a.mlar" || true
    echo "   archive: $(stat -c %s "$tmp/a.mlar") bytes"
    stat -c %s "$tmp/a.mlar" > "$tmp/archive-size"
    repeat=$once FRESH=dst measure "mlflow-archive import$on" "$bin" "${j[@]}" import-all --dst-uri @DST@ -i "$tmp/a.mlar" && check_dst
    if want compare; then
      local ex=(export-all --export-deleted-runs -o -)
      # compare exits 1 unless every object is equal: a failure here is a difference. Each
      # compare comes right after what it is held against: reading the destination alone (all
      # the archive's compare reads of a server), both servers at once, and each server on a
      # core of its own, as on a machine of its own.
      measure "mlflow-archive export of the destination$on" bash -c "'$bin' ${j[*]} ${ex[*]} --src-uri '$dst' > /dev/null" || true
      measure "mlflow-archive compare archive$on" "$bin" "${j[@]}" compare "$tmp/a.mlar" --dst-uri "$dst" --include-deleted-runs || true
      measure "mlflow-archive export of both at once$on" bash -c "'$bin' ${j[*]} ${ex[*]} --src-uri '$src' > /dev/null & p=\$!; '$bin' ${j[*]} ${ex[*]} --src-uri '$dst' > /dev/null; s=\$?; wait \$p && exit \$s" || true
      measure "mlflow-archive compare$on" "$bin" "${j[@]}" compare --src-uri "$src" --dst-uri "$dst" --include-deleted-runs || true
      pin src 0
      pin dst 1
      measure "mlflow-archive export, the source on core 0$on" bash -c "'$bin' ${j[*]} ${ex[*]} --src-uri '$src' > /dev/null" || true
      measure "mlflow-archive compare, the servers on cores 0 and 1$on" "$bin" "${j[@]}" compare --src-uri "$src" --dst-uri "$dst" --include-deleted-runs || true
      measure "mlflow-archive export, the destination on core 1$on" bash -c "'$bin' ${j[*]} ${ex[*]} --src-uri '$dst' > /dev/null" || true
      pin src 0-$(($(nproc) - 1))
      pin dst 0-$(($(nproc) - 1))
    fi
    rm -f "$tmp/a.mlar"
  fi
  if { want ours && [ "$only" != exim ]; } || [ "$only" = pipe ]; then
    local j=(--quiet)
    [ "$jobs" = auto ] || j=(--jobs "$jobs" --quiet)
    FRESH=dst measure_pipe "mlflow-archive export \| import$on" \
      "$bin ${j[*]} export-all --src-uri $src --export-deleted-runs -o -" \
      "$bin ${j[*]} import-all --dst-uri @DST@ -i -" && check_dst
    FRESH=dst measure "mlflow-archive copy$on" "$bin" "${j[@]}" copy-all --src-uri "$src" --dst-uri @DST@ --export-deleted-runs && check_dst
  fi

  if [ "$pass" = proxied ] && [ "$peer" = 1 ] && want peer && [ "$round" = 1 ]; then
    fresh_dst
    # 1.2.0's export-all has no --export-deleted-runs; the data sets have no deleted runs. The
    # Python tool is slow: it is measured once whatever --repeat says.
    repeat=1 MLFLOW_TRACKING_URI="$src" measure "mlflow-export-import export" "$venv/bin/export-all" --output-dir "$tmp/peer" || true
    echo "   staged on disk: $(du -sb "$tmp/peer" | cut -f1) bytes"
    du -sb "$tmp/peer" | cut -f1 > "$tmp/peer-size"
    # Its import-all stops at the first model: its import-model checks an mlflow-artifacts: source as
    # a local path, so it fails on any server with served artifacts (README "Legacy layouts"). So it
    # imports the experiments only: less than mlflow-archive's import, which has the models too.
    repeat=1 MLFLOW_TRACKING_URI="$dst" measure "mlflow-export-import import" "$venv/bin/import-experiments" \
      --input-dir "$tmp/peer/experiments" || true
    rm -rf "$tmp/peer"
  fi

  if [ "$set_name" = big ] && want ours; then
    local want sum
    want=$(find "$tmp/src/artifacts" -name blob.bin -exec sha256sum {} + | cut -d' ' -f1)
    while read -r sum _; do
      [ "$sum" = "$want" ] || { echo "a copy of blob.bin differs from the source" >&2; exit 1; }
    done < <(find "$tmp/dst/artifacts" -name blob.bin -exec sha256sum {} +)
    echo "   data/blob.bin on the last destination is identical to the source (sha256)"
  fi
}

[ "$store" = s3 ] || run_pass proxied
[ "$store" = proxied ] || run_pass s3

# ---------------------------------------------------------------- ratios
wall() { awk -F'\t' -v l="$1" '$1 == l { print $2; exit }' "$summary"; }
sum() { local a b; a=$(wall "$1"); b=$(wall "$2"); if [ -n "$a" ] && [ -n "$b" ]; then echo "$a + $b" | bc -l; fi; }
# ratio A B: A / B to two decimals, or - when either is missing.
ratio() { if [ -n "$1" ] && [ -n "$2" ]; then printf '%.2f' "$(echo "$1 / $2" | bc -l)"; else echo "-"; fi; }
ours_e="mlflow-archive export" ours_i="mlflow-archive import" peer_e="mlflow-export-import export"
peer_i="mlflow-export-import import" pipe="mlflow-archive export \| import" copy="mlflow-archive copy"
{
  if [ "$store" != s3 ] && [ "$only" != compare ]; then
    echo
    echo "| job | mlflow-archive / floor | mlflow-export-import / mlflow-archive |"
    echo "|---|---|---|"
    echo "| export | $(ratio "$(wall "$ours_e")" "$(wall "floor export")") | $(ratio "$(wall "$peer_e")" "$(wall "$ours_e")") |"
    echo "| import | $(ratio "$(wall "$ours_i")" "$(wall "floor import")") | $(ratio "$(wall "$peer_i")" "$(wall "$ours_i")") |"
    echo "| export + import | $(ratio "$(sum "$ours_e" "$ours_i")" "$(sum "floor export" "floor import")") | $(ratio "$(sum "$peer_e" "$peer_i")" "$(sum "$ours_e" "$ours_i")") |"
    echo "| export \| import (floor: copy) | $(ratio "$(wall "$pipe")" "$(wall "floor copy")") | |"
    echo "| copy (peer: export + import) | $(ratio "$(wall "$copy")" "$(wall "floor copy")") | $(ratio "$(sum "$peer_e" "$peer_i")" "$(wall "$copy")") |"
  fi
  if [ -n "$(wall "mlflow-archive compare")" ]; then
    pinned_e=$(wall "mlflow-archive export, the source on core 0")
    pinned_d=$(wall "mlflow-archive export, the destination on core 1")
    slower=$pinned_e
    if [ -n "$pinned_d" ] && [ -n "$slower" ] && [ "$(echo "$pinned_d > $slower" | bc -l)" = 1 ]; then slower=$pinned_d; fi
    echo
    echo "| compare | its wall / that of |"
    echo "|---|---|"
    echo "| the archive against the server it went into / the export of that server | $(ratio "$(wall "mlflow-archive compare archive")" "$(wall "mlflow-archive export of the destination")") |"
    echo "| the archive against the server it went into / the source's export | $(ratio "$(wall "mlflow-archive compare archive")" "$(wall "$ours_e")") |"
    echo "| two servers sharing the cores / both exported at once | $(ratio "$(wall "mlflow-archive compare")" "$(wall "mlflow-archive export of both at once")") |"
    echo "| two servers sharing the cores / the source's export | $(ratio "$(wall "mlflow-archive compare")" "$(wall "$ours_e")") |"
    echo "| two servers, each on a core of its own / the source's export on its core | $(ratio "$(wall "mlflow-archive compare, the servers on cores 0 and 1")" "$pinned_e") |"
    echo "| two servers, each on a core of its own / the slower of their exports on those cores | $(ratio "$(wall "mlflow-archive compare, the servers on cores 0 and 1")" "$slower") |"
  fi
  if [ "$store" = both ]; then
    on=" on S3"
    echo
    echo "| job | mlflow-archive on S3 / on proxied servers |"
    echo "|---|---|"
    echo "| export | $(ratio "$(wall "$ours_e$on")" "$(wall "$ours_e")") |"
    echo "| import | $(ratio "$(wall "$ours_i$on")" "$(wall "$ours_i")") |"
    echo "| export + import | $(ratio "$(sum "$ours_e$on" "$ours_i$on")" "$(sum "$ours_e" "$ours_i")") |"
    echo "| export \| import | $(ratio "$(wall "$pipe$on")" "$(wall "$pipe")") |"
    echo "| copy | $(ratio "$(wall "$copy$on")" "$(wall "$copy")") |"
  fi
  if [ -s "$tmp/archive-size" ] && [ -s "$tmp/peer-size" ]; then
    echo
    echo "Archive: $(numfmt --to=iec --suffix=B "$(cat "$tmp/archive-size")"); the Python tool's export directory: $(numfmt --to=iec --suffix=B "$(cat "$tmp/peer-size")") ($(ratio "$(cat "$tmp/peer-size")" "$(cat "$tmp/archive-size")")x as large)."
  fi
  echo
  echo "MLflow $("$venv/bin/mlflow" --version 2>/dev/null | awk '{print $NF}'), $SERVER_WORKERS workers per server, sqlite; $(nproc) cores; mlflow-archive --jobs $jobs (auto: measured, its default), the floor at its best of --jobs $floor_jobs; latency ${delay} ms each way."
  if [ -s "$tmp/loads" ]; then
    echo "Load average (1 min) at the end of the jobs: $(sort -g "$tmp/loads" | head -1) to $(sort -g "$tmp/loads" | tail -1) on $(nproc) cores."
  fi
  if [ "$store" != proxied ]; then
    echo "S3: moto_server $("$s3py" -c 'import moto; print(moto.__version__)') (in memory, loopback, not delayed); its own pace on the source's files (boto3, $jobs at once): ${moto_pace:-not measured}."
  fi
} | tee -a "$results"
echo "== results in $results"
