#!/usr/bin/env bash
# scripts/readme.sh [BUILDDIR]: refreshes the generated parts of README.md: the command reference
# (from `seqlite help CMD`) and the schema (from docs/schema.md). Run after changing either.
set -euo pipefail
cd "$(dirname "$0")/.."
SEQ=${1:-build}/tools/seqlite
tmp=$(mktemp)
{
  for c in import vocab tokenize train translate score eval info plot average export bench; do
    printf '### seqlite %s\n\n```\n' "$c"
    "$SEQ" help "$c"
    printf '```\n\n'
  done
} > "$tmp.cmds"
sed -e '1{/^## /d}' -e 's/^### /### /' docs/schema.md > "$tmp.schema"
awk -v cmds="$tmp.cmds" -v schema="$tmp.schema" '
  /<!-- COMMANDS -->/ { print; while ((getline l < cmds) > 0) print l; skip=1; next }
  /<!-- \/COMMANDS -->/ { skip=0 }
  /<!-- SCHEMA -->/ { print; while ((getline l < schema) > 0) print l; skip=1; next }
  /<!-- \/SCHEMA -->/ { skip=0 }
  !skip { print }' README.md > "$tmp"
mv "$tmp" README.md
rm -f "$tmp.cmds" "$tmp.schema"
