#!/usr/bin/env bash
# scripts/check-install.sh [--flags] [BUILDDIR]: checks what `meson install` puts in place (into a
# temporary --destdir; BUILDDIR default build): the binary, the man page seqlite(1) with one subsection
# per command of `seqlite --help`, each holding that command's usage line, and the bash completion,
# which bash loads and which completes commands, flags and `help CMD`. --flags also runs every flag the
# completion offers against its command, which must not call it unknown (one process per flag: slower,
# so scripts/test.sh runs without it). Prints one line per problem and exits 1 if there is any, else a
# single "ok" line.
set -uo pipefail
cd "$(dirname "$0")/.."
all_flags=0
if [ "${1:-}" = --flags ]; then all_flags=1; shift; fi
BUILD=${1:-build}
DEST=$(mktemp -d)
trap 'rm -rf "$DEST"' EXIT
bad=0
problem() { echo "check-install: $*"; bad=$((bad + 1)); }

if ! out=$(meson install -C "$BUILD" --no-rebuild --destdir "$DEST" 2>&1); then
  printf '%s\n' "$out"; echo "check-install: meson install failed"; exit 1
fi
# where the prefix, mandir and datadir put them (found, not recomputed: meson's options decide)
found() { find "$DEST" -path "*/$1" -type f | head -n 1; }
seq=$(found bin/seqlite)
man=$(found man1/seqlite.1)
comp=$(found bash-completion/completions/seqlite)
[ -n "$seq" ] || problem "not installed: bin/seqlite"
[ -n "$man" ] || problem "not installed: man1/seqlite.1"
[ -n "$comp" ] || problem "not installed: share/bash-completion/completions/seqlite"
[ $bad -eq 0 ] || exit 1

mapfile -t cmds < <("$seq" --help | awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}')
[ ${#cmds[@]} -ge 8 ] || problem "seqlite --help lists ${#cmds[@]} commands"
n_ss=$(grep -c '^\.SS ' "$man")
[ "$n_ss" -eq ${#cmds[@]} ] || problem "the man page has $n_ss subsections for ${#cmds[@]} commands"
for c in "${cmds[@]}"; do
  grep -qx "\.SS \"seqlite $c\"" "$man" || problem "the man page has no section for $c"
  grep -q "^usage: seqlite $c" "$man" || problem "the man page lacks the usage of $c"
done
if command -v man >/dev/null && command -v groff >/dev/null; then
  text=$(MANWIDTH=100 man -l "$man" 2>&1) || problem "man cannot render the page"
  grep -q "seqlite train" <<<"$text" || problem "the rendered page lacks 'seqlite train'"
  grep -q "warning" <<<"$text" && problem "man warns: $(grep warning <<<"$text" | head -1)"
fi

# complete WORDS...: what the completion offers for the command line "WORDS" (the last word completed)
complete_words() {
  bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _seqlite; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$comp" "$@"
}
[ "$(complete_words seqlite tr | tr '\n' ' ')" = "train translate " ] || problem "seqlite tr<TAB>: $(complete_words seqlite tr)"
[ "$(complete_words seqlite train x.db --hid)" = "--hidden" ] || problem "seqlite train --hid<TAB>"
[ "$(complete_words seqlite help sc)" = "score" ] || problem "seqlite help sc<TAB>"
for c in "${cmds[@]}"; do
  mapfile -t flags < <(complete_words seqlite "$c" --)
  [ ${#flags[@]} -ge 2 ] || problem "no flags completed for $c"
  [ $all_flags = 1 ] || continue
  for f in "${flags[@]}"; do
    err=$("$seq" "$c" "$f" 2>&1 >/dev/null </dev/null)
    grep -q "unknown flag" <<<"$err" && problem "the completion offers $c $f, which $c refuses"
  done
done

[ $bad -eq 0 ] || exit 1
echo "check-install: ok (${#cmds[@]} commands in the man page and the completion)"
