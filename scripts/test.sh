#!/usr/bin/env bash
# scripts/test.sh: the test command (CI runs it). Installs what is missing, checks the layout
# (scripts/check-layout.sh), then builds and runs every criterion test executable with `meson test`
# twice: in build-test (release optimisation, asserts on; then what `meson install` installs,
# scripts/check-install.sh) and in build-asan (AddressSanitizer + UBSan, without the slow learning
# suites; LeakSanitizer on: a leak in a test worker or in a seqlite child fails the run), then a
# third build, build-tsan (clang, -O1, ThreadSanitizer, LLVM's libomp: its Archer tool, loaded by
# libomp when the program has TSan, annotates OpenMP's barriers and locks, so no suppressions are
# needed, unlike GCC's uninstrumented libgomp), whose binary scripts/tsan.sh runs through threaded
# training (1 vs 2 threads, resume) and translation/eval (beam, 2 threads); criterion itself cannot
# run under TSan. The main job's build/ is not touched.
# Ends with a line "N passed, N failed" counting criterion tests over both runs; a failed layout
# check, a failed install check, a failed build, and an executable that crashed, timed out or exited
# non-zero without a failing test each count as one failure.
# SEQLITE_WERROR=1 builds both with -Werror and -Wshadow -Wstrict-prototypes -Wmissing-prototypes
# -Wvla (meson options werror, strict_warnings); under CI=true the default is werror_under_ci.
set -uo pipefail
cd "$(dirname "$0")/.."

werror_under_ci=1  # the switch: 1 turns -Werror with the strict warnings on in CI
werror=${SEQLITE_WERROR:-$([ "${CI:-}" = true ] && echo "$werror_under_ci" || echo 0)}
if [ "$werror" = 1 ]; then warn_opts=(-Dwerror=true -Dstrict_warnings=true)
else warn_opts=(-Dwerror=false -Dstrict_warnings=false); fi

passed=0; failed=0

echo "== layout"
bash scripts/check-layout.sh || failed=$((failed + 1))

# count_log label builddir: adds the criterion counts of the last `meson test` in builddir to
# passed/failed, printing what went wrong and a summary line.
count_log() {
  local out
  out=$(python3 - "$1" "$2/meson-logs/testlog.json" <<'EOF'
import json, re, sys
label, path = sys.argv[1], sys.argv[2]
passed = failed = 0
try:
    runs = [json.loads(line) for line in open(path) if line.strip()]
except OSError:
    runs = []
if not runs:
    print(f"!! {label}: no test results in {path}")
    failed += 1
for r in runs:
    text = (r.get("stdout") or "") + (r.get("stderr") or "")
    syn = re.findall(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", text)
    if not syn:
        print(f"!! {label}: test_{r['name']} printed no Synthesis line ({r['result']}: crashed?)")
        failed += 1
        continue
    tested, passing = int(syn[-1][0]), int(syn[-1][1])
    bad = tested - passing  # criterion counts a crashed test in Failing too; this counts it once
    if bad == 0 and r["result"] != "OK":
        print(f"!! {label}: test_{r['name']} ended {r['result']} after its tests passed")
        bad = 1
    # a sanitizer report fails the run even where the process's status is lost (criterion ignores
    # the exit status of a test worker whose test passed, so a leak there would go unnoticed)
    reports = len(re.findall(r"ERROR: (?:LeakSanitizer|AddressSanitizer)|WARNING: ThreadSanitizer|runtime error:", text))
    if reports:
        print(f"!! {label}: test_{r['name']}: {reports} sanitizer report(s)")
        bad += reports
    passed += passing
    failed += bad
print(f"== {label}: {passed} passed, {failed} failed ({len(runs)} executables)")
print(passed, failed)
EOF
  ) || out="!! $1: could not read the test log"$'\n'"0 1"
  sed '$d' <<<"$out"
  local counts; counts=$(tail -n 1 <<<"$out")
  passed=$((passed + ${counts% *})); failed=$((failed + ${counts#* }))
}

# run_tests label builddir [meson test args...]: builds builddir and runs its tests one executable
# at a time (each already runs its tests on 2 criterion jobs).
run_tests() {
  local label=$1 dir=$2; shift 2
  echo "== $label ($dir)"
  rm -f "$dir/meson-logs/testlog.json"
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes 1 "$@"
  count_log "$label" "$dir"
}

if bash scripts/setup.sh build-test -Db_ndebug=false "${warn_opts[@]}"; then
  run_tests release build-test
  echo "== install (build-test)"
  bash scripts/check-install.sh build-test || failed=$((failed + 1))
else
  echo "!! the release build (build-test) failed"; failed=$((failed + 1))
fi

if bash scripts/setup.sh build-asan -Dbuildtype=debug -Db_sanitize=address,undefined "${warn_opts[@]}"; then
  ASAN_OPTIONS=detect_leaks=1:exitcode=23 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_tests asan build-asan --test-args='--filter=!(learn*/*)'
else
  echo "!! the sanitizer build (build-asan) failed"; failed=$((failed + 1))
fi

if CC=clang bash scripts/setup.sh build-tsan -Dbuildtype=debug -Doptimization=1 -Db_sanitize=thread \
    -Db_lundef=false -Dtests=false -Dc_args=-Wno-pass-failed "${warn_opts[@]}"; then
  # -Wno-pass-failed: at -O1 clang does not vectorise the `omp simd` loops and says so
  echo "== tsan (build-tsan)"
  out=$(bash scripts/tsan.sh build-tsan/tools/seqlite 2>&1); printf '%s\n' "$out"
  counts=$(tail -n 1 <<<"$out")
  if [[ $counts =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed$ ]]; then
    passed=$((passed + BASH_REMATCH[1])); failed=$((failed + BASH_REMATCH[2]))
  else
    echo "!! tsan: no result line"; failed=$((failed + 1))
  fi
else
  echo "!! the thread sanitizer build (build-tsan) failed"; failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
