#!/usr/bin/env bash
# scripts/check-layout.sh: checks that the library folders keep the architecture the top-level
# meson.build describes, reading only their #include lines. Prints one line per violation
# (file:line: what is wrong) and exits 1 if there is any; prints a single "ok" line otherwise.
#   (a) the third-party APIs stay behind one file each: <cblas.h>, <utf8proc.h>, <plplot.h>, <zlib.h> and <dnnl.h>
#       are included by exactly one library file; <sqlite3.h> only by files inside corpus/ (the store).
#   (b) include direction: a folder's `#include "X/..."` lines name only folders it may depend on
#       (the table below, the transitive closure of the graph in meson.build). A name without a
#       folder is the including file's own folder.
#   (c) tools/cmd_translate.c and tools/cmd_eval.c include nothing from train/ or tools/bench/, so
#       `seqlite translate` and `seqlite eval` need no training code.
#   (d) every test docs/bad-input.md names (`tests/test_X.c: suite/name`) is a Test(suite, name) in that
#       file, so the table cannot point at a test that was renamed or removed.
# tests/ is not a library folder and is not checked otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."

# Library folder -> the folders its files may include (its own first). tools/bench may also include
# tools/ headers other than the subcommands (tools/cmd_*); tools/ may include every folder.
declare -A allowed=(
  [util]="util"
  [nn]="nn util"
  [tokenizer]="tokenizer util"
  [eval]="eval util"
  [corpus]="corpus tokenizer util"
  [encoder]="encoder nn util"
  [decoder]="decoder nn util tokenizer"
  [model]="model encoder decoder corpus eval nn tokenizer util"
  [translate]="translate model decoder encoder corpus eval nn tokenizer util"
  [train]="train translate model decoder encoder corpus eval nn tokenizer util"
  [tools/bench]="tools/bench tools train translate model decoder encoder corpus eval nn tokenizer util"
  [tools]="tools tools/bench train translate model decoder encoder corpus eval nn tokenizer util"
)
folders="util nn tokenizer eval corpus encoder decoder model translate train tools"

bad=0
violation() { echo "$*"; bad=$((bad + 1)); }

# The library files, one per line (tools/ includes tools/bench/).
mapfile -t files < <(find $folders -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)

# (a) third-party headers.
includers() { # header: "file:line" of every library #include <header>
  grep -nE "^[[:space:]]*#[[:space:]]*include[[:space:]]*<$1>" "${files[@]}" | cut -d: -f1,2
}
for h in cblas.h utf8proc.h plplot.h zlib.h dnnl.h; do
  mapfile -t hits < <(includers "${h//./\\.}")
  if [ ${#hits[@]} -ne 1 ]; then
    violation "<$h> must be included by exactly one library file, is by ${#hits[@]}: ${hits[*]:-none}"
  fi
done
mapfile -t hits < <(includers 'sqlite3\.h')
[ ${#hits[@]} -gt 0 ] || violation "<sqlite3.h> is included by no library file (expected: corpus/)"
for hit in "${hits[@]}"; do
  case "$hit" in
    corpus/*) ;;
    *) violation "$hit: includes <sqlite3.h> outside corpus/ (the store); files that include it: ${hits[*]}" ;;
  esac
done

# (b) include direction, (c) the subcommands that must not need training code.
for f in "${files[@]}"; do
  case "$f" in
    tools/bench/*) own=tools/bench ;;
    *) own=${f%%/*} ;;
  esac
  while IFS=: read -r line inc; do
    case "$inc" in
      */*) dir=${inc%/*} ;;
      *) dir=$own ;;
    esac
    ok=0
    for a in ${allowed[$own]}; do [ "$dir" = "$a" ] && ok=1; done
    if [ $ok = 0 ]; then
      violation "$f:$line: includes \"$inc\": $own/ may include only ${allowed[$own]// /, }"
    elif [ "$own" = tools/bench ] && [[ "$inc" == tools/cmd_* ]]; then
      violation "$f:$line: includes \"$inc\": tools/bench/ may not include the subcommands (tools/cmd_*)"
    fi
    if [[ "$f" == tools/cmd_translate.c || "$f" == tools/cmd_eval.c ]] &&
       [[ "$dir" == train || "$dir" == train/* || "$dir" == tools/bench ]]; then
      violation "$f:$line: includes \"$inc\": seqlite translate and eval must not need train/ or tools/bench/"
    fi
  done < <(awk '/^[[:space:]]*#[[:space:]]*include[[:space:]]*"/ {
                s = $0; sub(/^[^"]*"/, "", s); sub(/".*/, "", s); print FNR ":" s }' "$f")
done

# (d) the tests named in docs/bad-input.md.
n_named=0
while IFS= read -r ref; do
  file=${ref%%:*}
  rest=${ref#*: }
  suite=${rest%%/*}
  name=${rest#*/}
  n_named=$((n_named + 1))
  if ! [[ "$ref" =~ ^tests/test_[a-z0-9_]+\.c:\ [a-z0-9_]+/[a-z0-9_]+$ ]]; then
    violation "docs/bad-input.md: '$ref' is not of the form 'tests/test_X.c: suite/name'"
  elif [ ! -f "$file" ]; then
    violation "docs/bad-input.md: names $ref, but there is no $file"
  elif ! grep -qE "^Test\($suite, $name[,)]" "$file"; then
    violation "docs/bad-input.md: names $ref, but $file has no Test($suite, $name)"
  fi
done < <(grep -oE '`tests/[^`]*`' docs/bad-input.md | tr -d '`')
[ $n_named -gt 0 ] || violation "docs/bad-input.md names no test (expected 'tests/test_X.c: suite/name' cells)"

if [ $bad -gt 0 ]; then
  echo "check-layout: $bad violation(s)"
  exit 1
fi
echo "check-layout: ok (${#files[@]} library files, $n_named tests named in docs/bad-input.md)"
