#!/usr/bin/env bash
# Makes the place Autobahn|Testsuite's `wstest` runs in: a Debian bullseye
# root file system (debootstrap, minbase) with bullseye's Python 2.7, and the
# PyPI packages of autobahn-requirements.txt at the exact versions given
# there. `wstest` runs in it with chroot; it shares the machine's network,
# so it reaches a gateway on 127.0.0.1.
#
# Why a chroot: autobahntestsuite is Python 2 only (every release, 25.10.1
# included: `print "..."` statements, implicit relative imports), and Debian
# bookworm has no Python 2. bullseye, the last Debian with python2.7, has it;
# its packages would not install on bookworm itself without bringing in
# bullseye's libssl1.1, libffi7 and mime-support, so they stay in a root of
# their own. No Docker engine is needed, only root and debootstrap.
#
# Everything comes from Debian's bullseye packages and PyPI: pip itself is
# bullseye's python-pip-whl 20.3.4, run from its wheel once to install the
# pinned pip, setuptools and wheel, which then install the rest with
# --no-deps (the requirements file is the whole closure) and without build
# isolation (wsaccel's sdist is built with the chroot's gcc and the pinned
# setuptools, nothing else fetched). pip trusts the certificate authorities
# this machine's pip trusts ($PIP_CERT, else the machine's bundle).
#
# Cached under /var/cache/chat-gateway-tests/, keyed by this script's and
# the requirements' checksum: a second run does nothing. About 550 MB and a
# minute or two for a cold cache.
# Usage: tests/conformance/autobahn-env.sh   (root)  Prints the root's path.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
reqs=$here/autobahn-requirements.txt
suite=bullseye
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
apt_packages=python2.7,python2.7-dev,gcc,libc6-dev,python-pip-whl,ca-certificates
key=$(cat "$0" "$reqs" | sha256sum | cut -c1-12)
cache=${AUTOBAHN_CACHE:-/var/cache/chat-gateway-tests}
root=$cache/autobahn-$suite-$key

if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "$0: needs root (debootstrap, chroot)" >&2; exit 1; }
command -v debootstrap >/dev/null ||
  { echo "$0: needs debootstrap (apt-get install debootstrap)" >&2; exit 1; }

# One maker at a time (two worktrees' runs may start together); the one
# that waited finds the root made.
mkdir -p "$cache"
exec 9>"$root.lock"
flock 9
if [ -f "$root/.complete" ]; then
  echo "$root"
  exit 0
fi
part=$root.part
rm -rf "$part"
echo "autobahn-env: debootstrap $suite with $apt_packages (a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$apt_packages" "$suite" "$part" "$mirror" \
  >"$part.log" 2>&1; then
  tail -n 20 "$part.log" >&2
  echo "$0: debootstrap failed (whole log: $part.log)" >&2
  exit 1
fi
rm -f "$part.log" "$part"/var/cache/apt/archives/*.deb

ca=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
cp "$ca" "$part/etc/ssl/pip-ca.crt"
# A clean environment: none of this machine's PIP_* settings (a find-links
# folder, say) but its index, where one is set.
in_root() {
  chroot "$part" env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/root LC_ALL=C.UTF-8 \
    PIP_CERT=/etc/ssl/pip-ca.crt PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \
    PIP_NO_INPUT=1 PIP_NO_PYTHON_VERSION_WARNING=1 PYTHONWARNINGS=ignore::DeprecationWarning \
    ${PIP_INDEX_URL:+PIP_INDEX_URL="$PIP_INDEX_URL"} "$@"
}
cp "$reqs" "$part/tmp/requirements.txt"
grep -E '^(pip|setuptools|wheel)==' "$reqs" >"$part/tmp/bootstrap.txt"
pip_whl=$(cd "$part" && ls usr/share/python-wheels/pip-*.whl | head -n1)
echo "autobahn-env: pip install -r autobahn-requirements.txt (Python 2.7)" >&2
in_root python2.7 "/$pip_whl/pip" install -q --no-deps -r /tmp/bootstrap.txt >&2
in_root python2.7 -m pip install -q --no-deps --no-build-isolation -r /tmp/requirements.txt >&2
in_root python2.7 -m pip check >&2
in_root wstest --autobahnversion >&2
rm -f "$part/tmp/requirements.txt" "$part/tmp/bootstrap.txt"
{
  chroot "$part" dpkg-query -W -f '${Package} ${Version}\n' python2.7 gcc python-pip-whl
  in_root python2.7 -m pip freeze --all
} >"$part/versions.txt"
touch "$part/.complete"
rm -rf "$root"
mv "$part" "$root"
echo "$root"
