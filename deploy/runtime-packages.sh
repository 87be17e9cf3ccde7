#!/usr/bin/env bash
# Prints, one per line, the Debian packages that provide the shared libraries
# BINARY loads. The Docker runtime stage installs exactly these, so it follows
# whatever the build links without a hand-kept list.
# Usage: deploy/runtime-packages.sh BINARY
set -euo pipefail

binary=${1:?usage: $0 BINARY}
[ -x "$binary" ] || { echo "$0: $binary is not an executable" >&2; exit 1; }

# ldd prints "libfoo.so.1 => /path/libfoo.so.1 (0x...)".
paths=$(ldd "$binary" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }')
[ -n "$paths" ] || { echo "$0: ldd found no shared libraries in $binary" >&2; exit 1; }

# With merged /usr, ldd may print /lib/... where dpkg registered /usr/lib/...
# or the other way round: ask for both spellings.
owner_of() {
  local alt
  case $1 in
    /usr/*) alt=${1#/usr} ;;
    *) alt=/usr$1 ;;
  esac
  dpkg -S "$1" 2>/dev/null || dpkg -S "$alt" 2>/dev/null || return 1
}

for path in $paths; do
  line=$(owner_of "$path") || { echo "$0: no installed package provides $path" >&2; exit 1; }
  echo "${line%%:*}"
done | sort -u
