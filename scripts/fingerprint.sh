#!/usr/bin/env bash
# scripts/fingerprint.sh [OUT]: a behaviour fingerprint for refactors that must change nothing.
# Makes a small synthetic corpus (awk, fixed seed), imports it, learns a vocabulary, trains a fixed
# 200-step run on 2 threads and prints, one block each: every train_log row (loss, lr, gradient norm;
# not the timings), every metric, the sha256 of every checkpoint tensor, `seqlite translate` output
# (greedy and beam 4, with --nbest) and `seqlite eval` output. Two trees are the same when their
# fingerprints are byte-identical: `diff <(scripts/fingerprint.sh) saved.txt`.
# FP_TRAIN_FLAGS: the architecture flags (default: the plain model, as the fingerprint was recorded).
# Needs a built tree (BUILD, default <repo>/build), sqlite3 and sha256sum.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SEQ=${BUILD:-$REPO/build}/tools/seqlite
OUT=${1:-/dev/stdout}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

# A toy translation task: target words are source words mapped through a fixed table, in the same order.
gen() { # n seed
  awk -v n="$1" -v seed="$2" 'BEGIN {
    split("the a cat dog sees eats big small red house tree runs quickly slowly blue green", W, " ");
    split("der ein katze hund sieht isst gross klein rot haus baum rennt schnell langsam blau gruen", G, " ");
    s = seed;
    for (i = 0; i < n; i++) {
      s = (s * 1103515245 + 12345) % 2147483648; len = 3 + s % 6;
      src = ""; tgt = "";
      for (j = 0; j < len; j++) {
        s = (s * 1103515245 + 12345) % 2147483648; w = 1 + int(s / 65536) % 16;
        src = src (j ? " " : "") W[w]; tgt = tgt (j ? " " : "") G[w];
      }
      print src > "/dev/stderr"; print tgt;
    }
  }'
}
for split in train:3000:7 valid:150:11 test:100:13; do
  IFS=: read -r name n seed <<<"$split"
  gen "$n" "$seed" 2>"$TMP/$name.en" >"$TMP/$name.de"
done
DB=$TMP/fp.db
{
  for name in train valid test; do
    "$SEQ" import "$DB" "$TMP/$name.en" "$TMP/$name.de" --split "$name" --name "$name" >/dev/null 2>&1
  done
  "$SEQ" vocab "$DB" --size 420 >/dev/null 2>&1
  "$SEQ" train "$DB" --steps 200 --layers 2 --emb 48 --hidden 64 --batch 32 --lr 0.01 --threads 2 \
    --valid-every 100 --save-every 100 --log-every 10 --valid-bleu 50 --keep 5 \
    ${FP_TRAIN_FLAGS:---attention none --encoder uni} >/dev/null 2>&1
  echo "== train_log"
  sqlite3 "$DB" "SELECT step, epoch, printf('%.9g', loss), printf('%.9g', lr), printf('%.9g', grad_norm)
                 FROM train_log ORDER BY run_id, step"
  echo "== metric"
  sqlite3 "$DB" "SELECT step, split, name, printf('%.9g', value), checkpoint_id FROM metric ORDER BY id"
  echo "== checkpoint"
  sqlite3 "$DB" "SELECT id, step, epoch, valid_ppl, valid_bleu, is_best, hex(rng_state), data_pos
                 FROM checkpoint ORDER BY id"
  echo "== tensor"
  sqlite3 "$DB" "SELECT checkpoint_id || ' ' || name || ' ' || shape || ' ' || hex(data) FROM tensor
                 ORDER BY checkpoint_id, name" | while read -r ck name shape hx; do
    echo "$ck $name $shape $(printf '%s' "$hx" | sha256sum | cut -c1-16)"
  done
  echo "== translate greedy"
  head -20 "$TMP/test.en" | "$SEQ" translate "$DB" --beam 1 2>/dev/null
  echo "== translate beam 4 nbest 2"
  head -5 "$TMP/test.en" | "$SEQ" translate "$DB" --beam 4 --nbest 2 2>/dev/null
  echo "== eval"
  "$SEQ" eval "$DB" --split test --beam 4 2>&1 | sed "s/: decoding .*//"
  sqlite3 "$DB" "SELECT beam, printf('%.6g', length_penalty), hypothesis, printf('%.6g', score)
                 FROM translation ORDER BY id LIMIT 20"
} >"$OUT"
