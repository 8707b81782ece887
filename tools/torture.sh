#!/bin/bash
# tools/torture.sh [--rounds N] [--bin SEQLITE] [--keep]: crash torture. Kills seqlite with SIGKILL
# while it trains, imports, learns a vocabulary, evaluates and exports, at random moments and (with
# strace's fault injection) at the moment SQLite syncs a commit, N times (default 30). After every
# kill it checks that the database passes PRAGMA integrity_check, that the last checkpoint loads and
# translates, and that `train --resume` continues from no earlier step than the last committed
# checkpoint. Prints one line per round and "torture: N/M rounds passed"; exit 0 when all passed.
# Runs on a synthetic corpus of its own in a temporary folder (removed unless --keep).
set -u
rounds=30 keep=0
bin="$(cd "$(dirname "$0")/.." && pwd)/build/tools/seqlite"
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "usage: tools/torture.sh [--rounds N] [--bin SEQLITE] [--keep]" >&2; exit 2 ;;
  esac
done
[ -x "$bin" ] || { echo "torture: no seqlite binary at $bin (build first, or --bin)" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "torture: needs the sqlite3 shell (apt-get install sqlite3)" >&2; exit 2; }
have_strace=0; command -v strace >/dev/null && have_strace=1

dir=$(mktemp -d /tmp/seqlite-torture.XXXXXX)
[ "$keep" = 1 ] || trap 'rm -rf "$dir"' EXIT
db=$dir/t.db
q() { sqlite3 -cmd '.timeout 10000' "$db" "$1"; }

# a synthetic corpus: numbers and words, so the model has something to learn
corpus() { # corpus NAME N SEED
  awk -v n="$2" -v s="$3" 'BEGIN { srand(s); split("the a cat dog sees likes big small red old", w, " ");
    split("die eine katze hund sieht mag gross klein rot alt", v, " ");
    for (i = 0; i < n; i++) { k = 3 + int(rand() * 8); a = ""; b = "";
      for (j = 0; j < k; j++) { x = 1 + int(rand() * 10); a = a (j ? " " : "") w[x] " " i % 97; b = b (j ? " " : "") v[x] " " i % 97 }
      print a > "/dev/stderr"; print b } }' 2> "$dir/$1.en" > "$dir/$1.de"
}
corpus train 3000 1; corpus valid 50 2; corpus test 40 3; corpus more 200000 4
"$bin" import "$db" "$dir/train.en" "$dir/train.de" >/dev/null 2>&1 &&
"$bin" import "$db" "$dir/valid.en" "$dir/valid.de" --split valid >/dev/null 2>&1 &&
"$bin" import "$db" "$dir/test.en" "$dir/test.de" --split test >/dev/null 2>&1 &&
"$bin" vocab "$db" --size 400 --min-count 1 >/dev/null 2>&1 || { echo "torture: set-up failed" >&2; exit 1; }
train_flags=(--layers 1 --emb 32 --hidden 64 --batch 16 --save-every 3 --keep 2 --valid-every 6
             --valid-bleu 10 --log-every 1 --threads 1)
"$bin" train "$db" "${train_flags[@]}" --steps 3 >/dev/null 2>&1 || { echo "torture: first training failed" >&2; exit 1; }
steps=3

# kill_after SECONDS CMD...: runs CMD, SIGKILLs it after SECONDS (if still running); returns 0
kill_after() {
  local t=$1; shift
  "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$t"
  landed="finished before the kill"
  kill -9 "$pid" 2>/dev/null && landed="killed after ${t} s"
  wait "$pid" 2>/dev/null
  return 0
}
# kill_at_sync N CMD...: runs CMD under strace, which SIGKILLs it at its Nth fsync/fdatasync (a commit
# or checkpoint of the WAL reaching the disk); the command may also end before
kill_at_sync() {
  local n=$1; shift
  (strace -f -qq -o /dev/null -e trace=fsync,fdatasync -e inject=fsync,fdatasync:signal=KILL:when="$n" \
    "$@" >/dev/null 2>&1)
  [ $? -eq 137 ] && landed="killed at sync $n" || landed="finished before sync $n"
  return 0
}
# kill_at_write N CMD...: likewise at its Nth pwrite64 (inside a transaction's writes to the WAL)
kill_at_write() {
  local n=$1; shift
  (strace -f -qq -o /dev/null -e trace=pwrite64 -e inject=pwrite64:signal=KILL:when="$n" "$@" >/dev/null 2>&1)
  [ $? -eq 137 ] && landed="killed at write $n" || landed="finished before write $n"
  return 0
}
rnd() { awk -v s="$RANDOM" -v a="$1" -v b="$2" 'BEGIN { srand(s); printf "%.2f", a + rand() * (b - a) }'; }

has_export=0; "$bin" help export >/dev/null 2>&1 && has_export=1
kinds=(train train sync import vocab eval train export)
passed=0 killed=0
for ((i = 1; i <= rounds; i++)); do
  kind=${kinds[$(( (i - 1) % ${#kinds[@]} ))]}
  [ "$kind" = sync ] && [ "$have_strace" = 0 ] && kind=train
  [ "$kind" = export ] && [ "$has_export" = 0 ] && kind=train
  before=$(q "SELECT coalesce(max(step), 0) FROM checkpoint WHERE averaged_from IS NULL")
  steps=$((steps + 40))
  case $kind in
    train) kill_after "$(rnd 0.3 2.5)" "$bin" train "$db" --resume --steps "$steps" ;;
    sync) kill_at_sync "$((1 + RANDOM % 4))" "$bin" train "$db" --resume --steps "$steps" 2>/dev/null ;;
    import) # into the test split: the training data stays as the run started on it
      kill_after "$(rnd 0.05 0.6)" "$bin" import "$db" "$dir/more.en" "$dir/more.de" --split test --name "more-$i" ;;
    vocab) if [ "$have_strace" = 1 ]; then kill_at_write "$((1 + RANDOM % 40))" "$bin" vocab "$db" --size 300 --min-count 1 2>/dev/null
           else kill_after "$(rnd 0.01 0.3)" "$bin" vocab "$db" --size 300 --min-count 1; fi ;;
    eval) if [ "$have_strace" = 1 ]; then kill_at_write "$((1 + RANDOM % 8))" "$bin" eval "$db" --beam 2 --threads 1 --limit 40 2>/dev/null
          else kill_after "$(rnd 0.02 0.4)" "$bin" eval "$db" --beam 2 --threads 1 --limit 40; fi ;;
    export) rm -f "$dir/out.db"; kill_after "$(rnd 0.02 0.4)" "$bin" export "$db" "$dir/out.db" ;;
  esac
  case $landed in killed*) killed=$((killed + 1)) ;; esac
  why=""
  [ "$(q 'PRAGMA integrity_check')" = ok ] || why="integrity_check failed"
  if [ -z "$why" ] && ! echo "a cat sees the dog 5" | "$bin" translate "$db" --checkpoint last >/dev/null 2>"$dir/err"; then
    why="the last checkpoint does not translate: $(head -c 300 "$dir/err")"
  fi
  if [ -z "$why" ] && [ "$kind" = export ] && [ -e "$dir/out.db" ] &&
     ! echo "a cat" | "$bin" translate "$dir/out.db" >/dev/null 2>"$dir/err"; then
    why="a killed export left an unusable $dir/out.db: $(head -c 300 "$dir/err")"
  fi
  if [ -z "$why" ]; then
    now=$(q "SELECT coalesce(max(step), 0) FROM checkpoint WHERE averaged_from IS NULL")
    if ! "$bin" train "$db" --resume --steps "$((now + 1))" >/dev/null 2>"$dir/err"; then
      why="--resume failed: $(tail -n 2 "$dir/err" | head -c 300)"
    else
      done_steps=$(q "SELECT steps_done FROM run ORDER BY id DESC LIMIT 1")
      [ "$now" -ge "$before" ] && [ "$done_steps" -gt "$now" ] ||
        why="resume went back: last checkpoint step $before before the kill, $now after, resumed run at $done_steps"
      steps=$done_steps
    fi
  fi
  if [ -z "$why" ]; then
    passed=$((passed + 1)); echo "round $i ($kind, $landed): ok"
  else
    echo "round $i ($kind, $landed): FAILED: $why"
  fi
done
echo "torture: $passed/$rounds rounds passed ($killed of them killed mid-command)"
[ "$passed" -eq "$rounds" ]
