#!/usr/bin/env bash
# scripts/tsan.sh SEQLITE: the threaded code under ThreadSanitizer, through the command line.
# SEQLITE is a binary built with -Db_sanitize=thread (scripts/test.sh builds it in build-tsan with
# clang and LLVM's libomp, whose Archer tool tells TSan about OpenMP's barriers and locks).
# Criterion cannot run under TSan (its sandbox arena wants an address TSan's mmap refuses: "Could
# not initialize inheritable arena"), so the checks are commands, each one count:
#   - training on 1 and on 2 threads (attention, bidirectional encoder, label smoothing, dropout)
#     gives the same translations; a resume on 2 threads continues;
#   - translation with beam 4 and 3-best on 2 threads (the default sub-batches of the 40 lines) equals the 1-thread output.
# A check fails when a command exits non-zero, prints a ThreadSanitizer report, or an output differs.
# Ends with "N passed, N failed"; exit 1 on any failure.
set -uo pipefail
bin=${1:?usage: scripts/tsan.sh SEQLITE}
export TSAN_OPTIONS="ignore_noninstrumented_modules=1 exitcode=66 ${TSAN_OPTIONS:-}"
export OPENBLAS_NUM_THREADS=1 # OpenBLAS' own threads are not instrumented; seqlite's BLAS calls run on one
dir=$(mktemp -d /tmp/seqlite-tsan.XXXXXX)
trap 'rm -rf "$dir"' EXIT
passed=0; failed=0

# check NAME COMMAND...: runs COMMAND with stdout and stderr to $dir/NAME.out and .err; counts it.
check() {
  local name=$1; shift
  if "$@" >"$dir/$name.out" 2>"$dir/$name.err" && ! grep -q 'ThreadSanitizer' "$dir/$name.err"; then
    passed=$((passed + 1))
  else
    echo "!! tsan: $name failed: $*"; sed 's/^/   /' "$dir/$name.err" | head -60
    failed=$((failed + 1))
  fi
}
same() { # same NAME FILE FILE
  if cmp -s "$2" "$3"; then passed=$((passed + 1)); else echo "!! tsan: $1: $2 and $3 differ"; failed=$((failed + 1)); fi
}

awk 'BEGIN { srand(7); split("the a cat dog sees likes big small red old", w, " ");
  split("die eine katze hund sieht mag gross klein rot alt", v, " ");
  for (i = 0; i < 240; i++) { k = 2 + int(rand() * 6); a = ""; b = "";
    for (j = 0; j < k; j++) { x = 1 + int(rand() * 10); a = a (j ? " " : "") w[x]; b = b (j ? " " : "") v[x] }
    print a > "/dev/stderr"; print b } }' 2>"$dir/src" >"$dir/tgt"
head -n 200 "$dir/src" >"$dir/train.en"; head -n 200 "$dir/tgt" >"$dir/train.de"
tail -n 40 "$dir/src" >"$dir/valid.en"; tail -n 40 "$dir/tgt" >"$dir/valid.de"

db=$dir/a.db
check import "$bin" import "$db" "$dir/train.en" "$dir/train.de"
check import_valid "$bin" import "$db" "$dir/valid.en" "$dir/valid.de" --split valid
check vocab "$bin" vocab "$db" --size 300 --min-count 1
cp "$db" "$dir/b.db"
flags=(--layers 1 --emb 16 --hidden 16 --batch 16 --steps 4 --save-every 2 --valid-every 2 --valid-bleu 5
  --dropout 0.1 --label-smoothing 0.1 --log-every 1)
check train_1_thread "$bin" train "$db" "${flags[@]}" --threads 1
check train_2_threads "$bin" train "$dir/b.db" "${flags[@]}" --threads 2
for t in 1 2; do
  check "translate_a_$t" sh -c '"$1" translate "$2" --checkpoint last --beam 4 --nbest 3 --threads "$3" <"$4" >"$5"' \
    _ "$bin" "$db" "$t" "$dir/valid.en" "$dir/a.$t.out"
done
check translate_b_2 sh -c '"$1" translate "$2" --checkpoint last --beam 4 --nbest 3 --threads 2 <"$3" >"$4"' \
  _ "$bin" "$dir/b.db" "$dir/valid.en" "$dir/b.2.out"
same threads_do_not_change_training "$dir/a.1.out" "$dir/b.2.out"
same threads_do_not_change_translation "$dir/a.1.out" "$dir/a.2.out"
check resume_2_threads "$bin" train "$dir/b.db" --resume --steps 6 --threads 2
check eval_2_threads "$bin" eval "$dir/b.db" --split valid --threads 2

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
