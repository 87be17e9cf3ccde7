#!/usr/bin/env bash
# Conformance of the gateway's /echo endpoint, checked by someone else's
# suite: Autobahn|Testsuite's fuzzing client (`wstest -m fuzzingclient`,
# autobahntestsuite 25.10.1, Python 2.7 in a Debian bullseye chroot made by
# autobahn-env.sh) runs every case of fuzzingclient.json against one gateway,
# and every case must pass except the excluded ones below.
#
# A case passes when its behavior is OK, NON-STRICT, INFORMATIONAL or
# UNIMPLEMENTED (the gateway offers no permessage-deflate: the 12.x and 13.x
# compression cases find it unimplemented and end there), the same test as
# lws's script plus UNIMPLEMENTED. Anything else (FAILED, WRONG CODE,
# UNCLEAN, ...) fails. behaviorClose, the verdict on the closing alone, is
# not judged by itself (as in lws's script; it reads "FAILED BY CLIENT" in
# passing cases such as 2.5 and 3.x, where the connection is meant to be
# failed); it is printed for a failed case.
#
# Excluded (fuzzingclient.json, "exclude-cases"), as libwebsockets 4.1.6's
# own scripts/autobahn-test-server.sh and autobahn-test-client.sh exclude them:
#   2.10, 2.11   10 pings sent at once (2.11: in 1-octet chops), expecting a
#                pong for each: lws keeps one pong pending and answers the
#                last ping only, which RFC 6455 allows (the case itself says
#                "not required by the Spec"); lws excludes both in its server
#                and its client run.
#   12.3.1, 12.3.2, 12.4.*, 12.5.*   permessage-deflate with particular
#                payloads, excluded by lws's client run. The gateway
#                negotiates no compression, so these would only say
#                UNIMPLEMENTED; excluded to keep lws's list whole, so that
#                turning lws's deflate on does not fail on what lws knows.
#
# The gateway runs single node with flags for an echo run, because the suite
# is a flood by design and its 9.x cases echo messages up to 16 MiB:
#   --rate-limit 0              9.7/9.8 send 1000 frames back to back
#                               (default 20/s with a burst of 120)
#   --max-message-bytes 16m     9.1-9.6 send messages up to 16 MiB
#                               (default 64 KiB: would close with 1009)
#   --send-queue-limit 64m      a 16 MiB echo waits in the queue while the
#                               client is still sending (default 1 MiB would
#                               close the client as slow)
# Everything else is the default; ping interval (54 s, first ping after at
# least 27 s) is longer than any case's connection.
#
# The report (HTML per case, index.json, the spec used, the gateway's log)
# is kept in $AUTOBAHN_REPORT_DIR (default build/autobahn-report/): open
# index.html there. Ends with the line `N passed, N failed` (cases).
#
# Usage: tests/conformance/autobahn.sh   (root: chroot)
#   GATEWAY_BIN          binary under test (default build/gateway)
#   AUTOBAHN_REPORT_DIR  where the report goes (replaced each run)
#   AUTOBAHN_TIMEOUT     seconds for the whole wstest run (default 900;
#                        a run takes about 35 s here)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
gateway=${GATEWAY_BIN:-$repo/build/gateway}
report=${AUTOBAHN_REPORT_DIR:-$repo/build/autobahn-report}
limit=${AUTOBAHN_TIMEOUT:-900}
gateway_flags=(--rate-limit 0 --max-message-bytes 16m --send-queue-limit 64m)
extra_excluded=""
# AUTOBAHN_DEFAULT_FLAGS=1: the gateway as users run it, with its default
# limits. Category 9 (messages up to 16 MiB, 1000 frames back to back) is
# then left out: the defaults refuse those by design (1009, rate limit),
# and the other run covers them.
if [ "${AUTOBAHN_DEFAULT_FLAGS:-0}" = 1 ]; then
  gateway_flags=()
  extra_excluded="9.*"
fi

[ -x "$gateway" ] || { echo "autobahn: no gateway binary at $gateway"; exit 1; }
root=$("$here/autobahn-env.sh") || { echo "autobahn: making the wstest environment failed"; exit 1; }
echo "autobahn: wstest in $root ($(grep -E '^autobahntestsuite==' "$root/versions.txt"))"

# The run's own folder inside the chroot; the gateway's pid; both ended on
# any exit.
run=$(mktemp -d "$root/tmp/autobahn.XXXXXX")
gw_pid=
ws_pid=
stop_gateway() {
  [ -n "$gw_pid" ] || return 0
  kill -TERM "$gw_pid" 2>/dev/null
  local i
  for i in $(seq 100); do
    kill -0 "$gw_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$gw_pid" 2>/dev/null
  wait "$gw_pid" 2>/dev/null
  gw_rc=$?
  gw_pid=
}
stop_wstest() {
  [ -n "$ws_pid" ] || return 0
  kill -TERM "$ws_pid" 2>/dev/null # timeout passes it on to wstest
  wait "$ws_pid" 2>/dev/null
  ws_pid=
}
trap 'stop_wstest; stop_gateway; rm -rf "$run"' EXIT
# A TERM (an outer timeout) ends the waits below at once, and the EXIT trap
# ends what was started.
trap 'exit 143' TERM INT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Start the gateway; retried on another port if one was taken meanwhile.
for attempt in 1 2 3; do
  port=$(free_port)
  "$gateway" --listen "127.0.0.1:$port" --id gw1 "${gateway_flags[@]}" \
    >"$run/gateway.log" 2>&1 </dev/null &
  gw_pid=$!
  up=0
  for i in $(seq 100); do # 10 s
    kill -0 "$gw_pid" 2>/dev/null || break
    if python3 -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' \
      "$port" 2>/dev/null; then
      up=1
      break
    fi
    sleep 0.1
  done
  [ "$up" = 1 ] && break
  stop_gateway
done
if [ "$up" != 1 ]; then
  echo "autobahn: the gateway did not start; its log:"
  cat "$run/gateway.log"
  exit 1
fi
echo "autobahn: gateway pid $gw_pid on 127.0.0.1:$port: ${gateway_flags[*]:-default flags}"

# The spec, with this run's URL and an output folder inside the chroot.
inside=/tmp/$(basename "$run")
python3 - "$here/fuzzingclient.json" "$run/spec.json" "$port" "$inside" "$extra_excluded" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
spec["exclude-cases"] += sys.argv[5].split()
for server in spec["servers"]:
    server["url"] = server["url"].replace("PORT", sys.argv[3])
spec["outdir"] = sys.argv[4] + "/reports/servers"
json.dump(spec, open(sys.argv[2], "w"), indent=2)
EOF

echo "autobahn: wstest -m fuzzingclient (at most ${limit}s)"
start=$(date +%s)
# timeout ends its child by pid: chroot, which execs env, sh, then wstest.
timeout --kill-after=10 "$limit" chroot "$root" env -i PATH=/usr/local/bin:/usr/bin:/bin \
  HOME=/root LC_ALL=C.UTF-8 PYTHONWARNINGS=ignore sh -c 'cd "$1" && exec wstest -m fuzzingclient -s spec.json' \
  sh "$inside" >"$run/wstest.log" 2>&1 </dev/null &
ws_pid=$!
wait "$ws_pid"
wstest_rc=$?
ws_pid=
elapsed=$(($(date +%s) - start))
alive=1
kill -0 "$gw_pid" 2>/dev/null || alive=0
gw_rc=0
stop_gateway

rm -rf "$report"
mkdir -p "$report"
[ -d "$run/reports/servers" ] && cp -r "$run/reports/servers/." "$report/"
cp "$run/spec.json" "$run/wstest.log" "$run/gateway.log" "$report/"
echo "autobahn: wstest exit $wstest_rc after ${elapsed}s; report in $report (index.html)"

fail=0
if [ "$wstest_rc" -ne 0 ]; then
  echo "autobahn: wstest did not finish (exit $wstest_rc$([ "$wstest_rc" = 124 ] && echo ": timed out")); its last lines:"
  tail -n 20 "$run/wstest.log"
  fail=1
fi
if [ "$alive" = 0 ]; then
  echo "autobahn: the gateway died during the run; its last lines:"
  tail -n 20 "$run/gateway.log"
  fail=1
fi
if [ "$gw_rc" -ne 0 ]; then
  echo "autobahn: the gateway exited $gw_rc on SIGTERM; its last lines:"
  tail -n 20 "$run/gateway.log"
  fail=1
fi

python3 - "$report/index.json" "$report/spec.json" <<'EOF'
import fnmatch, json, sys

PASS = {"OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED"}
try:
    index = json.load(open(sys.argv[1]))
except (OSError, ValueError) as e:
    print("autobahn: no report (%s)" % e)
    print("0 passed, 1 failed")
    sys.exit(1)
spec = json.load(open(sys.argv[2]))
excluded = spec["exclude-cases"]

def key(case):
    return [int(p) for p in case.split(".")]

cases = {}
for agent in index.values():
    cases.update(agent)
passed, failed, by_behavior = [], [], {}
for case in sorted(cases, key=key):
    r = cases[case]
    if any(fnmatch.fnmatch(case, x) for x in excluded):
        continue  # wstest did not run it: not in the report
    ok = r["behavior"] in PASS
    by_behavior[r["behavior"]] = by_behavior.get(r["behavior"], 0) + 1
    (passed if ok else failed).append(case)
    if not ok:
        detail = json.load(open(sys.argv[1].rsplit("/", 1)[0] + "/" + r["reportfile"]))
        print("autobahn: FAILED %s: behavior %s, close %s: %s; %s" % (
            case, r["behavior"], r["behaviorClose"], detail.get("result"),
            detail.get("resultClose")))
print("autobahn: %d cases run (%s); excluded: %s" % (
    len(cases), ", ".join("%s %d" % kv for kv in sorted(by_behavior.items())),
    " ".join(excluded)))
if not cases:
    failed.append("(none ran)")
if failed:
    print("autobahn: failed cases: " + " ".join(failed))
print("%d passed, %d failed" % (len(passed), len(failed)))
sys.exit(1 if failed else 0)
EOF
[ $? -eq 0 ] || fail=1
exit "$fail"
