"""The scenarios: each takes a running Cluster and returns its JSON result."""
import time

from . import chatbench

MAX_P99_US_DEFAULT = 50000


def _fanout_args(p, rate, warmup, duration):
    args = ["--conns", p.conns, "--rooms", p.rooms,
            "--publishers", p.publishers, "--rate", rate, "--size", p.size,
            "--warmup", warmup, "--duration", duration,
            "--progress", p.progress]
    return args + (["--workers", p.workers] if p.workers else [])


def _share(before, after, over):
    """(after - before) / over, or None when a figure is missing."""
    return round((after - before) / over, 3) \
        if over > 0 and None not in (before, after) else None


def _run_fanout(cluster, cb, args):
    """chatbench fanout ARGS, and what each redis-server did over its
    measured seconds (chatbench samples one Redis only): its share of a
    core (redis_cpu_share_by_node) and, under --redis-cpu-quota, the share
    of the quota's periods it was throttled in (redis_throttled_by_node;
    near 1: Redis is at its quota, the bottleneck)."""
    marks = []

    def on_event(event):
        if event.get("event") in ("measure_start", "measure_end"):
            marks.append((time.monotonic(), cluster.redis_cpu_s(),
                           cluster.redis_periods()))

    r = chatbench.run(cb, "fanout", args, on_event)
    r["redis_cpu_quota_pct"] = cluster.redis_cpu_quota or None
    r["redis_cpu_share_by_node"] = r["redis_throttled_by_node"] = None
    if len(marks) == 2:
        (t0, cpu0, per0), (t1, cpu1, per1) = marks
        r["redis_cpu_share_by_node"] = [_share(a, b, t1 - t0)
                                        for a, b in zip(cpu0, cpu1)]
        if per0:
            r["redis_throttled_by_node"] = [
                _share(a[1], b[1], b[0] - a[0]) for a, b in zip(per0, per1)]
    return r


def fanout(cluster, cb, p):
    before = cluster.redis_cpu_s()
    result = _run_fanout(cluster, cb, cluster.chatbench_args() +
                         _fanout_args(p, p.rate, p.warmup, p.duration))
    result["redis"] = cluster.redis is not None
    _redis_per_node(result, cluster, before)
    return result


def _redis_per_node(result, cluster, before):
    """Redis's CPU per 100,000 deliveries of each redis-server (over the
    whole run, warm-up included, where chatbench measures only the first
    one's over the measured part); for a cluster the total is their sum."""
    after = cluster.redis_cpu_s()
    delivered = result.get("delivered") or 0
    warm = result.get("deliveries_per_s") or 0
    # Deliveries over the whole run, at the measured rate.
    total = delivered + warm * float(result.get("warmup_s") or 0)
    per = [round((a - b) / total * 1e5, 3) if total and a is not None and b is not None
           else None for a, b in zip(after, before)]
    result["redis_primaries"] = len(per) if len(per) > 1 else 0
    result["redis_cpu_per_100k_by_node"] = per
    if len(per) > 1 and None not in per:
        result["redis_cpu_per_100k"] = round(sum(per), 3)


def _step_verdict(r, p99_limit_us):
    """Why a step is not good, or None when it is."""
    if r["lost"] or r["lost_connections"] or r["send_skipped"]:
        return "loss"
    if r["errors"]["rate_limited"] or r["errors"]["unavailable"]:
        return "errors"
    if r["latency_us"]["p99"] > p99_limit_us:
        return "p99"
    if r["publishers_behind"]:
        return "publishers behind (CPU)"
    if r["generator_limited"]:
        return "generator saturated"
    return None


def _step(cluster, cb, p, rate):
    """One fanout run at rate: (result or None, summary of the step). A run
    that fails (its reason is on stderr) is a failed step: under load the
    gateways may stop answering, and that too ends the search."""
    try:
        r = _run_fanout(cluster, cb, cluster.chatbench_args() +
                        _fanout_args(p, round(rate, 3), p.max_warmup,
                                     p.max_step_duration))
    except chatbench.ChatbenchError as e:
        return None, {"rate": round(rate, 3), "deliveries_per_s": None,
                      "loss_pct": None, "p99_us": None,
                      "gateway_cpu_per_100k": None, "generator_busy": None,
                      "redis_cpu_share_by_node": None,
                      "redis_throttled_by_node": None, "failed": str(e)}
    return r, {"rate": r["rate"], "deliveries_per_s": r["deliveries_per_s"],
               "loss_pct": r["loss_pct"], "p99_us": r["latency_us"]["p99"],
               "gateway_cpu_per_100k": r["gateway_cpu_per_100k"],
               "generator_busy": r["generator_busy"],
               "redis_cpu_share_by_node": r["redis_cpu_share_by_node"],
               "redis_throttled_by_node": r["redis_throttled_by_node"],
               "failed": _step_verdict(r, p.max_p99_ms * 1000)}


def max_rate(cluster, cb, p):
    """Raises the rate by p.max_factor per step until a step fails. A failed
    step is run once more before the search stops: the machine is shared,
    and one stall should not decide the result."""
    steps, last_good, rate = [], None, p.max_start
    while len(steps) < p.max_steps:
        for _ in range(1 + p.max_retries):
            r, step = _step(cluster, cb, p, rate)
            steps.append(step)
            if not step["failed"]:
                break
        if step["failed"]:
            break
        last_good = r
        rate *= p.max_factor
    return {
        "tool": "chatbench", "scenario": "max",
        "gateways": len(cluster.gateways), "redis": cluster.redis is not None,
        "redis_primaries": p.redis_cluster,
        "redis_cpu_quota_pct": cluster.redis_cpu_quota or None,
        "conns": p.conns, "rooms": p.rooms, "publishers": p.publishers,
        "size": p.size, "max_p99_ms": p.max_p99_ms,
        "last_good_rate": last_good["rate"] if last_good else None,
        "last_good_deliveries_per_s":
            last_good["deliveries_per_s"] if last_good else None,
        "stopped_by": steps[-1]["failed"] if steps else None,
        "steps": steps,
    }


def idle(cluster, cb, p):
    shutdown = {}

    def on_event(event):
        if event.get("event") == "idle_done":
            shutdown["took"] = cluster.stop_gateways()

    args = cluster.chatbench_args() + [
        "--conns", p.idle_conns, "--idle", p.idle_seconds,
        "--shutdown-wait", p.shutdown_wait, "--progress", p.progress]
    if p.idle_workers:
        args += ["--workers", p.idle_workers]
    result = chatbench.run(cb, "idle", args, on_event)
    took = shutdown.get("took", [])
    result["redis"] = cluster.redis is not None
    result["ping_interval_s"] = p.ping_interval
    result["shutdown_s"] = took
    result["shutdown_max_s"] = (max(took) if took and None not in took
                                else None)
    return result


# What the floor compares, on one node and the same clients: the bare server
# with each writer (what the kernel alone costs) and the gateway with each.
FLOOR_SERVERS = (
    ("chatfloor --writer send", "floor", "send"),
    ("chatfloor --writer uring", "floor", "uring"),
    ("gateway --io-uring off", "gateway", ["--io-uring", "off"]),
    ("gateway", "gateway", []),
)


def median(values):
    xs = sorted(v for v in values if v is not None)
    if not xs:
        return None
    mid = len(xs) // 2
    return xs[mid] if len(xs) % 2 else (xs[mid - 1] + xs[mid]) / 2


FLOOR_ROUNDS = 3


def floor(start, cb, p):
    """The fanout against each of FLOOR_SERVERS, p.repeat rounds (3), every
    other round in reverse order so that drift on a shared machine falls on
    all of them alike. start(kind, arg) returns a running server."""
    rounds = p.repeat or FLOOR_ROUNDS
    runs = []
    for rnd in range(rounds):
        order = FLOOR_SERVERS if rnd % 2 == 0 else FLOOR_SERVERS[::-1]
        for name, kind, arg in order:
            server = start(kind, arg)
            try:
                r = chatbench.run(cb, "fanout", server.chatbench_args() +
                                  _fanout_args(p, p.rate, p.warmup,
                                               p.duration))
            finally:
                server.close()
            runs.append({
                "server": name, "round": rnd,
                "deliveries_per_s": r["deliveries_per_s"], "lost": r["lost"],
                "cpu_per_100k": r["gateway_cpu_per_100k"],
                "p50_us": r["latency_us"]["p50"],
                "p99_us": r["latency_us"]["p99"],
                "read_p99_us": r["read_latency_us"]["p99"],
                "generator_limited": r["generator_limited"],
                "publishers_behind": r["publishers_behind"],
                "lost_connections": r["lost_connections"]})
    servers = []
    for name, _, _ in FLOOR_SERVERS:
        mine = [r for r in runs if r["server"] == name]
        cpu = [r["cpu_per_100k"] for r in mine]
        servers.append({
            "server": name, "runs": len(mine),
            "cpu_per_100k": median(cpu), "cpu_per_100k_min": min(cpu),
            "cpu_per_100k_max": max(cpu),
            "p50_us": median(r["p50_us"] for r in mine),
            "p99_us": median(r["p99_us"] for r in mine),
            "read_p99_us": median(r["read_p99_us"] for r in mine),
            "lost": sum(r["lost"] for r in mine)})
    return {"tool": "bench", "scenario": "floor", "conns": p.conns,
            "rooms": p.rooms, "publishers": p.publishers, "rate": p.rate,
            "size": p.size, "duration_s": p.duration, "repeat": rounds,
            "servers": servers, "runs": runs,
            "delivered": sum(r["deliveries_per_s"] for r in runs),
            "generator_limited": any(r["generator_limited"] for r in runs),
            "publishers_behind": any(r["publishers_behind"] for r in runs),
            "lost_connections": sum(r["lost_connections"] for r in runs)}


def _waited(cluster, before):
    """Seconds each process of cluster waited for a CPU since before (a
    runqueue_waits() of earlier): on a shared machine this tells a starved
    process from a slow one."""
    now = cluster.runqueue_waits()
    return {name: round(now[name] - before[name], 2)
            for name in now if now[name] is not None and
            before.get(name) is not None}


def storm(cluster, cb, p, announce):
    """Connects p.storm_conns clients as fast as chatbench can, each joining
    a room after its welcome, on gateways with their default flags."""
    args = cluster.chatbench_args() + [
        "--conns", p.storm_conns, "--rooms", p.storm_rooms,
        "--setup-timeout", p.storm_timeout, "--progress", p.progress]
    if p.storm_workers:
        args += ["--workers", p.storm_workers]
    before = cluster.runqueue_waits()
    result = chatbench.run(cb, "storm", args)
    result["runqueue_wait_s"] = _waited(cluster, before)
    result["redis"] = cluster.redis is not None
    result["announce_connections"] = announce
    result["gateway_metrics"] = cluster.metrics()
    return result


# The gateway whose clients lose their connection, and the one the
# publishers use (the first survivor).
VICTIM = 0


def reconnect(cluster, lb, cb, p):
    """Members through the load balancer lb, publishers straight to a
    surviving gateway; chatbench SIGKILLs the victim after the warm-up."""
    victim, _ = cluster.gateways[VICTIM]
    survivors = [g for i, g in enumerate(cluster.gateways) if i != VICTIM]
    args = cluster.chatbench_args(survivors) + [
        "--lb", "127.0.0.1:%d" % lb.port,
        "--kill", "gw%d@%d" % (VICTIM + 1, victim.pid),
        "--conns", p.reconnect_conns, "--rooms", p.reconnect_rooms,
        "--publishers", p.reconnect_publishers, "--rate", p.reconnect_rate,
        "--warmup", p.reconnect_warmup, "--deadline", p.reconnect_deadline,
        "--tail", p.reconnect_tail, "--drain", 10,
        "--setup-timeout", p.storm_timeout, "--progress", p.progress,
        # Twice the members' connections pass through ephemeral ports
        # towards the one load-balancer port: two source addresses.
        "--source-ips", 2]
    lb_before = lb.cpu_s()
    before = cluster.runqueue_waits()
    result = chatbench.run(cb, "reconnect", args)
    result["lb_cpu_s"] = round(lb.cpu_s() - lb_before, 2)
    result["runqueue_wait_s"] = _waited(cluster, before)
    result["lb_events"] = lb.events()
    result["redis"] = cluster.redis is not None
    result["survivors"] = result["gateways"]
    result["gateways"] = len(cluster.gateways)
    result["balance"] = p.lb_balance
    result["lb_processes"] = len(lb.procs)
    result["survivor_metrics"] = cluster.metrics()
    return result
