# Sourced by scripts/demo.sh and benches/transfer.sh: starts local MLflow servers (the pinned
# version, sqlite, served artifacts; one worker, or $SERVER_WORKERS) on free loopback ports, and an
# S3 emulator (moto_server) for servers whose artifacts live in a bucket. Each server is owned by
# tests/harness/mlflow_server.py, which stops it when this shell closes the guard's input (at exit,
# by stop_servers, or if the shell is killed).
# Needs: $root (the repository), $venv (from scripts/ensure-venv.sh), $tmp (a scratch directory);
# for start_s3, moto_server in $MOTO_VENV (default: $venv).

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

# free_port: prints a free loopback port.
free_port() {
  "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_server NAME [ROOT]: starts a server with its data under $tmp/NAME (a populated copy may be
# put there first) and sets SERVER_URI. Its artifacts are served from $tmp/NAME/artifacts, or with
# ROOT (s3://bucket/prefix, ...) not served: clients read and write ROOT themselves (the store's
# settings come from the environment, see start_s3). (Not in a subshell: the guard's input must
# stay open in this shell for as long as the server is needed.)
start_server() {
  local dir="$tmp/$1" port fd
  local artifacts=(--serve-artifacts --artifacts-destination "$dir/artifacts")
  [ -z "${2:-}" ] || artifacts=(--no-serve-artifacts --default-artifact-root "$2")
  mkdir -p "$dir"
  port=$(free_port)
  mkfifo "$dir/guard"
  MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false \
    without_guards "$venv/bin/python" "$root/tests/harness/mlflow_server.py" -- \
    "$venv/bin/mlflow" server --host 127.0.0.1 --port "$port" \
    --backend-store-uri "sqlite:///$dir/mlflow.db" "${artifacts[@]}" \
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

# start_s3 NAME: starts moto_server (from $MOTO_VENV, default $venv), an in-memory S3, on a free
# port, logging to $tmp/NAME/server.log, and exports what MLflow's client and mlflow-archive read
# to reach it: MLFLOW_S3_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (any values do),
# AWS_REGION. Stopped like the MLflow servers.
start_s3() {
  local dir="$tmp/$1" moto="${MOTO_VENV:-$venv}/bin/moto_server" port fd
  [ -x "$moto" ] || { echo "no $moto: install moto[server] there or set MOTO_VENV" >&2; return 1; }
  mkdir -p "$dir"
  port=$(free_port)
  mkfifo "$dir/guard"
  without_guards "$venv/bin/python" "$root/tests/harness/mlflow_server.py" -- \
    "$moto" -H 127.0.0.1 -p "$port" < "$dir/guard" > "$dir/server.log" 2>&1 &
  owners[$1]=$!
  exec {fd}> "$dir/guard"
  guards[$1]=$fd
  unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3 AWS_DEFAULT_REGION
  export MLFLOW_S3_ENDPOINT_URL="http://127.0.0.1:$port" AWS_ACCESS_KEY_ID=bench \
    AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
  for _ in $(seq 120); do
    if curl -fs -o /dev/null "$MLFLOW_S3_ENDPOINT_URL/moto-api/"; then return 0; fi
    sleep 0.5
  done
  echo "moto_server $1 did not start; its log:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}
