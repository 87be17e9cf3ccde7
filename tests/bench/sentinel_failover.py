#!/usr/bin/python3
"""Failover time with Redis Sentinel: a primary, a replica, three sentinels
(quorum 2, down-after-milliseconds 1000, failover-timeout 5000) and
gateways with --redis redis+sentinel://..., all on this machine. In each
run one member sends a chat (with a cid) to a room every --interval
seconds, the primary is SIGKILLed, and every answer is recorded until chat
is delivered again:

  failover_s    from the kill to the first chat sent after it that came
                back to its sender (delivered)
  sentinels_s   from the kill to the moment the sentinels name the new
                primary (SENTINEL get-master-addr-by-name, polled every
                20 ms): what Sentinel itself takes
  gateway_s     failover_s - sentinels_s: what the gateway adds
  unavailable   chats answered `unavailable` in the gap
  silent        chats that got no answer at all (must be 0)

  tests/bench/sentinel_failover.py                 # 5 runs, 3 gateways
  tests/bench/sentinel_failover.py --repeat 10 --interval 0.02 --json-out f.json

The gateway is $GATEWAY_BIN (default <repo>/build/gateway). Each run starts
fresh processes in a temporary directory and stops them, by PID, at the end.
Uses the integration tests' process helpers (tests/integration/).
"""
import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

from failover import measure_failover  # noqa: E402
from gateway_proc import NO_RATE_LIMIT, Gateway  # noqa: E402
from sentinel_proc import SentinelSetup  # noqa: E402
from wsclient import Client, close_leftovers  # noqa: E402

ROOM = "bench"


class SentinelClock:
    """Polls a sentinel from the kill on; .switched: seconds until it named
    another primary."""

    def __init__(self, setup, old_port):
        self.setup = setup
        self.old = old_port
        self.switched = None
        self.stop = threading.Event()
        self.t0 = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self):
        self.t0 = time.monotonic()
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            for s in self.setup.sentinels:
                try:
                    port = s.primary()
                except (OSError, RuntimeError):
                    continue
                if port != self.old:
                    self.switched = time.monotonic() - self.t0
                    return
            time.sleep(0.02)


async def one_run(args, workdir):
    setup = SentinelSetup(os.path.join(workdir, "redis")).start()
    gws = []
    try:
        for i in range(args.gateways):
            gw = Gateway(os.path.join(workdir, f"gw{i}"), f"gw{i + 1}",
                         extra=["--redis", setup.url(), *NO_RATE_LIMIT])
            gws.append(gw.start(wait_ready=True))
        clients = [await Client.connect(gws[i % len(gws)].port, f"u{i}")
                   for i in range(max(2, len(gws)))]
        for c in clients:
            await c.join(ROOM)
        primary = setup.primary
        clock = SentinelClock(setup, primary.announced_port)

        def kill():
            clock.start()
            primary.kill()

        run = await measure_failover(clients[0], clients[1:], ROOM, kill,
                                     interval=args.interval)
        clock.stop.set()
        ready = all(gw.readyz_status() == 200 for gw in gws)
        failovers = [gw.metrics()["gateway_redis_failovers_total"] for gw in gws]
        await close_leftovers()
        return {
            "failover_s": round(run["failover_s"], 3),
            "sentinels_s": None if clock.switched is None else round(clock.switched, 3),
            "gateway_s": None if clock.switched is None
            else round(run["failover_s"] - clock.switched, 3),
            "unavailable": len(run["unavailable"]),
            "sent_after_kill": run["sent_after_kill"],
            "silent": len(run["silent"]),
            "members_missing": sum(len(set(run["delivered"]) - set(r)) for r in run["received"]),
            "all_ready": ready,
            "failovers_counted": failovers,
        }
    finally:
        for gw in gws:
            gw.stop(timeout=5)
        setup.stop_all()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs, each on fresh processes")
    p.add_argument("--gateways", type=int, default=3)
    p.add_argument("--interval", type=float, default=0.05,
                   help="seconds between two chats of the sender (the time resolution)")
    p.add_argument("--json-out", help="append the JSON lines to this file too")
    return p.parse_args(argv)


def main(argv):
    args = parse_args(argv)
    with open("/proc/loadavg") as f:
        print(f"# load average before: {f.read().split()[0]}; cores: {os.cpu_count()}",
              file=sys.stderr)
    rows = []
    cols = ("failover_s", "sentinels_s", "gateway_s", "unavailable", "silent",
            "members_missing")
    print("run  " + "  ".join(f"{c:>15}" for c in cols))
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="sentinel-failover-") as d:
            r = asyncio.run(one_run(args, d))
        r.update(run=i + 1, interval=args.interval, gateways=args.gateways)
        rows.append(r)
        print(f"{i + 1:<4} " + "  ".join(f"{str(r[c]):>15}" for c in cols), flush=True)
        line = json.dumps(r)
        print(line)
        if args.json_out:
            with open(args.json_out, "a") as f:
                f.write(line + "\n")
    summary = {c: statistics.median([r[c] for r in rows if r[c] is not None])
               for c in cols if any(r[c] is not None for r in rows)}
    summary.update(min_failover_s=min(r["failover_s"] for r in rows),
                   max_failover_s=max(r["failover_s"] for r in rows), runs=len(rows))
    print("median " + "  ".join(f"{c}={summary[c]}" for c in cols if c in summary)
          + f"  (failover_s from {summary['min_failover_s']} to {summary['max_failover_s']})")
    print(json.dumps({"median": summary}))
    bad = [r for r in rows if r["silent"] or r["members_missing"] or not r["all_ready"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
