#!/usr/bin/env bash
# Makes the base images deploy/Dockerfile starts from, debian:bookworm and
# debian:bookworm-slim, from Debian's packages when the Docker engine does
# not have them and cannot pull them (no registry reachable). Where the
# engine has them (pulled from Docker Hub, or made by an earlier run),
# nothing is done: the same Dockerfile then uses those.
#
# debootstrap (minbase, as Docker's official images) writes a root file
# system from Debian's mirror; `docker import` turns it into an image. The
# slim variant is the same system without documentation, man pages and
# locales, and with dpkg told not to install them again, as the official
# slim image is. Both are cached as tarballs under $BASE_IMAGE_CACHE
# (default /var/cache/chat-gateway-images), keyed by what makes them, so a
# second run on a fresh engine only imports.
# Usage: deploy/base-images.sh   (root; needs debootstrap for a cold cache)
set -euo pipefail

suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${BASE_IMAGE_CACHE:-/var/cache/chat-gateway-images}
arch=$(dpkg --print-architecture)

# What the slim variant leaves out (the official image's list): dpkg
# patterns, quoted so that the shell does not expand them here.
slim_excludes=(
  '/usr/share/doc/*' '/usr/share/man/*' '/usr/share/groff/*' '/usr/share/info/*'
  '/usr/share/lintian/*' '/usr/share/linda/*' '/usr/share/locale/*'
)
# Apt sources of the official image: the release, its updates, security.
sources="Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite $suite-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $suite-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
# The cache key changes with anything above that shapes the file systems.
key=$(printf '%s\n' "$suite" "$arch" "$mirror" "${slim_excludes[@]}" "$sources" |
  sha256sum | cut -c1-12)
full_tar=$cache/debian-$suite-$arch-$key.tar
slim_tar=$cache/debian-$suite-slim-$arch-$key.tar

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

make_tarballs() {
  command -v debootstrap >/dev/null ||
    { echo "$0: debootstrap is needed to make the base images (apt-get install debootstrap)" >&2; exit 1; }
  local root
  root=$(mktemp -d /tmp/base-image.XXXXXX)
  # shellcheck disable=SC2064  # expand now: $root is local
  trap "rm -rf '$root'" EXIT
  echo "debootstrap $suite from $mirror (a few minutes)" >&2
  if ! debootstrap --variant=minbase --arch="$arch" "$suite" "$root" "$mirror" \
    >"$root.log" 2>&1; then
    tail -n 20 "$root.log" >&2
    echo "$0: debootstrap failed (whole log: $root.log)" >&2
    exit 1
  fi
  rm -f "$root.log"
  rm -f "$root/etc/apt/sources.list"
  printf '%s\n' "$sources" >"$root/etc/apt/sources.list.d/debian.sources"
  rm -rf "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/*
  mkdir -p "$cache"
  tar --numeric-owner -C "$root" -cf "$full_tar.part" . && mv "$full_tar.part" "$full_tar"

  local pattern
  for pattern in "${slim_excludes[@]}"; do
    echo "path-exclude $pattern"
  done >"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
  # Copyright files stay, as in the official image.
  echo "path-include /usr/share/doc/*/copyright" >>"$root/etc/dpkg/dpkg.cfg.d/docker-slim"
  find "$root/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{man,groff,info,lintian,linda,locale}/*
  tar --numeric-owner -C "$root" -cf "$slim_tar.part" . && mv "$slim_tar.part" "$slim_tar"
  rm -rf "$root"
  trap - EXIT
}

import() {
  local tarball=$1 tag=$2
  echo "docker import $tarball as $tag" >&2
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    --message "debootstrap --variant=minbase $suite $mirror" \
    "$tarball" "$tag" >/dev/null
}

missing=()
for tag in "debian:$suite" "debian:$suite-slim"; do
  has_image "$tag" || missing+=("$tag")
done
[ ${#missing[@]} -gt 0 ] || exit 0
[ -f "$full_tar" ] && [ -f "$slim_tar" ] || make_tarballs
for tag in "${missing[@]}"; do
  case $tag in
    *-slim) import "$slim_tar" "$tag" ;;
    *) import "$full_tar" "$tag" ;;
  esac
done
