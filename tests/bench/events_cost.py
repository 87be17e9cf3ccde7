#!/usr/bin/env python3
"""What the event stream (--events-stream on) costs Redis per chat message:
one gateway and a private redis-server, N messages of 100 bytes published
through the server API to a room with one member, once without and once
with the stream (interleaved, --repeat times). Reports the chat script's
Redis time per call (INFO commandstats), Redis CPU per message (used_cpu_*),
and the stream's memory per event (MEMORY USAGE / XLEN).

    PY=$(tests/python-env.sh); $PY tests/bench/events_cost.py --messages 20000
"""

import argparse
import http.client
import json
import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

import redis  # noqa: E402

from apiclient import KEY, api_flags  # noqa: E402
from gateway_proc import Gateway  # noqa: E402
from redis_proc import RedisServer  # noqa: E402


def run(workdir, events, messages):
    srv = RedisServer(workdir / "redis").start()
    flags, port = api_flags(workdir)
    gw = Gateway(workdir / "gw", "gw1", srv.port,
                 [*flags, "--events-stream", "on" if events else "off", "--history", "100"])
    try:
        gw.start(wait_ready=True)
        r = redis.Redis(port=srv.port, decode_responses=True)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        hdrs = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
        body = json.dumps({"room": "r", "sender": "bench", "content": "x" * 100})
        r.config_resetstat()
        cpu0 = r.info("cpu")
        for _ in range(messages):
            conn.request("POST", "/api/publish", body, hdrs)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        cpu1 = r.info("cpu")
        stats = r.info("commandstats")
        evalsha = stats["cmdstat_evalsha"]
        cpu = sum(cpu1[k] - cpu0[k] for k in ("used_cpu_sys", "used_cpu_user"))
        result = {"usec_per_call": evalsha["usec_per_call"],
                  "cpu_us_per_msg": cpu / messages * 1e6}
        if events:
            n = r.xlen("chat:events")
            result["bytes_per_event"] = r.memory_usage("chat:events", samples=0) / n
        return result
    finally:
        gw.stop()
        srv.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    series = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for events in (False, True):
                res = run(pathlib.Path(tmp) / f"{i}-{events}", events, args.messages)
                series[events].append(res)
                print(("with" if events else "without") + f" events, run {i + 1}: {res}",
                      flush=True)
    for events in (False, True):
        runs = series[events]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        print(("with" if events else "without") + " events, medians: " +
              ", ".join(f"{k} {v:.2f}" for k, v in med.items()))


if __name__ == "__main__":
    main()
