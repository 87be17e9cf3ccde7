# shellcheck shell=bash
# The native cluster's load balancer: nginx with deploy/nginx.conf or HAProxy
# with deploy/haproxy.cfg, the very files docker compose uses. Needs $DEPLOY
# (the deploy/ directory) and lib/proc.sh.

# DIR LB_PORT GATEWAY_PORT... : nginx's prefix and config directory. nginx
# resolves includes from its config file's directory, so DIR gets a symlink
# to deploy/nginx.conf and the native twins of compose's listen.conf and
# upstream-servers.conf. The upstream lines are compose's with the addresses
# swapped, so both keep the same health-check parameters.
lb_nginx_prepare() {
  local dir=$1 lb_port=$2 i=0 port script=()
  shift 2
  for port; do
    i=$((i + 1))
    script+=(-e "s/\\bgateway$i:8080\\b/127.0.0.1:$port/")
  done
  mkdir -p "$dir"
  ln -sfn "$DEPLOY/nginx.conf" "$dir/nginx.conf"
  echo "listen 127.0.0.1:$lb_port;" >"$dir/listen.conf"
  {
    echo "# Written by deploy/cluster.sh from deploy/compose/upstream-servers.conf."
    sed -e '/^#/d' "${script[@]}" "$DEPLOY/compose/upstream-servers.conf"
  } >"$dir/upstream-servers.conf"
  if grep -q '^server gateway' "$dir/upstream-servers.conf"; then
    echo "deploy/compose/upstream-servers.conf names more gateways than the $# ports given" >&2
    return 1
  fi
}

# LB_PORT GW1_PORT GW2_PORT GW3_PORT CMD... : run CMD with the environment
# HAProxy reads deploy/haproxy.cfg's addresses from.
lb_haproxy_env() {
  LB_BIND=127.0.0.1:$1 GW1_ADDR=127.0.0.1:$2 GW2_ADDR=127.0.0.1:$3 GW3_ADDR=127.0.0.1:$4 \
    "${@:5}"
}

# KIND DIR LOG LB_PORT GATEWAY_PORT... : start the load balancer as "lb".
lb_start() {
  local kind=$1 dir=$2 log=$3
  shift 3
  case $kind in
    nginx)
      lb_nginx_prepare "$dir/nginx" "$@"
      proc_spawn lb "$log" nginx -p "$dir/nginx/" -c "$dir/nginx/nginx.conf" -g 'daemon off;'
      ;;
    haproxy)
      # -db: stay in the foreground, one process, logs on stdout.
      lb_haproxy_env "$@" proc_spawn lb "$log" haproxy -db -f "$DEPLOY/haproxy.cfg"
      ;;
  esac
}

# DIR LB_PORT GATEWAY_PORT... : validate both configurations exactly as
# lb_start would run them, without starting anything.
lb_check() {
  local dir=$1
  shift
  lb_nginx_prepare "$dir/nginx" "$@"
  nginx -t -q -p "$dir/nginx/" -c "$dir/nginx/nginx.conf"
  lb_haproxy_env "$@" haproxy -c -q -f "$DEPLOY/haproxy.cfg"
}
