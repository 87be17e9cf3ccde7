#!/usr/bin/env bash
# Makes the Python the tests run with: a virtualenv of Debian's python3 that
# also sees Debian's python3 packages (pytest, websockets, yaml) and holds the
# PyPI packages of tests/requirements.txt, at the exact versions given there.
# Cached outside the source tree, keyed by the requirements' checksum, so a
# second run installs nothing. Never downloads a browser.
# Usage: tests/python-env.sh   Prints the virtualenv's python on stdout.
set -euo pipefail

reqs="$(cd "$(dirname "$0")" && pwd)/requirements.txt"
sum=$(sha256sum "$reqs" | cut -c1-12)
venv=${GATEWAY_TEST_VENV:-/var/cache/chat-gateway-tests/venv-$sum}

if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
  rm -rf "$venv"
  mkdir -p "$(dirname "$venv")"
  /usr/bin/python3 -m venv --system-site-packages "$venv" >&2
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 "$venv/bin/python" -m pip install -q \
    --disable-pip-version-check --no-input -r "$reqs" >&2
  touch "$venv/.complete"
fi
echo "$venv/bin/python"
