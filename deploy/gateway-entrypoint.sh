#!/usr/bin/env bash
# The gateway image's entrypoint. Replicas of one compose service (or pods
# of one Deployment without the downward API) share one environment, and the
# gateway's default id, HOST:PORT of its listen address, is 0.0.0.0:8080 in
# every container: the same id on several gateways would mix their presence
# and client counts in Redis. Without GATEWAY_ID the container's hostname
# (unique: its id) is the gateway's id. exec: the gateway stays PID 1 and
# receives SIGTERM itself.
set -euo pipefail

export GATEWAY_ID=${GATEWAY_ID:-$(hostname)}
exec /usr/local/bin/gateway "$@"
