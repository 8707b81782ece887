#!/usr/bin/env bash
# scripts/setup.sh [BUILDDIR]: installs what seqlite needs on Debian 12 (only what is missing; quiet
# when all is there), then configures and builds it in BUILDDIR (default: build).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}

pkgs=(gcc pkg-config meson ninja-build libutf8proc-dev libsqlite3-dev libcriterion-dev libopenblas-dev sqlite3 python3)
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

if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" >/dev/null
