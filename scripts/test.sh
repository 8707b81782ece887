#!/usr/bin/env bash
# scripts/test.sh: the test command. Installs what is missing, builds, runs every criterion test
# executable, then builds again with AddressSanitizer + UBSan and runs the unit tests there too.
# Ends with a line "N passed, N failed" counting criterion tests over all runs.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh build || { echo "0 passed, 1 failed"; exit 1; }

passed=0; failed=0
run_suite() { # label builddir [criterion args...]
  local label=$1 dir=$2; shift 2
  for t in "$dir"/tests/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    echo "== $label: $(basename "$t")"
    local log; log=$(mktemp)
    "$t" --jobs=2 "$@" 2>&1 | tee "$log"
    local line; line=$(grep -a 'Synthesis:' "$log" | tail -1)
    if [ -z "$line" ]; then
      echo "!! $(basename "$t") printed no Synthesis line (crashed?)"; failed=$((failed+1))
    else
      local p f c
      p=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
      f=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
      c=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
      passed=$((passed+p)); failed=$((failed+f))
      [ "$c" -gt 0 ] 2>/dev/null && failed=$((failed+c))  # criterion counts crashes in Failing too on some versions
    fi
    rm -f "$log"
  done
}
run_suite release build

# Sanitizer build: the same tests but the slow learning ones (suites named learn*).
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan --buildtype=debug -Db_sanitize=address,undefined >/dev/null
fi
if ninja -C build-asan >/dev/null; then
  ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite asan build-asan --filter='!(learn*/*)'
else
  echo "!! the sanitizer build failed"; failed=$((failed+1))
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
