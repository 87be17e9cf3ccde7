#!/usr/bin/env bash
# Builds hiredis 1.2.0 statically with TLS (libhiredis.a, libhiredis_ssl.a)
# from Debian trixie's source package, into a cache outside the source tree.
# Bookworm's hiredis is 0.14.1 (2018): no TLS, no RESP3 push, and its async
# pub/sub aborts on sharded messages. A second run with the cache present
# does nothing. The patches in deploy/hiredis-patches/ (sharded pub/sub in
# the async API) are applied; the cache is keyed by their checksum and this script's, so
# changing a patch or a flag rebuilds.
# Usage: deploy/build-hiredis.sh [PREFIX]   (default /var/cache/hiredis-1.2.0-<sum>)
# Prints the install prefix on stdout.
set -euo pipefail

version=1.2.0
# The exact Debian revision: apt fetches this one or fails, so a new upload
# to trixie is a deliberate change here (and a new cache key).
debian_version=$version-6
# The upstream tarball of every 1.2.0-N (as listed in 1.2.0-6's .dsc): checked
# again here, also when it comes from the cache.
orig_sha256=82ad632d31ee05da13b537c124f819eb88e18851d9cb0c30ae0552084811588c
patch_dir=$(cd "$(dirname "$0")/hiredis-patches" && pwd)
shopt -s nullglob
patches=("$patch_dir"/*.patch)
shopt -u nullglob
patch_sum=$(cat "${patches[@]}" "$0" | sha1sum | cut -c1-8)
prefix=${1:-${HIREDIS_PREFIX:-/var/cache/hiredis-$version-$patch_sum}}
src_cache=${HIREDIS_SRC_CACHE:-/var/cache/hiredis-src}

if [ -f "$prefix/lib/libhiredis.a" ] && [ -f "$prefix/lib/libhiredis_ssl.a" ] &&
  [ -f "$prefix/include/hiredis/hiredis_ssl.h" ]; then
  echo "$prefix"
  exit 0
fi

tarball="$src_cache/hiredis_$version.orig.tar.gz"
if [ ! -f "$tarball" ]; then
  mkdir -p "$src_cache/parts" "$src_cache/lists/partial"
  # A private source list and private state dir: an `apt-get update` against
  # deb-src only must not replace the machine's binary package lists. The
  # machine's main archive (its list's first stanza), as deb-src of trixie:
  # the only Debian release with hiredis 1.x.
  awk 'NF==0{exit} {print}' /etc/apt/sources.list.d/debian.sources |
    sed -e 's/^Types: deb$/Types: deb-src/' -e 's/^Suites: .*/Suites: trixie/' \
      > "$src_cache/parts/src.sources"
  opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$src_cache/parts"
        -o "Dir::State::Lists=$src_cache/lists")
  apt-get "${opts[@]}" update -q >&2
  # apt checks the .dsc against the signed Sources index and the orig
  # tarball against the .dsc's checksums; a mismatch fails here.
  (cd "$src_cache" && apt-get "${opts[@]}" source --download-only "hiredis=$debian_version" >&2) || {
    echo "$0: trixie does not serve hiredis $debian_version (any more?): see" \
      "apt-get source --print-uris hiredis with the options above, then update" \
      "debian_version (and orig_sha256 if the tarball changed)" >&2
    exit 1
  }
fi
if ! echo "$orig_sha256  $tarball" | sha256sum --check --quiet >&2; then
  rm -f "$tarball" # the next run fetches it again
  echo "$0: $tarball was not hiredis $version's tarball: removed" >&2
  exit 1
fi

work=$(mktemp -d /tmp/hiredis-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
srcdir=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)
for p in "${patches[@]}"; do
  patch -d "$srcdir" -p1 --quiet < "$p"
done
# Static only, position-independent (the gateway may be linked as PIE).
# ENABLE_SSL builds libhiredis_ssl.a against Debian's libssl-dev (OpenSSL 3).
# The tests need a running redis-server: the gateway's own tests cover what
# it uses.
cmake -S "$srcdir" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" -DCMAKE_INSTALL_LIBDIR=lib \
  -DBUILD_SHARED_LIBS=OFF -DENABLE_SSL=ON -DDISABLE_TESTS=ON \
  -DENABLE_EXAMPLES=OFF -DCMAKE_POSITION_INDEPENDENT_CODE=ON >&2
cmake --build "$work/build" -j"$(nproc)" >&2
cmake --install "$work/build" >&2
echo "$prefix"
