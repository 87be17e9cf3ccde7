#!/usr/bin/env bash
# Installs every Debian package the build, the native cluster and the tests
# need. Idempotent: packages already present are not fetched again.
# Usage: deploy/install-deps.sh [--build-only]
set -euo pipefail

# No libhiredis-dev: bookworm's is 0.14 (no TLS); deploy/build-hiredis.sh
# builds 1.2.0 from trixie's source, and nothing else here uses the library
# (the tests run the redis-server and redis-cli binaries).
build_pkgs=(build-essential cmake pkg-config ca-certificates
  libevent-dev libjansson-dev libssl-dev zlib1g-dev libcap-dev liburing-dev)
run_pkgs=(redis-server nginx-light curl)
# debootstrap: deploy/base-images.sh makes the Docker base images from
# Debian's packages where no registry is reachable.
# python3-venv: tests/python-env.sh puts the pinned PyPI packages of
# tests/requirements.txt (Playwright) in a virtualenv beside these.
test_pkgs=(python3 python3-venv python3-websockets python3-pytest
  haproxy clang libclang-rt-14-dev chromium fonts-ipafont-gothic
  fonts-noto-color-emoji docker-compose python3-yaml debootstrap)
# Node.js runs the client's unit tests (node --test, no npm package). These
# machines have Node.js 20 installed from elsewhere; Debian's nodejs (18)
# only when there is no node at all.
command_pkgs=(node:nodejs)

want=("${build_pkgs[@]}")
if [ "${1:-}" != "--build-only" ]; then
  want+=("${run_pkgs[@]}" "${test_pkgs[@]}")
  for cp in "${command_pkgs[@]}"; do
    command -v "${cp%%:*}" >/dev/null 2>&1 || want+=("${cp#*:}")
  done
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
