#!/usr/bin/env bash
# Installs mlflow-archive the ways its users do, from this tree, and runs it: the wheel (maturin,
# dev profile, so it reuses the tests' debug build) installed by pip, offline, into a fresh venv;
# the crate installed by `cargo install --locked`. Each installed `mlflow-archive` must print
# Cargo.toml's version and its help. The sdist and the crate must hold the sources and none of the
# tree's other files (tests, scripts, benches, fuzz, .venv, target); the wheel only the program.
# Neither the sdist nor the packaged crate is built here: a build of the unpacked crate in this
# target directory (`cargo package` or `cargo publish` without --no-verify) shares its units with
# the tree's own build and leaves their fingerprints pointing at target/package/, so later edits in
# src/ are not rebuilt (until target/package/ goes). Publish from a clean checkout.
# Run by scripts/test.sh after the tests; maturin (pinned below) lives in its own small venv under
# the target directory, made again only when the pin changes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
maturin_pin="maturin==1.16.0"

fail() {
  echo "check-packaging: $*" >&2
  exit 1
}
command -v python3 >/dev/null || fail "python3 is needed to build and install the wheel"

# The version and the target directory (CARGO_TARGET_DIR or ./target), as cargo sees them.
{ read -r version; read -r target; } < <(cargo metadata --locked --no-deps --format-version 1 |
  python3 -c 'import json, sys
m = json.load(sys.stdin)
print(next(p["version"] for p in m["packages"] if p["name"] == "mlflow-archive"))
print(m["target_directory"])')
[[ -n $version && -n $target ]] || fail "cargo metadata gave no version or target directory"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# What must never ship: the tree's other parts (tests and scripts need live servers), build
# output, virtual environments, Python caches.
junk='^(\.venv|\.ci|\.git|target|tests|scripts|benches|fuzz)/|(^|/)__pycache__/|\.profraw$'
# check_list WHAT FILE REQUIRED...: FILE lists paths relative to the package root.
check_list() {
  local what=$1 list=$2 bad need
  shift 2
  bad=$(grep -E "$junk" "$list" | head -5 || true)
  [ -z "$bad" ] || fail "$what ships files it must not (fix include in Cargo.toml): $(echo "$bad" | tr '\n' ' ')"
  for need in "$@"; do
    grep -qxF "$need" "$list" || fail "$what lacks $need (fix include in Cargo.toml)"
  done
}
# check_program WHAT PATH: the installed program runs and reports Cargo.toml's version.
check_program() {
  local what=$1 program=$2 out
  [ -x "$program" ] || fail "$what: no program at $program"
  out=$("$program" --version) || fail "$what: mlflow-archive --version exited with $?"
  [ "$out" = "mlflow-archive $version" ] ||
    fail "$what: mlflow-archive --version printed '$out', not 'mlflow-archive $version' (Cargo.toml)"
  "$program" --help >"$tmp/help" || fail "$what: mlflow-archive --help exited with $?"
  grep -q '^Usage: mlflow-archive ' "$tmp/help" || fail "$what: mlflow-archive --help printed no usage line"
}
sources=(Cargo.toml Cargo.lock README.md src/main.rs src/lib.rs spec/format.md)

venv="$target/packaging-venv"
if [ ! -x "$venv/bin/maturin" ] || [ "$(cat "$venv/.pin" 2>/dev/null)" != "$maturin_pin" ]; then
  echo "== packaging: installing $maturin_pin into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$maturin_pin" ||
    fail "could not install $maturin_pin from PyPI into $venv"
  echo "$maturin_pin" >"$venv/.pin"
fi

echo "== packaging: maturin build --profile dev, maturin sdist"
"$venv/bin/maturin" build --locked --profile dev --out "$tmp/dist"
"$venv/bin/maturin" sdist --out "$tmp/dist"
sdists=("$tmp"/dist/*.tar.gz)
wheels=("$tmp"/dist/*.whl)
[[ ${#sdists[@]} = 1 && -f ${sdists[0]} ]] || fail "maturin built no single sdist in $tmp/dist"
[[ ${#wheels[@]} = 1 && -f ${wheels[0]} ]] || fail "maturin built no single wheel in $tmp/dist"
echo "== packaging: sdist and wheel contents"
python3 - "${sdists[0]}" "${wheels[0]}" "$tmp" <<'EOF'
import sys, tarfile, zipfile
sdist, wheel, tmp = sys.argv[1:]
with tarfile.open(sdist) as t:
    # Paths below the sdist's top directory (mlflow_archive-VERSION/).
    names = [m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile()]
with open(f"{tmp}/sdist.list", "w") as f:
    f.write("".join(n + "\n" for n in names))
with zipfile.ZipFile(wheel) as z:
    with open(f"{tmp}/wheel.list", "w") as f:
        f.write("".join(n + "\n" for n in z.namelist()))
EOF
check_list "the sdist" "$tmp/sdist.list" pyproject.toml "${sources[@]}"
# The wheel: the program in the scripts directory pip installs into the venv's bin/, metadata.
program="mlflow_archive-$version.data/scripts/mlflow-archive"
grep -qxF "$program" "$tmp/wheel.list" || fail "the wheel lacks $program"
other=$(grep -vxF "$program" "$tmp/wheel.list" | grep -v "^mlflow_archive-$version\.dist-info/" || true)
[ -z "$other" ] || fail "the wheel holds more than the program: $(echo "$other" | tr '\n' ' ')"

echo "== packaging: pip install the wheel (offline) into a fresh venv, run mlflow-archive"
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install --quiet --no-index --disable-pip-version-check "${wheels[0]}" ||
  fail "pip could not install ${wheels[0]##*/} into a fresh venv"
check_program "pip install" "$tmp/venv/bin/mlflow-archive"
"$tmp/venv/bin/python" -m pip show mlflow-archive >"$tmp/show" || fail "pip show mlflow-archive exited with $?"
grep -qxF "Version: $version" "$tmp/show" || fail "pip show mlflow-archive reports no 'Version: $version'"

echo "== packaging: cargo package --locked --no-verify (the crate as crates.io gets it)"
cargo package --locked --allow-dirty --list >"$tmp/crate.list"
check_list "the crate" "$tmp/crate.list" "${sources[@]}"
cargo package --locked --allow-dirty --no-verify
echo "== packaging: cargo install --locked --debug --path ."
cargo install --quiet --locked --debug --path . --root "$tmp/cargo"
check_program "cargo install" "$tmp/cargo/bin/mlflow-archive"
echo "== packaging: ok (mlflow-archive $version: wheel ${wheels[0]##*/}, sdist, crate)"
