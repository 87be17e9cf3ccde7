"""Human-readable tables of the scenario results."""


def _fmt(v, spec=""):
    if v is None:
        return "-"
    if isinstance(v, (int, float)) and not isinstance(v, bool) and spec:
        return format(v, spec)
    if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) >= 10000:
        return "{:,.0f}".format(v)
    return str(v)


def _ms(us):
    return None if us is None else us / 1000.0


def _render(title, header, rows):
    cells = [header] + [[_fmt(*c) if isinstance(c, tuple) else _fmt(c)
                         for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = [title]
    for r in cells:
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    return "\n".join(lines)


LATE_TIMER_US = 50000


def warnings(r):
    """Lines that say why the figures of result r may not be trusted."""
    out = []
    if r.get("generator_limited"):
        out.append("the generator was saturated: figures are a lower bound "
                   "(add --workers)")
    if r.get("publishers_behind"):
        out.append("publishers sent less than asked: the machine was short "
                   "of CPU")
    if r.get("max_send_lag_us", 0) > LATE_TIMER_US:
        out.append("the publishing timer ran up to %.0f ms late: the "
                   "generator was not scheduled" % (r["max_send_lag_us"] / 1e3))
    if r.get("lost_connections"):
        out.append("the gateways closed %d connections during the run "
                   "(first: %s)" % (r["lost_connections"],
                                    r.get("first_error") or "?"))
    if r.get("settled") is False:
        out.append("the gateways never went quiet after setup: the figures "
                   "include setup traffic")
    if r.get("scenario") == "storm" and r.get("joined", 0) < r.get("conns", 0):
        out.append("only %d of %d connections joined%s" % (
            r["joined"], r["conns"], " (timed out: --storm-timeout)"
            if r.get("timed_out") else ""))
    if r.get("scenario") == "reconnect":
        out += _reconnect_warnings(r)
    metrics = r.get("gateway_metrics") or r.get("survivor_metrics") or {}
    if metrics.get("keepalive_timeouts"):
        out.append("the gateways closed %d connections for missed pongs "
                   "(keepalive timeouts)" % metrics["keepalive_timeouts"])
    waited = r.get("runqueue_wait_s") or {}
    if waited and max(waited.values()) > STARVED_S:
        out.append("processes under test waited for a CPU during the run "
                   "(%s): the machine was short of CPU, the times are not "
                   "theirs alone" % ", ".join(
                       "%s %.1f s" % kv for kv in sorted(waited.items())))
    load = r.get("loadavg_before")
    if load is not None and load > r.get("cores", 1) / 2:
        out.append("load average %.1f before the run on %d cores: other "
                   "processes competed for CPU" % (load, r.get("cores", 1)))
    return "".join("\n  WARNING: " + w for w in out)


# Seconds a gateway or Redis may wait for a CPU over a run before its
# times say more about the machine than about the process.
STARVED_S = 2.0


def _reconnect_warnings(r):
    out = []
    if r["deadline_hit"]:
        out.append("%d members were not back in their room %g s after the "
                   "kill" % (r["not_back"], r["deadline_s"]))
    if r["missing"] or r["duplicates"]:
        out.append("members missed %d messages and got %d twice" % (
            r["missing"], r["duplicates"]))
    if r["survivor_drops"]:
        out.append("the surviving gateways dropped %d members (first: %s)"
                   % (r["survivor_drops"], r.get("first_error") or "?"))
    if r["publisher_drops"]:
        out.append("%d publishers were dropped: what they sent unseen is "
                   "not counted" % r["publisher_drops"])
    victim = r["killed"] + " "
    flaps = {e: n for e, n in r.get("lb_events", {}).items()
             if not e.startswith(victim)}
    if flaps:
        out.append("HAProxy changed the state of surviving gateways: %s" %
                   ", ".join("%s: %d" % kv for kv in sorted(flaps.items())))
    if r["unacked"]:
        out.append("%d chats never came back to their publisher" %
                   r["unacked"])
    return out


def fanout(r):
    lat = r["latency_us"]
    read = r.get("read_latency_us") or {}
    return _render(
        "fanout (latency in ms, CPU in CPU-seconds per 100,000 deliveries)",
        ["gw", "conns", "rooms", "pubs", "msg/s", "deliveries/s", "loss%",
         "dup", "ooo", "p50", "p99", "p99.9", "max", "read p99", "cpu gw",
         "cpu redis", "cpu gen", "gen busy"],
        [[r["gateways"], r["conns"], r["rooms"], r["publishers"],
          r["sent_per_s"], r["deliveries_per_s"], (r["loss_pct"], ".3f"),
          r["duplicates"], r["out_of_order"], (_ms(lat["p50"]), ".2f"),
          (_ms(lat["p99"]), ".2f"), (_ms(lat["p999"]), ".2f"),
          (_ms(lat["max"]), ".2f"), (_ms(read.get("p99")), ".2f"),
          (r["gateway_cpu_per_100k"], ".3f"),
          (r["redis_cpu_per_100k"], ".3f"),
          (r["generator_cpu_per_100k"], ".3f"), r["generator_busy"]]]) + \
        _redis_line(r) + warnings(r)


def _per_node(values):
    """Figures of each redis-server, joined by '/'."""
    return None if not values else "/".join(_fmt(v, ".2f") for v in values)


def _redis_line(r):
    """Each redis-server's share of a core over the measured seconds, and
    of the periods its quota throttled it in."""
    if not r.get("redis_cpu_share_by_node"):
        return ""
    line = "\n  redis: cores %s" % _per_node(r["redis_cpu_share_by_node"])
    if r.get("redis_throttled_by_node"):
        line += ", throttled in %s of the periods (quota %g%% of a core)" % (
            _per_node(r["redis_throttled_by_node"]), r["redis_cpu_quota_pct"])
    return line


def max_rate(r):
    rows = [[s["rate"], s["deliveries_per_s"], (s["loss_pct"], ".3f"),
             (_ms(s["p99_us"]), ".2f"), (s["gateway_cpu_per_100k"], ".3f"),
             s["generator_busy"], _per_node(s.get("redis_cpu_share_by_node")),
             _per_node(s.get("redis_throttled_by_node")),
             s["failed"] or "ok"] for s in r["steps"]]
    quota = r.get("redis_cpu_quota_pct")
    table = _render("max (p99 limit %s ms%s)" % (
        r["max_p99_ms"], ", every redis-server held to %g%% of a core" % quota
        if quota else ""),
                    ["msg/s", "deliveries/s", "loss%", "p99 ms",
                     "cpu gw", "gen busy", "redis cores", "throttled",
                     "verdict"], rows)
    return table + "\n  last good: %s deliveries/s (%s msg/s)" % (
        _fmt(r["last_good_deliveries_per_s"]), _fmt(r["last_good_rate"])) + \
        warnings(r)


def idle(r):
    c = r["close_codes"]
    return _render(
        "idle (RSS per connection summed over gateways; keepalive in %% of "
        "one core per 10,000 connections, ping every %s)"
        % r["ping_interval_s"],
        ["gw", "conns", "connected", "handshakes/s", "settle s",
         "RSS B/conn", "keepalive %", "pings", "shutdown s", "1001",
         "1006", "other"],
        [[r["gateways"], r["conns"], r["connected"], r["handshakes_per_s"],
          r["settle_s"], r["rss_per_conn_bytes"],
          (r["keepalive_cpu_pct_per_10k"], ".2f"), r["pings"],
          r["shutdown_max_s"], c["1001"], c["1006"],
          c["1000"] + c["1008"] + c["1009"] + c["other"]]]) + warnings(r)


def fanout_median(results):
    """The median of repeated fanout runs, one line."""
    from .scenarios import median
    return ("median of %d runs: cpu gw %.3f, p50 %.2f ms, p99 %.2f ms, "
            "read p99 %.2f ms (cpu gw from %.3f to %.3f)" % (
                len(results),
                median(r["gateway_cpu_per_100k"] for r in results),
                median(r["latency_us"]["p50"] for r in results) / 1e3,
                median(r["latency_us"]["p99"] for r in results) / 1e3,
                median(r["read_latency_us"]["p99"] for r in results) / 1e3,
                min(r["gateway_cpu_per_100k"] for r in results),
                max(r["gateway_cpu_per_100k"] for r in results)))


def floor(r):
    base = next((s["cpu_per_100k"] for s in r["servers"]
                 if s["server"] == "chatfloor --writer uring"), None)
    rows = [[s["server"], s["runs"], (s["cpu_per_100k"], ".3f"),
             "%.3f-%.3f" % (s["cpu_per_100k_min"], s["cpu_per_100k_max"]),
             ("%.2f" % (s["cpu_per_100k"] / base)) if base else None,
             (_ms(s["p50_us"]), ".2f"), (_ms(s["p99_us"]), ".2f"),
             (_ms(s["read_p99_us"]), ".2f"), s["lost"]]
            for s in r["servers"]]
    return _render(
        "floor: one process, %d members, %g msg/s of %d bytes; CPU-seconds "
        "per 100,000 deliveries (median of %d runs each, interleaved), "
        "latency in ms (medians)" % (r["conns"], r["rate"], r["size"],
                                     r["repeat"]),
        ["server", "runs", "cpu", "cpu range", "x floor", "p50", "p99",
         "read p99", "lost"], rows) + warnings(r)


def _mean_max(r, kind):
    return "%s/%s" % (_fmt(r["frames_mean"][kind]), _fmt(r["frames_max"][kind]))


def storm(r):
    m = r.get("gateway_metrics") or {}
    c = r["close_codes"]
    closed = ", ".join("%s: %d" % (k, v) for k, v in c.items() if v) or "0"
    return _render(
        "storm (announcements %s; CPU in CPU-seconds, total and per 1,000 "
        "connections; frames per client during the storm, mean/max)"
        % r["announce_connections"],
        ["gw", "conns", "rooms", "joined", "wall s", "handshakes/s",
         "joins/s", "cpu gw", "gw/1k", "cpu redis", "redis/1k", "system",
         "client_count", "joined fr", "other", "closed", "keepalive to"],
        [[r["gateways"], r["conns"], r["rooms"], r["joined"], r["wall_s"],
          r["handshakes_per_s"], r["joins_per_s"],
          (r["gateway_cpu_s"], ".2f"), (r["gateway_cpu_per_1k"], ".3f"),
          (r["redis_cpu_s"], ".2f"), (r["redis_cpu_per_1k"], ".3f"),
          _mean_max(r, "system"), _mean_max(r, "client_count"),
          _mean_max(r, "joined"), _mean_max(r, "other"), closed,
          m.get("keepalive_timeouts")]]) + warnings(r)


def storm_ratio(results):
    """Storm with announcements on and off, one line."""
    on = next(r for r in results if r["announce_connections"] == "on")
    off = next(r for r in results if r["announce_connections"] == "off")
    ratio = on["wall_s"] / off["wall_s"] if off["wall_s"] else None
    return ("storm: announcements on took %s s, off %s s: %s times (target "
            "at most 1.5)" % (_fmt(on["wall_s"]), _fmt(off["wall_s"]),
                              _fmt(ratio, ".2f")))


def reconnect(r):
    refused = ", ".join("%s: %d" % (k, v) for k, v in r["refused"].items()
                        if v) or "0"
    return _render(
        "reconnect (%d gateways behind HAProxy %s, %s killed; seconds from "
        "the kill; CPU-seconds of the survivors and Redis from the kill to "
        "the last rejoin; HAProxy's over the whole run)" % (
            r["gateways"], r["balance"], r["killed"]),
        ["conns", "rooms", "msg/s", "on killed", "reconnected s",
         "rejoined s", "join p99 s", "not back", "missing", "dup", "truncated",
         "survivors dropped", "refused", "max attempt", "cpu gw",
         "cpu redis", "cpu lb run"],
        [[r["conns"], r["rooms"], r["rate"], r["on_killed"],
          r["reconnected_s"], r["rejoined_s"],
          (r["rejoin_wait_us"]["p99"] / 1e6, ".2f"), r["not_back"], r["missing"],
          r["duplicates"], r["truncated"], r["survivor_drops"], refused,
          r["max_attempt"], (r["survivor_cpu_s"], ".2f"),
          (r["redis_cpu_s"], ".2f"), (r["lb_cpu_s"], ".2f")]]) + warnings(r)
