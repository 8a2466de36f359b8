#!/usr/bin/env bash
# Per-request latency of mlflow-archive's client against a local MLflow server (pinned version,
# sqlite, served artifacts, one worker): N sequential small requests on one kept-alive connection,
# then on a new connection each. See src/latency.rs.
#   bash benches/latency.sh [N]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
venv=$(scripts/ensure-venv.sh)
tmp=$(mktemp -d -t mlflow-archive-latency.XXXXXX)
source scripts/servers.sh
trap 'stop_servers; rm -rf "$tmp"' EXIT
start_server latency
(cd benches && cargo run --quiet --release --bin latency -- "$SERVER_URI" "${1:-200}")
