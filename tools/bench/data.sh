#!/bin/sh
# tools/bench/data.sh -- speed of the data side: import, vocabulary learning, BPE encoding.
#   sh tools/bench/data.sh [--pairs N] [--runs R] [--corpus DIR]
#   import    N synthetic pairs (default 1,000,000) of about 20 words a side (awk, seeded), into a
#             fresh database; pairs/s from the wall time of `seqlite import`
#   vocab     `seqlite vocab --size 8000` (joint BPE) on the train split of DIR/train.{en,de}
#             (default work/data-de, made by scripts/main.sh or scripts/get-corpus.sh; skipped if
#             absent) and on the synthetic pairs otherwise; seconds, as `seqlite vocab` reports them
#   tokenize  `seqlite tokenize --ids` of all the source text (one thread); MB/s of input
# Each measurement runs R times (default 3); the median is printed. Needs a built tree (BUILD, default
# <repo>/build). Temporary files go to a mktemp directory that is removed at the end.
set -eu
REPO=$(cd "$(dirname "$0")/../.." && pwd)
SEQ=${BUILD:-$REPO/build}/tools/seqlite
PAIRS=1000000 RUNS=3 CORPUS=$REPO/work/data-de
while [ $# -gt 0 ]; do
  case $1 in
    --pairs) PAIRS=$2; shift ;;
    --runs) RUNS=$2; shift ;;
    --corpus) CORPUS=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "data.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
[ -x "$SEQ" ] || { echo "data.sh: $SEQ not built (bash scripts/setup.sh build)" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

now() { date +%s.%N; }
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# synthetic pairs: 8-32 words per side from a Zipf-ish 20,000-word vocabulary with some non-ASCII
awk -v n="$PAIRS" 'BEGIN {
  srand(7);
  split("ä ö ü ß é ñ ç ø", acc, " ");
  for (i = 1; i <= n; i++) {
    for (side = 0; side < 2; side++) {
      w = 8 + int(rand() * 25); line = "";
      for (j = 0; j < w; j++) {
        r = int(20000 * rand() * rand() * rand());
        t = sprintf("w%d", r);
        if (r % 13 == 0) t = t acc[1 + r % 8];
        line = line (j ? " " : "") t;
      }
      if (side == 0) src = line; else tgt = line;
    }
    print src > "/dev/stderr"; print tgt;
  }
}' 2>"$TMP/syn.src" >"$TMP/syn.tgt"
bytes=$(cat "$TMP/syn.src" "$TMP/syn.tgt" | wc -c)
echo "synthetic: $PAIRS pairs, $((bytes / 1000000)) MB" >&2

r=1
: > "$TMP/imp"
while [ $r -le "$RUNS" ]; do
  rm -f "$TMP/imp.db" "$TMP/imp.db-wal" "$TMP/imp.db-shm"
  t0=$(now)
  "$SEQ" import "$TMP/imp.db" "$TMP/syn.src" "$TMP/syn.tgt" --name syn 2>/dev/null
  t1=$(now)
  echo "$t0 $t1" | awk -v n="$PAIRS" '{printf "%.0f\n", n / ($2 - $1)}' >> "$TMP/imp"
  r=$((r + 1))
done
echo "import: $(median < "$TMP/imp") pairs/s (median of $RUNS; runs: $(tr '\n' ' ' < "$TMP/imp"))"

if [ -s "$CORPUS/train.en" ] && [ -s "$CORPUS/train.de" ]; then
  "$SEQ" import "$TMP/v.db" "$CORPUS/train.en" "$CORPUS/train.de" --name train 2>/dev/null
  what="$(wc -l < "$CORPUS/train.en") real pairs of $CORPUS"
  text=$CORPUS/train.en
else
  cp "$TMP/imp.db" "$TMP/v.db"
  what="the synthetic pairs"
  text=$TMP/syn.src
fi
r=1
: > "$TMP/voc"
while [ $r -le "$RUNS" ]; do
  t0=$(now)
  "$SEQ" vocab "$TMP/v.db" --size 8000 2>"$TMP/voc.err"
  t1=$(now)
  echo "$t0 $t1" | awk '{printf "%.2f\n", $2 - $1}' >> "$TMP/voc"
  r=$((r + 1))
done
echo "vocab: 8000 joint BPE tokens from $what in $(median < "$TMP/voc") s wall (median of $RUNS)"
sed 's/^/  /' "$TMP/voc.err"

tb=$(wc -c < "$text")
r=1
: > "$TMP/tok"
while [ $r -le "$RUNS" ]; do
  t0=$(now)
  "$SEQ" tokenize "$TMP/v.db" --ids < "$text" > /dev/null
  t1=$(now)
  echo "$t0 $t1" | awk -v b="$tb" '{printf "%.1f\n", b / 1e6 / ($2 - $1)}' >> "$TMP/tok"
  r=$((r + 1))
done
echo "tokenize: $(median < "$TMP/tok") MB/s of text ($((tb / 1000)) kB, includes loading the vocabulary; median of $RUNS)"
