# Sourced by scripts/demo.sh and benches/transfer.sh: starts local MLflow servers (the pinned
# version, sqlite, served artifacts; one worker, or $SERVER_WORKERS) on free loopback ports. Each
# server is owned by tests/harness/mlflow_server.py, which stops it when this shell closes the
# guard's input (at exit, by stop_servers, or if the shell is killed).
# Needs: $root (the repository), $venv (from scripts/ensure-venv.sh), $tmp (a scratch directory).

declare -gA guards=()  # server name -> the guard's file descriptor
declare -gA owners=()  # server name -> the pid of its mlflow_server.py

# Closes every guard: the servers stop.
stop_servers() {
  local name
  for name in "${!guards[@]}"; do stop_server "$name"; done
  wait 2>/dev/null || true
}

# without_guards CMD...: runs CMD with no guard open (a background process that inherited one would
# keep that server up after its stop_server).
without_guards() {
  local fd
  for fd in "${guards[@]}"; do exec {fd}>&-; done
  exec "$@"
}

# stop_server NAME: stops that server and waits until it is gone (its data stays in $tmp/NAME).
stop_server() {
  local fd=${guards[$1]:-}
  [ -n "$fd" ] || return 0
  exec {fd}>&-
  wait "${owners[$1]}" 2>/dev/null || true
  unset "guards[$1]" "owners[$1]"
  rm -f "$tmp/$1/guard"
}

# start_server NAME: starts a server with its data under $tmp/NAME (a populated copy may be put
# there first) and sets SERVER_URI. (Not in a subshell: the guard's input must stay open in this
# shell for as long as the server is needed.)
start_server() {
  local dir="$tmp/$1" port fd
  mkdir -p "$dir"
  port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  mkfifo "$dir/guard"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    without_guards "$venv/bin/python" "$root/tests/harness/mlflow_server.py" -- \
    "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$dir/mlflow.db" --serve-artifacts --artifacts-destination "$dir/artifacts" \
    --workers "${SERVER_WORKERS:-1}" --allowed-hosts '127.0.0.1:*,localhost:*,127.0.0.1,localhost' \
    < "$dir/guard" > "$dir/server.log" 2>&1 &
  owners[$1]=$!
  exec {fd}> "$dir/guard"
  guards[$1]=$fd
  for _ in $(seq 240); do
    if "$venv/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then
      SERVER_URI="http://127.0.0.1:$port"
      return 0
    fi
    sleep 0.5
  done
  echo "mlflow server $1 did not start; its log:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}
