#!/usr/bin/env bash
# The production topology natively, the twin of docker-compose.yml: one
# redis-server, three gateways and a load balancer on the same ports, with
# the same load-balancer configuration files.
#
# Usage: deploy/cluster.sh [run|start|stop [NAME...]|status|check]
#   run     (default) install what is missing, build, start everything, wait
#           until it is ready, print the URLs; Ctrl-C stops it all
#   start   the same in the background: returns once everything is ready
#   stop [NAME...]  stop a cluster started with `start`, or only the named
#           components (lb gw1 gw2 gw3 redis), e.g. `stop gw2` to watch its
#           clients fail over
#   status  what runs and whether it is ready (exit 1 if anything is not)
#   check   validate the load-balancer configurations (nginx -t, haproxy -c)
#
# Environment (defaults in brackets):
#   CLUSTER_DIR            state and logs [<repo>/run]
#   CLUSTER_LB             nginx or haproxy [nginx]
#   CLUSTER_LB_PORT        load balancer [8080]
#   CLUSTER_GATEWAY_PORTS  the three gateways, ids gw1 gw2 gw3 [8081 8082 8083]
#   CLUSTER_REDIS_PORT     redis-server [6379]
#   CLUSTER_START_TIMEOUT  seconds to wait for readiness [30]
#   CLUSTER_INSTALL        0: skip deploy/install-deps.sh (tests, CI) [1]
#   GATEWAY_BIN            gateway binary; when set nothing is built
#                          [<repo>/build/gateway, built with cmake]
#   GATEWAY_*              the gateways' own settings (README), e.g.
#                          GATEWAY_HISTORY=500; --listen, --redis and --id are
#                          the cluster's
set -euo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DEPLOY")
# shellcheck source-path=SCRIPTDIR source=lib/proc.sh
. "$DEPLOY/lib/proc.sh"
# shellcheck source-path=SCRIPTDIR source=lib/lb.sh
. "$DEPLOY/lib/lb.sh"

cmd=${1:-run}
lb=${CLUSTER_LB:-nginx}
lb_port=${CLUSTER_LB_PORT:-8080}
read -r -a gw_ports <<<"${CLUSTER_GATEWAY_PORTS:-8081 8082 8083}"
redis_port=${CLUSTER_REDIS_PORT:-6379}
start_timeout=${CLUSTER_START_TIMEOUT:-30}
gw_names=(gw1 gw2 gw3)
# The gateways need up to their --shutdown-timeout (5 s) to close clients.
gw_stop_timeout=15

die() {
  echo "cluster.sh: $*" >&2
  exit 1
}

case $lb in nginx | haproxy) ;; *) die "CLUSTER_LB must be nginx or haproxy, not '$lb'" ;; esac
[ ${#gw_ports[@]} -eq 3 ] || die "CLUSTER_GATEWAY_PORTS needs three ports, got '${gw_ports[*]}'"
for port in "$lb_port" "${gw_ports[@]}" "$redis_port"; do
  if ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "bad port '$port'"
  fi
done

dir=${CLUSTER_DIR:-$REPO/run}
mkdir -p "$dir/logs" "$dir/pids"
dir=$(cd "$dir" && pwd)
PID_DIR=$dir/pids
components=(lb "${gw_names[@]}" redis)

port_taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

http_ok() {
  curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null
}

# NAME -> 0 when that component answers as ready.
ready() {
  local i
  case $1 in
    redis) [ "$(redis-cli -p "$redis_port" ping 2>/dev/null)" = PONG ] ;;
    lb) http_ok "http://127.0.0.1:$lb_port/healthz" ;;
    gw*)
      i=${1#gw}
      http_ok "http://127.0.0.1:${gw_ports[i - 1]}/readyz"
      ;;
  esac
}

running_any() {
  local name
  for name in "${components[@]}"; do
    proc_pid "$name" >/dev/null && return 0
  done
  return 1
}

stop_one() {
  case $1 in
    gw*) proc_stop "$1" TERM "$gw_stop_timeout" ;;
    *) proc_stop "$1" TERM 10 ;;
  esac
}

stop_all() {
  # Gateways first, while Redis and the load balancer still run: their
  # clients get a clean 1001, not a reset.
  local name stoppers=()
  for name in "${gw_names[@]}"; do
    stop_one "$name" &
    stoppers+=($!)
  done
  wait "${stoppers[@]}"
  stop_one lb
  stop_one redis
  rm -f "$dir/cluster.env"
}

# Installs what is missing, then insists on what the cluster itself runs:
# a failed install of something else (a test tool) does not stop it.
install_deps() {
  local tools=(redis-server redis-cli curl "$lb") tool missing=()
  [ -n "${GATEWAY_BIN:-}" ] || tools+=(cmake cc)
  if [ "${CLUSTER_INSTALL:-1}" != 0 ] && ! "$DEPLOY/install-deps.sh"; then
    echo "cluster.sh: deploy/install-deps.sh failed (above); going on with what is installed" >&2
  fi
  for tool in "${tools[@]}"; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing: ${missing[*]}"
}

install_and_build() {
  install_deps
  if [ -n "${GATEWAY_BIN:-}" ]; then
    [ -x "$GATEWAY_BIN" ] || die "GATEWAY_BIN=$GATEWAY_BIN is not an executable"
    gateway_bin=$GATEWAY_BIN
    return
  fi
  (cd "$REPO" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j"$(nproc)")
  gateway_bin=$REPO/build/gateway
}

start_components() {
  local i port
  for port in "$redis_port" "${gw_ports[@]}" "$lb_port"; do
    if port_taken "$port"; then
      die "port $port is in use on 127.0.0.1 (set CLUSTER_LB_PORT, CLUSTER_GATEWAY_PORTS or CLUSTER_REDIS_PORT)"
    fi
  done
  cat >"$dir/cluster.env" <<EOF
CLUSTER_LB=$lb
CLUSTER_LB_PORT=$lb_port
CLUSTER_GATEWAY_PORTS="${gw_ports[*]}"
CLUSTER_REDIS_PORT=$redis_port
EOF
  # Each tier once the one it needs is ready, as compose's depends_on does:
  # a load balancer that probed a gateway still connecting to Redis would
  # keep it out for a while.
  mkdir -p "$dir/redis"
  proc_spawn redis "$dir/logs/redis.log" redis-server --port "$redis_port" --bind 127.0.0.1 \
    --dir "$dir/redis" --save '' --appendonly no
  wait_ready redis
  export GATEWAY_CLIENT_DIR=${GATEWAY_CLIENT_DIR:-$REPO/client}
  for i in "${!gw_names[@]}"; do
    proc_spawn "${gw_names[i]}" "$dir/logs/${gw_names[i]}.log" "$gateway_bin" \
      --listen "127.0.0.1:${gw_ports[i]}" --redis "redis://127.0.0.1:$redis_port" --id "${gw_names[i]}"
  done
  wait_ready "${gw_names[@]}"
  lb_start "$lb" "$dir" "$dir/logs/$lb.log" "$lb_port" "${gw_ports[@]}"
  wait_ready lb
}

# NAME... : waits until they are all ready; fails at once if one has exited.
# One deadline for the whole start.
wait_ready() {
  local name pending
  while :; do
    pending=()
    for name; do
      proc_pid "$name" >/dev/null || die "$name exited while starting; its log ends:
$(tail -n 20 "$(log_of "$name")")"
      ready "$name" || pending+=("$name")
    done
    [ ${#pending[@]} -eq 0 ] && return 0
    [ "$SECONDS" -lt "$start_deadline" ] || die "not ready after ${start_timeout}s: ${pending[*]} (logs in $dir/logs)"
    sleep 0.2
  done
}

log_of() {
  case $1 in
    lb) echo "$dir/logs/$lb.log" ;;
    *) echo "$dir/logs/$1.log" ;;
  esac
}

print_urls() {
  local i
  echo "cluster ready; state and logs in $dir"
  echo "  http://127.0.0.1:$lb_port/  load balancer ($lb)"
  for i in "${!gw_names[@]}"; do
    echo "  http://127.0.0.1:${gw_ports[i]}/  gateway ${gw_names[i]}"
  done
  echo "  redis://127.0.0.1:$redis_port  redis"
}

start() {
  running_any && die "a cluster already runs from $dir: deploy/cluster.sh stop first"
  install_and_build
  # Whatever was started is stopped again if starting fails or is
  # interrupted halfway.
  trap 'stop_all' EXIT
  trap 'exit 130' INT TERM
  start_deadline=$((SECONDS + start_timeout))
  start_components
  print_urls
}

run_foreground() {
  start
  trap 'echo; echo "stopping..."; stop_all; trap - EXIT; exit 130' INT TERM
  echo "Ctrl-C stops everything"
  # A component that exits is reported; the rest keep running (a stopped
  # gateway is a failover demo, not a reason to stop).
  local pid name
  while :; do
    pid=
    wait -n -p pid || true
    [ -n "$pid" ] || break  # no component left
    for name in "${components[@]}"; do
      if [ -f "$PID_DIR/$name.pid" ] && ! proc_pid "$name" >/dev/null; then
        echo "$name (pid $pid) exited; its log: $(log_of "$name")" >&2
        rm -f "$PID_DIR/$name.pid"
      fi
    done
  done
}

status() {
  local name state code=0
  [ -f "$dir/cluster.env" ] && echo "cluster in $dir ($(tr '\n' ' ' <"$dir/cluster.env"))"
  for name in "${components[@]}"; do
    if ! proc_pid "$name" >/dev/null; then
      state="not running"
      code=1
    elif ready "$name"; then
      state="ready (pid $(proc_pid "$name"))"
    else
      state="running, not ready (pid $(proc_pid "$name"))"
      code=1
    fi
    printf '  %-6s %s\n' "$name" "$state"
  done
  return $code
}

case $cmd in
  run) run_foreground ;;
  start)
    start
    trap - EXIT
    ;;
  stop)
    if [ $# -le 1 ]; then
      stop_all
    fi
    for name in "${@:2}"; do
      [[ " ${components[*]} " == *" $name "* ]] || die "no component '$name' (${components[*]})"
      stop_one "$name"
    done
    ;;
  status)
    # The ports of the cluster that runs, not of this shell's environment.
    if [ -f "$dir/cluster.env" ]; then
      # shellcheck disable=SC1091
      . "$dir/cluster.env"
      lb=$CLUSTER_LB lb_port=$CLUSTER_LB_PORT redis_port=$CLUSTER_REDIS_PORT
      read -r -a gw_ports <<<"$CLUSTER_GATEWAY_PORTS"
    fi
    status
    ;;
  check) lb_check "$dir/check" "$lb_port" "${gw_ports[@]}" && echo "nginx and haproxy configurations are valid" ;;
  *) die "unknown command '$cmd' (run, start, stop, status or check)" ;;
esac
