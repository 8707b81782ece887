#!/usr/bin/env bash
# scripts/setup.sh [BUILDDIR [MESON_OPTION...]]: installs what seqlite needs on Debian 12 (only what
# is missing; quiet when all is there), then configures and builds it in BUILDDIR (default: build).
# Without options BUILDDIR is a release build, configured once (later `meson configure` changes are
# kept). With options (e.g. -Db_ndebug=false) they are given to `meson setup` on top of
# -Dbuildtype=release, and applied again with `meson configure` whenever they differ from the last
# ones given for BUILDDIR (recorded in BUILDDIR/seqlite-setup-options). Prints the compiler output
# only when the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
shift || true

pkgs=(gcc pkg-config meson ninja-build libutf8proc-dev libsqlite3-dev libcriterion-dev libopenblas-dev libplplot-dev zlib1g-dev sqlite3 python3 strace clang libomp-14-dev libdnnl-dev)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing: ${missing[*]}" >&2
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q >/dev/null
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
fi

quiet() { # command...: runs it, printing its output only when it fails
  local out
  if ! out=$("$@" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "!! failed: $*" >&2
    exit 1
  fi
}
opts=(-Dbuildtype=release "$@")
stamp=$BUILD/seqlite-setup-options
if [ ! -f "$BUILD/build.ninja" ]; then
  quiet meson setup "$BUILD" "${opts[@]}"
  [ $# -eq 0 ] || printf '%s\n' "${opts[@]}" >"$stamp"
elif [ $# -gt 0 ] && [ "$(printf '%s\n' "${opts[@]}")" != "$(cat "$stamp" 2>/dev/null)" ]; then
  quiet meson setup --reconfigure "$BUILD" "${opts[@]}"
  printf '%s\n' "${opts[@]}" >"$stamp"
fi
quiet ninja -C "$BUILD"
