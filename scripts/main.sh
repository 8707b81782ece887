#!/usr/bin/env bash
# scripts/main.sh [--minutes N] [--lang de|fr] [--db FILE]: the main job, from a fresh Debian 12
# machine to BLEU: installs what is missing and builds (scripts/setup.sh), builds a real English-X
# parallel corpus from Debian's packages (scripts/get-corpus.sh), imports it, learns the subword
# vocabulary, trains for N minutes (default 15) on all cores (train's default model: bidirectional
# encoder + attention; bf16 products where the CPU has them), averages the last three checkpoints
# (seqlite average), translates a few test sentences through stdin with that model,
# and scores the test split (BLEU, chrF). Why these settings: README, "Translation quality". A line
# per stage; a re-run reuses the corpus, the database, the vocabulary and the trained model that are
# already there (training resumes and continues for another N minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=15; LANG_T=de; DB=work/run.db
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes) MINUTES=$2; shift 2 ;;
    --lang) LANG_T=$2; shift 2 ;;
    --db) DB=$2; shift 2 ;;
    *) echo "usage: scripts/main.sh [--minutes N] [--lang de|fr] [--db FILE]" >&2; exit 2 ;;
  esac
done
DATA=work/data-$LANG_T
SEQ=build/tools/seqlite
stage() { printf '\n== %s: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

stage "setup: install missing packages, build"
bash scripts/setup.sh build

stage "corpus: English-$LANG_T from Debian's translated package descriptions ($DATA)"
if [ ! -s "$DATA/test.$LANG_T" ]; then
  bash scripts/get-corpus.sh "$DATA" "$LANG_T"
fi
wc -l "$DATA"/{train,valid,test}.en | sed 's/^/   /' >&2

mkdir -p "$(dirname "$DB")"
stage "import into $DB"
for split in train valid test; do
  if [ -f "$DB" ] && [ "$(sqlite3 "$DB" "SELECT count(*) FROM corpus WHERE name='$split'")" != 0 ]; then
    echo "   $split: already imported" >&2
  else
    "$SEQ" import "$DB" "$DATA/$split.en" "$DATA/$split.$LANG_T" --split "$split" --name "$split" \
      --src-lang en --tgt-lang "$LANG_T"
  fi
done

stage "vocab: joint BPE"
if [ "$(sqlite3 "$DB" "SELECT count(*) FROM vocab")" = 0 ]; then
  "$SEQ" vocab "$DB"
else
  echo "   already learned" >&2
fi

stage "train for $MINUTES minutes"
# bf16 products: 1.5x the steps of fp32 in the same time and +2.9 BLEU at 15 minutes (README, "Precision");
# a CPU without AVX512-BF16 / AMX trains in fp32 and says so in one line
if [ "$(sqlite3 "$DB" "SELECT count(*) FROM checkpoint")" != 0 ]; then
  "$SEQ" train "$DB" --resume --time-limit "$MINUTES" --precision bf16
else
  "$SEQ" train "$DB" --time-limit "$MINUTES" --precision bf16
fi

stage "average the last three checkpoints"
MODEL=$({ "$SEQ" average "$DB" --last 3 || true; } | sed -n 's/^checkpoint \([0-9]*\):.*/\1/p')
[ -n "$MODEL" ] || MODEL=best   # a run with fewer checkpoints: its best
echo "   checkpoint $MODEL" >&2

stage "translate five test sentences through stdin (beam 5)"
head -5 "$DATA/test.en" > work/sample.en
"$SEQ" translate "$DB" --checkpoint "$MODEL" < work/sample.en > work/sample.hyp
paste -d '\n' work/sample.en work/sample.hyp <(head -5 "$DATA/test.$LANG_T") /dev/null |
  awk 'NR%4==1{print "   src: " $0} NR%4==2{print "   hyp: " $0} NR%4==3{print "   ref: " $0}'

stage "evaluate on the test split (beam 5): BLEU and chrF"
"$SEQ" eval "$DB" --split test --checkpoint "$MODEL" --beam 5
