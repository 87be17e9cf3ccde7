#!/usr/bin/env bash
# Builds libwebsockets 4.1.6 statically with libevent support (Debian's
# package lacks it, see README) from Debian's source package, into a cache
# outside the source tree. A second run with the cache present does nothing.
# The patches in deploy/lws-patches/ are applied; the cache is keyed by
# their checksum and this script's, so changing a patch or a flag rebuilds.
# Usage: deploy/build-lws.sh [PREFIX]   (default /var/cache/lws-4.1.6-<sum>)
# Prints the install prefix on stdout.
set -euo pipefail

version=4.1.6
patch_dir=$(cd "$(dirname "$0")/lws-patches" && pwd)
patch_sum=$(cat "$patch_dir"/*.patch "$0" | sha1sum | cut -c1-8)
prefix=${1:-${LWS_PREFIX:-/var/cache/lws-$version-$patch_sum}}
src_cache=${LWS_SRC_CACHE:-/var/cache/lws-src}

if [ -f "$prefix/lib/libwebsockets.a" ] && [ -f "$prefix/include/lws_config.h" ]; then
  echo "$prefix"
  exit 0
fi

tarball="$src_cache/libwebsockets_$version.orig.tar.gz"
if [ ! -f "$tarball" ]; then
  mkdir -p "$src_cache/parts" "$src_cache/lists/partial"
  # A private source list and private state dir: an `apt-get update` against
  # deb-src only must not replace the machine's binary package lists.
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
    > "$src_cache/parts/src.sources"
  opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$src_cache/parts"
        -o "Dir::State::Lists=$src_cache/lists")
  apt-get "${opts[@]}" update -q >&2
  (cd "$src_cache" && apt-get "${opts[@]}" source --download-only libwebsockets >&2)
fi

work=$(mktemp -d /tmp/lws-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
tar -xzf "$tarball" -C "$work"
srcdir=$(find "$work" -maxdepth 1 -mindepth 1 -type d | head -n1)
for p in "$patch_dir"/*.patch; do
  patch -d "$srcdir" -p1 --quiet < "$p"
done
# Extensions stay compiled in: without them lws 4.1.6 no longer refuses
# frames with RSV bits set nor text that is not UTF-8 (Autobahn 3.x, 6.x).
# The gateway registers none (patch 0006 keeps lws from dropping a long
# Sec-WebSocket-Extensions offer).
cmake -S "$srcdir" -B "$work/build" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_INSTALL_PREFIX="$prefix" \
  -DLWS_WITH_LIBEVENT=ON -DLWS_WITH_EVLIB_PLUGINS=OFF \
  -DLWS_WITH_STATIC=ON -DLWS_WITH_SHARED=OFF \
  -DLWS_WITH_SSL=ON -DLWS_WITH_ZLIB=ON -DLWS_WITHOUT_EXTENSIONS=OFF \
  -DLWS_WITHOUT_TESTAPPS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF \
  -DLWS_IPV6=ON -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
  -DCMAKE_C_FLAGS="-Wno-error=deprecated-declarations" >&2
cmake --build "$work/build" -j"$(nproc)" >&2
cmake --install "$work/build" >&2
echo "$prefix"
