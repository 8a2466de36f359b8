# Sourced by benches/transfer.sh and benches/sync.sh (after scripts/servers.sh, with $root, $tmp
# and $venv set): the small and large sets of benches/scale_data.py, populated once and kept
# under target/bench-data/ (keyed by the generator's and the pin's hash).

# ensure_set NAME: populates set NAME unless it is kept already; sets cache (its directory).
ensure_set() {
  local key
  key=$(cat benches/scale_data.py scripts/ensure-venv.sh | sha256sum | cut -c1-12)
  cache="$root/target/bench-data/$1-$key"
  if [ ! -f "$cache/ready" ]; then
    echo "== populating the $1 set (once; kept in $cache)"
    rm -rf "$cache" "$tmp/populate"
    start_server populate
    MLFLOW_TRACKING_URI="$SERVER_URI" "$venv/bin/python" benches/scale_data.py "$1" "$tmp" \
      | grep -v 'View \(run\|experiment\)'
    stop_server populate
    mkdir -p "$(dirname "$cache")"
    mv "$tmp/populate" "$cache"
    rm -f "$cache/server.log"
    touch "$cache/ready"
  fi
}
