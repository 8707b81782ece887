#!/usr/bin/env bash
# scripts/man.sh SEQLITE OUT: writes the man page seqlite(1) to OUT, generated from the usage texts of
# the built binary SEQLITE (`seqlite --help`, `seqlite help CMD`), so it says what the binary does:
# NAME, SYNOPSIS, DESCRIPTION, one COMMANDS subsection per command (its usage text, preformatted),
# EXIT STATUS. meson builds it (tools/meson.build) and `meson install` puts it in man1.
set -euo pipefail
SEQ=$1
OUT=$2

# roff-escapes preformatted text: backslashes, and a leading '.' or "'" that would be a request
esc() { sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/" -e 's/-/\\-/g'; }
# the commands, in the order of `seqlite --help`: the indented lines under "commands:" up to a blank one
mapfile -t cmds < <("$SEQ" --help | awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}')
version=$("$SEQ" --version | awk '{print $2}')

{
  printf '.TH SEQLITE 1 "" "seqlite %s" "User Commands"\n' "$version"
  printf '.SH NAME\nseqlite \\- neural machine translation with an LSTM encoder\\-decoder in one SQLite file\n'
  printf '.SH SYNOPSIS\n.B seqlite\n.I COMMAND\n[\n.I ARGS\n]\n.br\n'
  printf '.B seqlite help\n.I COMMAND\n.br\n.B seqlite \\-\\-version\n'
  printf '.SH DESCRIPTION\n'
  printf 'Every command prints results on stdout and progress and errors on stderr.\n'
  printf 'A file argument "\\-" is standard input where the command says so.\n'
  printf 'The commands:\n.PP\n.nf\n'
  "$SEQ" --help | awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on' | esc
  printf '.fi\n.SH COMMANDS\n'
  for c in "${cmds[@]}"; do
    printf '.SS "seqlite %s"\n.nf\n' "$c"
    "$SEQ" help "$c" | esc
    printf '.fi\n'
  done
  printf '.SH "EXIT STATUS"\n'
  printf '0 success; 1 failure (a line "seqlite: CMD: message" on stderr, naming the file, line or row);\n'
  printf '2 usage error (that one line, then "see '"'"'seqlite help CMD'"'"'"); 130 after Ctrl\\-C (train saves a\n'
  printf 'checkpoint first).\n'
  printf '.SH "SEE ALSO"\n.BR sqlite3 (1)\n'
} > "$OUT"
