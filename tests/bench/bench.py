#!/usr/bin/python3
"""Benchmark of the chat gateway: starts Redis and N gateways on free ports,
runs the scenarios with the chatbench load generator, prints a table and one
JSON line per scenario, and stops everything it started.

  tests/bench/bench.py                      # fanout, floor, max, idle, storm, reconnect
  tests/bench/bench.py --scenarios fanout --rate 300
  tests/bench/bench.py --smoke              # every scenario, tiny (CI)

The gateway binary is $GATEWAY_BIN (default <repo>/build/gateway); the
generator is $CHATBENCH_BIN or a build of tests/bench in the temp directory.
How to read the output: tests/bench/README.md.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchlib import chatbench, procs, scenarios, table  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SCENARIOS = ("fanout", "floor", "max", "idle", "storm", "reconnect")

# Every scenario, tiny: proves the tool works end to end in under 30 s.
SMOKE = dict(gateways=2, conns=40, rooms=2, publishers=4, rate=50, size=100,
             warmup=0.5, duration=2, repeat=1, max_start=20, max_factor=2,
             max_steps=2,
             max_retries=0,
             max_warmup=0.2, max_step_duration=1, idle_conns=200,
             idle_gateways=2, idle_workers=2, idle_seconds=1,
             ping_interval="500ms", shutdown_wait=10,
             storm_conns=300, storm_gateways=2, storm_rooms=20,
             storm_workers=2, storm_announce="on",
             reconnect_conns=300, reconnect_gateways=2, reconnect_rooms=10,
             reconnect_publishers=2, reconnect_rate=20, reconnect_warmup=1,
             reconnect_deadline=20, reconnect_tail=1)


# The kernel's least CFS quota is 1 ms of a 100 ms period.
MIN_CPU_QUOTA_PCT = 1

# --reconnect-NAME options: (NAME, type, default, help).
RECONNECT_ARGS = (
    ("conns", int, 20000, "members, through the load balancer"),
    ("gateways", int, 3, "gateways, one of them killed; the survivors "
     "must hold every member, under 20,000 files each"),
    ("rooms", int, 100, "rooms"),
    ("publishers", int, 10, "publishers on a surviving gateway"),
    ("rate", float, 100, "messages/s of all publishers together"),
    ("warmup", float, 5, "seconds of publishing before the kill"),
    ("deadline", float, 60, "longest wait for everyone to be back"),
    ("tail", float, 3, "seconds of publishing after everyone is back"),
)


def _size_args(group, name, conns, gateways):
    """--NAME-conns, --NAME-gateways and --NAME-workers."""
    group.add_argument("--%s-conns" % name, type=int, default=conns,
                       help="connections (%d)" % conns)
    group.add_argument("--%s-gateways" % name, type=int, default=gateways,
                       help="gateways: each holds under 20,000 files (%d)"
                       % gateways)
    group.add_argument("--%s-workers" % name, type=int, default=0,
                       help="client processes (default: one per 19,000)")


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--scenarios", default=",".join(SCENARIOS),
                    help="comma-separated subset of %s (default: all)"
                    % ",".join(SCENARIOS))
    ap.add_argument("--smoke", action="store_true",
                    help="every scenario tiny and quick; fails only if the "
                    "tool breaks, never on figures")
    ap.add_argument("--single-node", action="store_true",
                    help="one gateway, no Redis (overrides --gateways)")
    ap.add_argument("--redis-cluster", type=int, default=0, metavar="N",
                    help="a Redis Cluster of N primaries (no replicas) "
                         "instead of one Redis, through redis+cluster:// "
                         "(0: one Redis); fanout reports each one's CPU")
    ap.add_argument("--redis-cpu-quota", type=float, default=0,
                    metavar="PCT",
                    help="hold every redis-server to PCT %% of one core "
                         "(%g to 100; cgroup v1 cpu controller, root only; "
                         "0: no limit), so that Redis is the bottleneck "
                         "before the gateways; fanout and max report each "
                         "one's share of a core and of throttled periods"
                    % MIN_CPU_QUOTA_PCT)
    ap.add_argument("--gateways", type=int, default=2,
                    help="gateways for fanout and max (2)")
    ap.add_argument("--gateway-args", default="",
                    help="more flags for every gateway, e.g. "
                    "'--send-queue-limit 4m'")
    g = ap.add_argument_group("fanout and max")
    g.add_argument("--conns", type=int, default=1000,
                   help="room members, over all gateways (1000)")
    g.add_argument("--rooms", type=int, default=1, help="rooms (1)")
    g.add_argument("--workers", type=int, default=0,
                   help="client processes (default: one per 19,000 conns)")
    g.add_argument("--publishers", type=int, default=10,
                   help="members that also publish (10)")
    g.add_argument("--rate", type=float, default=200,
                   help="fanout: messages/s of all publishers (200)")
    g.add_argument("--size", type=int, default=100,
                   help="bytes of chat content (100)")
    g.add_argument("--warmup", type=float, default=2,
                   help="fanout: seconds before measuring (2)")
    g.add_argument("--duration", type=float, default=10,
                   help="fanout and floor: seconds measured (10)")
    g.add_argument("--repeat", type=int, default=None,
                   help="runs of fanout (1; then also their median) and of "
                   "each floor server (3)")
    g.add_argument("--max-start", type=float, default=50,
                   help="max: first rate in messages/s (50)")
    g.add_argument("--max-factor", type=float, default=1.25,
                   help="max: rate multiplier per step (1.25)")
    g.add_argument("--max-steps", type=int, default=16,
                   help="max: most steps, retries included (16)")
    g.add_argument("--max-retries", type=int, default=1,
                   help="max: runs of a failed step before stopping (1)")
    g.add_argument("--max-warmup", type=float, default=1,
                   help="max: warm-up seconds per step (1)")
    g.add_argument("--max-step-duration", type=float, default=5,
                   help="max: seconds measured per step (5)")
    g.add_argument("--max-p99-ms", type=float, default=50,
                   help="max: a step fails above this p99 (50)")
    g = ap.add_argument_group("idle")
    _size_args(g, "idle", 40000, 3)
    g.add_argument("--idle-seconds", type=float, default=20,
                   help="seconds of idle measurement (20)")
    g.add_argument("--ping-interval", default="10s",
                   help="gateway --ping-interval during idle (10s)")
    g.add_argument("--shutdown-wait", type=float, default=30,
                   help="longest wait for the gateways to close every "
                   "connection after SIGTERM (30)")
    g = ap.add_argument_group("storm (gateways with their default flags)")
    _size_args(g, "storm", 20000, 2)
    g.add_argument("--storm-rooms", type=int, default=1000,
                   help="rooms; connection i joins room i mod ROOMS (1000)")
    g.add_argument("--storm-announce", choices=("on", "off", "both"),
                   default="on",
                   help="the gateways' --announce-connections; both: a run "
                   "with each, and the ratio of their times (on)")
    g.add_argument("--storm-timeout", type=float, default=180,
                   help="storm and reconnect: longest wait for every "
                   "connection and join (180)")
    g = ap.add_argument_group("reconnect (behind HAProxy)")
    for name, kind, default, text in RECONNECT_ARGS:
        g.add_argument("--reconnect-" + name, type=kind, default=default,
                       help="%s (%g)" % (text, default))
    g.add_argument("--lb-balance", choices=("leastconn", "roundrobin"),
                   default="leastconn", help="HAProxy's balance (leastconn)")
    ap.add_argument("--progress", type=float, default=2,
                    help="seconds between progress lines, 0 off (2)")
    ap.add_argument("--json-out", help="also append the JSON lines here")
    ap.add_argument("--keep-logs", action="store_true",
                    help="keep the gateway and Redis logs")
    p = ap.parse_args(argv)
    if p.smoke:
        for k, v in SMOKE.items():
            setattr(p, k, v)
        p.progress = 0
    p.scenarios = [s for s in p.scenarios.split(",") if s]
    bad = [s for s in p.scenarios if s not in SCENARIOS]
    if bad:
        ap.error("unknown scenario %s" % ",".join(bad))
    if p.single_node:
        p.gateways = p.idle_gateways = 1
    if p.redis_cpu_quota:
        if not MIN_CPU_QUOTA_PCT <= p.redis_cpu_quota <= 100:
            ap.error("--redis-cpu-quota must be from %g to 100"
                     % MIN_CPU_QUOTA_PCT)
        why = procs.cpu_quota_problem()
        if why or p.single_node:
            ap.error("--redis-cpu-quota: %s" % (why or "no Redis with "
                                                 "--single-node"))
    return p


def variants(name, p):
    """The runs main makes of scenario name (floor repeats inside): fanout
    --repeat times, storm once per --storm-announce setting."""
    if name == "fanout":
        return [None] * (p.repeat or 1)
    if name == "storm":
        return ["on", "off"] if p.storm_announce == "both" else \
            [p.storm_announce]
    return [None]


def pong_timeout(interval):
    """Three ping intervals, in the gateway's duration syntax."""
    if interval.endswith("ms"):
        return "%dms" % (3 * float(interval[:-2]))
    return "%gs" % (3 * float(interval.rstrip("s")))


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_scenario(name, p, cb, gateway_bin, log_dir, variant):
    """Runs one scenario on a fresh cluster; returns (result, renderer)."""
    before = loadavg()
    result, render = _run_on_cluster(name, p, cb, gateway_bin, log_dir,
                                     variant)
    result.update(loadavg_before=before, loadavg_after=loadavg(),
                  cores=os.cpu_count())
    return result, render


def _bench_flags(name, variant):
    """The flags a scenario gives the gateways before the caller's."""
    # The per-connection rate limit would cap the publishers, not measure
    # the fan-out; "NAME connected" to every client makes N connections
    # cost N^2/2 frames, which would be measured instead of idleness. Storm
    # and reconnect measure the defaults (storm may turn announcements off
    # for comparison).
    if name == "idle" or (name == "storm" and variant == "off"):
        return ["--announce-connections", "off"]
    if name in ("storm", "reconnect"):
        return []
    return ["--rate-limit", "0"]


def _run_on_cluster(name, p, cb, gateway_bin, log_dir, variant):
    redis = not p.single_node
    # The caller's --gateway-args come later and win.
    extra = _bench_flags(name, variant) + shlex.split(p.gateway_args)
    if name == "floor":
        return _floor(p, cb, gateway_bin, log_dir, extra)
    if name == "idle":
        extra += ["--ping-interval", p.ping_interval,
                  "--pong-timeout", pong_timeout(p.ping_interval)]
        gateways = p.idle_gateways
    elif name == "storm":
        gateways = p.storm_gateways
    elif name == "reconnect":
        return _reconnect(p, cb, gateway_bin, log_dir, extra)
    else:
        gateways = p.gateways
    cluster = procs.Cluster(gateway_bin, gateways, log_dir, redis, extra,
                            p.redis_cluster, p.redis_cpu_quota)
    try:
        if name == "fanout":
            return scenarios.fanout(cluster, cb, p), table.fanout
        if name == "max":
            return scenarios.max_rate(cluster, cb, p), table.max_rate
        if name == "storm":
            return scenarios.storm(cluster, cb, p, variant), table.storm
        return scenarios.idle(cluster, cb, p), table.idle
    finally:
        cluster.close()


def _reconnect(p, cb, gateway_bin, log_dir, extra):
    """The reconnect scenario: Redis, gateways and HAProxy in front."""
    if p.single_node or p.reconnect_gateways < 2:
        raise ValueError("reconnect needs Redis and at least 2 gateways")
    cluster = procs.Cluster(gateway_bin, p.reconnect_gateways, log_dir, True,
                            extra, redis_cpu_quota=p.redis_cpu_quota)
    try:
        lb = procs.Haproxy(cluster, p.reconnect_conns, p.lb_balance, log_dir)
        try:
            return scenarios.reconnect(cluster, lb, cb, p), table.reconnect
        finally:
            lb.close()
    finally:
        cluster.close()


def _floor(p, cb, gateway_bin, log_dir, extra):
    """The floor scenario: each server started afresh for each run."""
    floor_bin = chatbench.floor_binary(cb)

    def start(kind, arg):
        if kind == "floor":
            return procs.BareServer(floor_bin, arg, log_dir)
        # The bench's flags, the floor's, then the caller's (which win).
        return procs.Cluster(gateway_bin, 1, log_dir, False,
                             extra[:2] + arg + extra[2:])

    return scenarios.floor(start, cb, p), table.floor


def broken(name, r):
    """Why a result shows the tool itself broke (smoke), or None."""
    if name in ("fanout", "floor") and not r.get("delivered"):
        return "no deliveries"
    if name == "max" and r.get("last_good_rate") is None:
        return "no step passed"
    if name == "idle" and not r.get("connected"):
        return "no connections"
    if name == "storm" and not r.get("joined"):
        return "no joins"
    if name == "reconnect" and not r.get("rejoins"):
        return "no rejoins"
    return None


def main(argv):
    p = parse_args(argv)
    gateway_bin = os.environ.get("GATEWAY_BIN",
                                 os.path.join(REPO, "build", "gateway"))
    if not os.access(gateway_bin, os.X_OK):
        print("bench: no gateway binary at %s (set GATEWAY_BIN)" % gateway_bin,
              file=sys.stderr)
        return 1
    # SIGINT and SIGTERM unwind through the finally blocks that stop every
    # started process, even where the parent shell had SIGINT ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    log_dir = tempfile.mkdtemp(prefix="chatbench-logs-")
    failed = None
    done = 0
    try:
        cb = chatbench.binary()
        for name in p.scenarios:
            print("== %s" % name, file=sys.stderr, flush=True)
            results = []
            for variant in variants(name, p):
                result, render = run_scenario(name, p, cb, gateway_bin,
                                              log_dir, variant)
                line = json.dumps(result, ensure_ascii=False,
                                  separators=(",", ":"))
                print(render(result))
                print(line, flush=True)
                if p.json_out:
                    with open(p.json_out, "a") as f:
                        f.write(line + "\n")
                why = broken(name, result)
                if why:
                    failed = "%s: %s" % (name, why)
                    break
                results.append(result)
            if failed:
                break
            if len(results) > 1:
                print(table.storm_ratio(results) if name == "storm"
                      else table.fanout_median(results))
            done += 1
    except KeyboardInterrupt:
        failed = "interrupted"
    except (procs.StartError, chatbench.ChatbenchError, ValueError,
            OSError) as e:
        failed = str(e)
    if p.smoke:
        # A closing line that test runners' summaries understand.
        print("%d passed, %d failed" % (done, len(p.scenarios) - done))
    if failed:
        print("bench: FAILED: %s (logs in %s)" % (failed, log_dir),
              file=sys.stderr)
        return 130 if failed == "interrupted" else 1
    if p.keep_logs:
        print("bench: logs in %s" % log_dir, file=sys.stderr)
    else:
        shutil.rmtree(log_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
