#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, unit tests, the live integration tests
# against real `mlflow server` processes (the pinned MLflow is installed into .venv on first use),
# and the packages: the wheel installed into a fresh venv, the crate by `cargo install`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MLFLOW_ARCHIVE_VENV="$(scripts/ensure-venv.sh)"
export MLFLOW_ARCHIVE_VENV
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --locked --all-targets -- -D warnings
echo "== cargo build --lib --no-default-features (the library without the command line's dependencies)"
cargo build --locked --lib --no-default-features
echo "== cargo doc --no-deps (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
echo "== cargo test"
cargo test --locked "$@"
# After the tests: it reuses their debug build, and a failing test matters more than a package.
echo "== scripts/check-packaging.sh (the wheel installed into a fresh venv, the crate by cargo install)"
bash scripts/check-packaging.sh
