#!/bin/sh
# tools/bench/compare.sh -- seqlite vs the PyTorch peer (tools/bench/peer_torch.py), side by side.
# Builds seqlite (release) and sgemm_peak, then runs seqlite and the peer alternately (A B A B ...) for every
# config / mode / thread count / OpenBLAS kernel and prints a markdown table of medians, with % of the
# roofline (GEMM FLOPs of the peer's FLOP model / sgemm 2048^3 GFLOP/s measured here at that thread count
# and kernel).
#
#   sh tools/bench/compare.sh [--quick] [--pairs N] [--cores "Haswell Cooperlake"] [--threads "1 2"]
#                             [--configs "tiny base"] [--modes "train greedy beam"] [--out FILE.jsonl]
#                             [--models "plain bi-general"]
#   --quick   base train + greedy + beam at 1 and 2 threads, Haswell only, 1 pair
#   --table FILE.jsonl  no runs: measure the peaks and print the table of an earlier run's raw file
#   --models  the models compared: plain (no attention, uni encoder: the peer's original model) and ENC-ATT,
#             ENC uni|bi, ATT dot|general|mlp (e.g. bi-general, train's default); default: plain
#   --ref-peaks  use fixed quiet-machine sgemm 2048^3 medians (the REF_PEAKS table below) instead of
#             measuring them (on a busy machine)
#   default   tiny and base, train/greedy/beam, 1 and 2 threads, Haswell and Cooperlake, 3 pairs
#             (the slowest: run times are in the README)
# Env: BUILD (default <repo>/build-bench), PY (default /usr/bin/python3), PEER_DIR (the peer's folder;
# default tools/bench, whose peer_torch.py is the shared peer plus the attention model), SGEMM_PEAK (the
# sgemm probe's source, default ../shared/bench/sgemm_peak.c), SEQLITE_ARGS (extra flags for seqlite bench).
# Medians use the runs during which other processes kept at most 0.25 cores busy (all runs, starred, if none).
# Method: alternating runs and medians, as the peer's own runner does.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$REPO/build-bench}
PY=${PY:-/usr/bin/python3}
PEER_DIR=${PEER_DIR:-$REPO/tools/bench}
SGEMM_PEAK=${SGEMM_PEAK:-$REPO/../shared/bench/sgemm_peak.c}
SEQLITE_ARGS=${SEQLITE_ARGS:-}
PAIRS=3 CORES="Haswell Cooperlake" THREADS="1 2" CONFIGS="tiny base" MODES="train greedy beam" REF_PEAKS=0
MODELS=plain
TABLE_ONLY=
OUT=${OUT:-$BUILD/compare.jsonl}
while [ $# -gt 0 ]; do
  case $1 in
    --quick) PAIRS=1 CORES=Haswell CONFIGS=base ;;
    --pairs) PAIRS=$2; shift ;;
    --cores) CORES=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --configs) CONFIGS=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --models) MODELS=$2; shift ;;
    --out) OUT=$2; shift ;;
    --ref-peaks) REF_PEAKS=1 ;;
    --table) TABLE_ONLY=$2; OUT=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
START=$(date +%s)

# ---- what it needs ----
if ! $PY -c 'import torch' 2>/dev/null; then
  echo "installing python3-torch (Debian package; large)..." >&2
  apt-get install -y -q python3-torch >&2
fi
[ -f "$PEER_DIR/peer_torch.py" ] || { echo "compare.sh: no peer_torch.py in $PEER_DIR" >&2; exit 1; }
[ -d "$BUILD" ] || meson setup "$BUILD" "$REPO" --buildtype=release >&2
ninja -C "$BUILD" tools/seqlite >&2
SEQLITE=$BUILD/tools/seqlite
cc -O2 -o "$BUILD/sgemm_peak" "$SGEMM_PEAK" -lopenblas
[ -n "$TABLE_ONLY" ] || : > "$OUT"

# ---- roofline: sgemm 2048^3 at each kernel and thread count (the first table row of sgemm_peak) ----
# One sgemm_peak run per kernel at the start of every pair (3 runs before a --table), so the peaks are
# sampled across the whole run as the workloads are: this machine's speed drifts over minutes.
PEAKS=$BUILD/compare_peaks.txt
: > "$PEAKS"
peak_run() { # kernel: appends "kernel threads GFLOP/s" per thread count
  # columns: name(2 words) M N K tA tB MFLOP then (med best) per thread count
  line=$(OPENBLAS_CORETYPE=$1 "$BUILD/sgemm_peak" $THREADS | head -3 | tail -1)
  i=0
  for t in $THREADS; do
    echo "$line" | awk -v c="$1" -v t="$t" -v k=$((9 + 2 * i)) '{print c, t, $k}' >> "$PEAKS"
    i=$((i + 1))
  done
}
if [ "$REF_PEAKS" = 1 ]; then
  for c in $CORES; do
    for t in $THREADS; do
      case $c-$t in Haswell-1) g=56 ;; Haswell-2) g=104 ;; Cooperlake-1) g=86 ;; Cooperlake-2) g=172 ;; *) g=0 ;; esac
      echo "$c $t $g" >> "$PEAKS"
    done
  done
elif [ -n "$TABLE_ONLY" ]; then
  for r in 1 2 3; do for c in $CORES; do peak_run "$c"; done; done
fi

# ---- runs, alternating seqlite and the peer ----
args_for() { # config mode -> flags
  case $1-$2 in
    tiny-train) echo "--config tiny --steps 60 --warmup 5" ;;
    base-train) echo "--config base --steps 8 --warmup 2" ;;
    *-greedy) echo "--config $1 --batch 32 --sentences 64" ;;
    *-beam) echo "--config $1 --batch 32 --sentences 64 --beam 5" ;;
  esac
}
model_flags() { # model impl -> flags of seqlite bench (impl seqlite) or of the peer
  case $1 in
    plain) echo "" ;;
    uni-*|bi-*)
      enc=${1%%-*} att=${1#*-}
      if [ "$2" = seqlite ]; then echo "--attention $att --encoder $enc"
      elif [ "$enc" = bi ]; then echo "--attention $att --bidirectional"
      else echo "--attention $att"; fi ;;
    *) echo "compare.sh: unknown model $1 (plain, uni-ATT, bi-ATT)" >&2; exit 2 ;;
  esac
}
for md in $MODELS; do model_flags "$md" seqlite >/dev/null; done
[ -n "$TABLE_ONLY" ] && PAIRS=0
for p in $(seq "$PAIRS"); do
  for c in $CORES; do
    [ "$REF_PEAKS" = 1 ] || peak_run "$c"
    for t in $THREADS; do
      for cfg in $CONFIGS; do
        for md in $MODELS; do
        for m in $MODES; do
          a=$(args_for "$cfg" "$m")
          echo "pair $p: $c $t threads $cfg $md $m" >&2
          OPENBLAS_CORETYPE=$c "$SEQLITE" bench "$m" $a $(model_flags "$md" seqlite) --threads "$t" $SEQLITE_ARGS |
            sed 's/^{/{"impl": "seqlite", "config": "'"$cfg"'", "model": "'"$md"'", /' >> "$OUT"
          (cd "$PEER_DIR" && OPENBLAS_CORETYPE=$c $PY peer_torch.py "$m" $a $(model_flags "$md" peer) --threads "$t") |
            sed 's/^{/{"impl": "peer", "config": "'"$cfg"'", "model": "'"$md"'", /' >> "$OUT"
        done
        done
      done
    done
  done
done

# ---- table ----
$PY - "$OUT" "$PEAKS" <<'PYEOF'
import json, statistics as st, sys, collections
samples = collections.defaultdict(list)
for line in open(sys.argv[2]):
    c, t, g = line.split()
    samples[c, int(t)].append(float(g))
peaks = {k: st.median(v) for k, v in samples.items()}
runs = collections.defaultdict(list)
for line in open(sys.argv[1]):
    j = json.loads(line)
    runs[j["config"], j.get("model", "plain"), j["mode"], j["threads"], j["blas"], j["impl"]].append(j)

def gflop_per_unit(j):  # the FLOP model of tools/bench/bench.c: GEMM FLOPs per step / sentence
    E, H, L, S, T, V = j["emb"], j["hidden"], j["layers"], j["src_len"], j["tgt_len"], j["tgt_vocab"]
    model = j.get("model", "plain")
    bi, att = model.startswith("bi-"), (model.split("-", 1)[1] if model != "plain" else "none")
    def enc(rows):
        f = 0
        for l in range(L):
            I = E if l == 0 else H
            f += 2 * 2 * rows * S * 2 * H * (I + H / 2) if bi else 2 * rows * S * 4 * H * (I + H)
        return f + (2 * S * rows * H * H if att in ("general", "mlp") else 0)
    def step(rows):
        f = sum(2 * rows * 4 * H * ((E + (H if att != "none" else 0) if l == 0 else H) + H) for l in range(L))
        if att != "none":
            f += 2 * rows * H * H + 3 * rows * S * H if att == "mlp" else 2 * rows * S * H
            f += 2 * rows * S * H + 2 * rows * 2 * H * H
        return f + 2 * rows * H * V
    if j["mode"] == "train":
        return 3 * (enc(j["batch"]) + T * step(j["batch"])) / 1e9
    K = j.get("beam", 1) if j["mode"] == "beam" else 1
    return (enc(1) + T * step(K)) / 1e9

def rate(j):
    return j["steps_per_s"] if j["mode"] == "train" else j["sentences_per_s"]

def pick(rs):  # runs with at most 0.25 cores of other load, else all of them
    clean = [r for r in rs if r.get("others_cores", 0) <= 0.25]
    return (clean, "") if clean else (rs, "*")

print("| config | model | mode | threads | kernel | seqlite tok/s | peer tok/s | ratio | seqlite % roofline | "
      "peer % roofline | RSS MiB seqlite / peer | clean runs seqlite, peer |")
print("|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
order = {"tiny": 0, "base": 1, "train": 0, "greedy": 1, "beam": 2, "plain": -1}
keys = sorted({k[:5] for k in runs},
              key=lambda k: (order.get(k[0], 9), order.get(k[1], 0), k[1], order.get(k[2], 9), k[4], k[3]))
for cfg, model, mode, th, blas in keys:
    a0 = runs.get((cfg, model, mode, th, blas, "seqlite"), [])
    b0 = runs.get((cfg, model, mode, th, blas, "peer"), [])
    if not a0 or not b0:
        continue
    (a, fa), (b, fb) = pick(a0), pick(b0)
    ta, tb = st.median(r["tgt_tokens_per_s"] for r in a), st.median(r["tgt_tokens_per_s"] for r in b)
    peak = peaks.get((blas, th))
    def roof(rs):
        if not peak:
            return "-"
        return "%.0f%%" % (100 * st.median(rate(r) for r in rs) * gflop_per_unit(rs[0]) / peak)
    ra, rb = st.median(r["peak_rss_mib"] for r in a), st.median(r["peak_rss_mib"] for r in b)
    print(f"| {cfg} | {model} | {mode} | {th} | {blas} | {ta:.0f}{fa} | {tb:.0f}{fb} | {ta / tb:.2f} | {roof(a)} | {roof(b)} | "
          f"{ra:.0f} / {rb:.0f} | {len(a) if not fa else 0}/{len(a0)}, {len(b) if not fb else 0}/{len(b0)} |")
print()
print("\\* no run without other load (more than 0.25 cores busy elsewhere): median of all runs.")
print("roofline: sgemm 2048^3 GFLOP/s per (kernel, threads), median of the runs (all runs): " +
      ", ".join(f"{c} {t}T {g:.1f} ({' '.join('%.0f' % x for x in samples[c, t])})"
                for (c, t), g in sorted(peaks.items())))
PYEOF
echo "compare.sh: $(( $(date +%s) - START )) s; raw runs in $OUT" >&2
