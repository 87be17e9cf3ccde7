#!/usr/bin/env bash
# Browser tests of the chat client: installs playwright-core when
# node_modules is missing or older than package-lock.json, then runs the
# client's unit tests and the browser tests (Debian's /usr/bin/chromium,
# redis-server and two gateways on free loopback ports).
# Env: GATEWAY_BIN (default <repo>/build/gateway), CHROMIUM_BIN (default /usr/bin/chromium).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# A relative GATEWAY_BIN means relative to where the caller stands.
if [ -n "${GATEWAY_BIN:-}" ]; then
  GATEWAY_BIN="$(realpath -m "$GATEWAY_BIN")"
  export GATEWAY_BIN
fi
cd "$here"

stamp=node_modules/.package-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 timeout 300 npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi

for tool in node redis-server "${CHROMIUM_BIN:-/usr/bin/chromium}"; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run deploy/install-deps.sh" >&2; exit 1; }
done
# playwright-core 1.65 and node --test's options need Node.js 20; Debian
# bookworm's own nodejs is 18.
if [ "$(node -p 'process.versions.node.split(".")[0]')" -lt 20 ]; then
  echo "the browser tests need Node.js 20 or newer, found $(node --version)" >&2
  exit 1
fi

# Fresh screenshots and logs on every run.
rm -rf artifacts
mkdir -p artifacts

# timeout ends the runner (which ends its test processes, which kill their
# servers by PID) if something hangs beyond every inner bound.
exec timeout --kill-after=20 900 node --test --test-concurrency=1 --test-timeout=240000 \
  chat-client.test.mjs browser.test.mjs
