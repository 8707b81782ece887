#!/usr/bin/env bash
# tools/fuzz.sh TARGET|all SECONDS [LIBFUZZER_OPTION...]: builds the libFuzzer targets of tests/fuzz/
# (in build-fuzz: clang, -fsanitize=fuzzer-no-link,address,undefined for the libraries, the fuzzer
# runtime for the targets, meson option fuzz) and runs TARGET (or each target in turn) for SECONDS
# seconds on a scratch copy of its seed corpus tests/fuzz/seeds/TARGET (the committed seeds never
# grow). Prints libFuzzer's progress lines (execs, cov:, ft:) and a summary line per target:
# "fuzz TARGET: N execs in S s, cov C ft F, findings K". A finding (crash, leak, sanitizer report,
# failed property check, timeout, out of memory) is saved as build-fuzz/findings/TARGET/crash-*
# etc.; after fixing it, copy it to tests/fuzz/regress/TARGET/ so tests/test_fuzz.c replays it.
# Environment: FUZZ_JOBS (default 1) runs that many fuzzing processes (-fork) per target.
set -uo pipefail
cd "$(dirname "$0")/.."

targets=(normalize bpe import translate tok13a metrics db_open ckpt)
if [ $# -lt 2 ]; then
  echo "usage: tools/fuzz.sh TARGET|all SECONDS [LIBFUZZER_OPTION...]  (targets: ${targets[*]})" >&2
  exit 2
fi
what=$1 secs=$2; shift 2
if [ "$what" = all ]; then run=("${targets[@]}")
elif [[ " ${targets[*]} " == *" $what "* ]]; then run=("$what")
else echo "tools/fuzz.sh: unknown target '$what' (${targets[*]})" >&2; exit 2; fi

BUILD=build-fuzz
if [ ! -f "$BUILD/build.ninja" ]; then
  CC=clang meson setup "$BUILD" -Dbuildtype=debugoptimized -Db_ndebug=false -Dtests=false -Dfuzz=true \
    -Db_sanitize=address,undefined -Db_lundef=false -Dc_args=-fsanitize=fuzzer-no-link >/dev/null || exit 1
fi
ninja -C "$BUILD" $(printf 'tests/fuzz/fuzz_%s ' "${run[@]}") >/dev/null || { ninja -C "$BUILD"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
status=0
for t in "${run[@]}"; do
  work=$(mktemp -d "${TMPDIR:-/tmp}/seqlite-fuzz-$t.XXXXXX")
  mkdir -p "$work/corpus" "$work/scratch" "$BUILD/findings/$t"
  cp tests/fuzz/seeds/"$t"/* "$work/corpus/" 2>/dev/null
  max_len=4096
  case $t in db_open) max_len=65536 ;; esac
  log=$BUILD/findings/$t.log
  SEQLITE_FUZZ_DIR=$work/scratch "$BUILD/tests/fuzz/fuzz_$t" -max_total_time="$secs" -max_len=$max_len \
    -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
    ${FUZZ_JOBS:+-fork=$FUZZ_JOBS -ignore_crashes=1} "$@" "$work/corpus" 2>&1 | tee "$log" |
    grep -E --line-buffered '^#[0-9]+.*(INITED|NEW|REDUCE|pulse|DONE)|ERROR|SUMMARY|Test unit written|^fuzz:' |
    awk 'NR % 20 == 1 || !/NEW|REDUCE/'
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | awk '{s+=$2} END {print s+0}')
  last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
  cov=$(grep -oE 'cov: [0-9]+' <<<"$last" | awk '{print $2}')
  ft=$(grep -oE 'ft: [0-9]+' <<<"$last" | awk '{print $2}')
  findings=$(grep -c 'Test unit written' "$log")
  echo "fuzz $t: ${execs} execs in ${secs} s, cov ${cov:-?} ft ${ft:-?}, findings ${findings}"
  [ "$findings" -eq 0 ] || status=1
  rm -rf "$work"
done
exit $status
