#!/usr/bin/env bash
# Exits 0 when the gateway on this host answers GET /healthz with 200. The
# Docker HEALTHCHECK runs it inside the runtime image, which has bash but no
# curl: the request goes through bash's /dev/tcp.
# Usage: healthcheck.sh [PORT]   (default: the port of $GATEWAY_LISTEN, else 8080)
set -euo pipefail

listen=${GATEWAY_LISTEN:-0.0.0.0:8080}
port=${1:-${listen##*:}}

exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
# Only the status line matters; a server that sends nothing fails after 2 s.
IFS=' ' read -r -t 2 _ status _ <&3
[ "$status" = 200 ]
