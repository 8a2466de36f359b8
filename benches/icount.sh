#!/usr/bin/env bash
# Instruction counts (callgrind) of the codec against plain tar + zstd: stable on a noisy machine.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --quiet --bin icount
bin=../target/release/icount
for set in small large; do
  for op in write read; do
    for who in ours base; do
      out=$(mktemp)
      valgrind --tool=callgrind --callgrind-out-file="$out" --toggle-collect='*measured*' "$bin" "$op-$who" "$set" >/dev/null 2>&1
      n=$(callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
      rm -f "$out"
      printf '%s\t%s\t%s\t%s\n' "$set" "$op" "$who" "$n"
    done
  done
done | awk -F'\t' '{k=$1" "$2; v[k,$3]=$4} END {for (s in v) {} ; n=split("small write,small read,large write,large read", ks, ","); printf "%-12s %16s %16s %8s\n", "set/op", "mlflow-archive", "tar+zstd", "ours/base"; for (i=1;i<=n;i++) {k=ks[i]; printf "%-12s %16d %16d %7.1f%%\n", k, v[k,"ours"], v[k,"base"], 100*v[k,"ours"]/v[k,"base"]}}'
