#!/bin/sh
# tools/bench/scaling.sh -- thread scaling of training: `seqlite bench train` at 1 and 2 threads,
# alternating (1 2 1 2 ...), so that both see the same machine; prints each pair's ratio and the median.
#   sh tools/bench/scaling.sh [--pairs N] [--cores "Haswell Cooperlake"] [--config base|tiny] [--steps N]
# Defaults: 8 pairs, both OpenBLAS kernels, base, 10 timed steps. This machine's speed drifts within
# minutes, so a ratio of two runs minutes apart (as in compare.sh's table) says little; the pairs
# here are back to back. Also prints sgemm 2048^3 at 1 and 2 threads (the peer's sgemm_peak), the
# scaling of OpenBLAS itself, once per kernel.
# Env: BUILD (default <repo>/build-bench, release), PEER_DIR (the peer's folder, outside this repository;
# default below).
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$REPO/build-bench}
PEER_DIR=${PEER_DIR:-$REPO/../shared/bench}
PAIRS=8 CORES="Haswell Cooperlake" CONFIG=base STEPS=10
while [ $# -gt 0 ]; do
  case $1 in
    --pairs) PAIRS=$2; shift ;;
    --cores) CORES=$2; shift ;;
    --config) CONFIG=$2; shift ;;
    --steps) STEPS=$2; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "scaling.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -d "$BUILD" ] || meson setup "$BUILD" "$REPO" --buildtype=release >&2
ninja -C "$BUILD" tools/seqlite >&2
have_peak=0
if [ -f "$PEER_DIR/sgemm_peak.c" ] && cc -O2 -o "$BUILD/sgemm_peak" "$PEER_DIR/sgemm_peak.c" -lopenblas 2>/dev/null; then
  have_peak=1
fi
rate() { # kernel threads -> target tokens/s
  OPENBLAS_CORETYPE=$1 "$BUILD/tools/seqlite" bench train --config "$CONFIG" --threads "$2" --steps "$STEPS" |
    sed -n 's/.*"tgt_tokens_per_s": \([0-9.]*\).*/\1/p'
}
for c in $CORES; do
  ratios=""
  for p in $(seq "$PAIRS"); do
    a=$(rate "$c" 1)
    b=$(rate "$c" 2)
    r=$(echo "$a $b" | awk '{printf "%.3f", $2 / $1}')
    echo "$c pair $p: 1 thread $a, 2 threads $b tok/s: ${r}x"
    ratios="$ratios $r"
  done
  med=$(echo "$ratios" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {n=NR; print (n % 2) ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2}')
  echo "$c: $CONFIG training, 2 threads / 1 thread, median of $PAIRS back-to-back pairs: ${med}x"
  if [ $have_peak = 1 ]; then
    OPENBLAS_CORETYPE=$c "$BUILD/sgemm_peak" 1 2 | head -3 | tail -1 |
      awk -v c="$c" '{printf "%s: sgemm 2048^3 %s / %s GFLOP/s at 1 / 2 threads: %.2fx\n", c, $9, $11, $11 / $9}'
  fi
done
