#!/usr/bin/env bash
# Installs the pinned MLflow server into the project-local virtual environment .venv, once.
# Sourced or run by scripts/test.sh and scripts/demo.sh; prints the venv's path.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${MLFLOW_ARCHIVE_VENV:-$root/.venv}"
# The pinned version: what ../shared/MLFLOW-REST.md was measured on. The [auth] extra brings the
# basic-auth app that the credential tests start. The Python tool we replace, mlflow-export-import
# (with tabulate, which it imports without declaring it), is the peer that the legacy-layout tests
# and benches/transfer.sh compare with.
pin="mlflow[auth]==3.17.2 mlflow-export-import==1.2.0 tabulate==0.9.0"
stamp="$venv/.mlflow-archive-pin"
if [ -x "$venv/bin/mlflow" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$pin" ]; then
  echo "$venv"
  exit 0
fi
py=$(command -v python3 || true)
[ -n "$py" ] || { echo "ensure-venv: python3 is needed to install MLflow" >&2; exit 1; }
if ! "$py" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "ensure-venv: python3 has no venv/ensurepip; installing python3-venv" >&2
  if command -v apt-get >/dev/null; then
    (apt-get update -qq && apt-get install -y -qq python3-venv) >&2
  fi
fi
echo "ensure-venv: installing $pin into $venv (a few minutes, once)" >&2
"$py" -m venv "$venv" >&2
# shellcheck disable=SC2086 # the pin is a list of requirements
"$venv/bin/pip" install --quiet --disable-pip-version-check $pin >&2
"$venv/bin/mlflow" --version >&2
echo "$pin" > "$stamp"
echo "$venv"
