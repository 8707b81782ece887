#!/usr/bin/env bash
# scripts/completion.sh SEQLITE OUT: writes a bash completion for seqlite to OUT, generated from the
# usage texts of the built binary SEQLITE: the commands (`seqlite --help`) and, per command, the flags
# its usage names on its synopsis and option lines (`seqlite help CMD`: a line that starts with
# "usage:", "seqlite", "[" or "--" after its indentation; prose lines are skipped, so flags of other
# tools quoted there are not offered). Other words complete as file names. meson builds it
# (tools/meson.build) and `meson install` puts it in share/bash-completion/completions.
set -euo pipefail
SEQ=$1
OUT=$2

mapfile -t cmds < <("$SEQ" --help | awk '/^commands:/ {on = 1; next} on && /^$/ {exit} on {print $1}')
flags_of() { # CMD: its flags, one line, sorted
  "$SEQ" help "$1" | awk '/^usage:/ || /^[[:space:]]+(seqlite |\[|--)/' |
    grep -oE -- '--[a-z][a-z0-9-]*' | sort -u | tr '\n' ' ' | sed 's/ $//'
}

{
  echo "# bash completion for seqlite, generated from its usage texts by scripts/completion.sh"
  echo "_seqlite() {"
  echo '    local cur=${COMP_WORDS[COMP_CWORD]} flags'
  echo '    if [ "$COMP_CWORD" -eq 1 ]; then'
  echo "        COMPREPLY=(\$(compgen -W \"${cmds[*]} help --help --version\" -- \"\$cur\"))"
  echo '        return'
  echo '    fi'
  echo '    case ${COMP_WORDS[1]} in'
  echo "    help) [ \"\$COMP_CWORD\" -eq 2 ] && COMPREPLY=(\$(compgen -W \"${cmds[*]}\" -- \"\$cur\")); return ;;"
  for c in "${cmds[@]}"; do
    echo "    $c) flags=\"$(flags_of "$c") --help\" ;;"
  done
  echo '    *) return ;;'
  echo '    esac'
  echo '    if [[ $cur == -* ]]; then'
  echo '        COMPREPLY=($(compgen -W "$flags" -- "$cur"))'
  echo '    else'
  echo '        compopt -o filenames 2>/dev/null'
  echo '        COMPREPLY=($(compgen -f -- "$cur"))'
  echo '    fi'
  echo '}'
  echo 'complete -F _seqlite seqlite'
} > "$OUT"
