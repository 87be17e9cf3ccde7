#!/usr/bin/env python3
"""What the server API's rooms listing (GET /api/rooms) costs with N rooms,
on one Redis and on a Redis Cluster of 3 primaries: one gateway with the
API, and a live gateway of Redis's own making ("bench", its heartbeat far
ahead) whose room set and the rooms' names hashes are written straight into
Redis, N rooms of 2 names each. Reports the median time of a listing as the
backend sees it and each redis-server's CPU per listing (used_cpu_sys +
used_cpu_user over --repeat listings).

    PY=$(tests/python-env.sh); $PY tests/bench/rooms_listing.py --rooms 10000
"""

import argparse
import binascii
import http.client
import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

import redis  # noqa: E402

from apiclient import KEY, api_flags  # noqa: E402
from gateway_proc import Gateway  # noqa: E402
from redis_cluster_proc import RedisCluster  # noqa: E402
from redis_proc import RedisServer  # noqa: E402


def fill(node_for, cluster, rooms):
    """The rooms of a live gateway 'bench', 2 names each, each key written
    on the node_for(key) it belongs to."""
    def tag(room):
        return "{%04x}" % binascii.crc_hqx(room.encode(), 0) if cluster else ""
    g = "{global}" if cluster else ""
    pipes = {}

    def pipe_for(key):
        node = node_for(key)
        return pipes.setdefault(id(node), node.pipeline(transaction=False))
    zkey, skey = f"chat:gateways{g}", f"chat:gwrooms:{g}bench"
    pipe_for(zkey).zadd(zkey, {"bench": int(time.time() * 1000) + 3_600_000})
    for i in range(rooms):
        room = f"room-{i}"
        pipe_for(skey).sadd(skey, room)
        nkey = f"chat:pnames:{tag(room)}{room}"
        pipe_for(nkey).hset(nkey, mapping={"a": 1, "b": 1})
    for p in pipes.values():
        p.execute()


def cpu(node):
    info = node.info("cpu")
    return info["used_cpu_sys"] + info["used_cpu_user"]


def run(workdir, cluster, rooms, repeat):
    servers, rc = [], None
    if cluster:
        rc = RedisCluster(workdir / "cluster", primaries=3, replicas=0).start()
        servers = rc.primaries()
        url = f"redis+cluster://{rc.seeds}"
        redis_port, extra = None, ["--redis", url]
    else:
        servers = [RedisServer(workdir / "redis").start()]
        redis_port, extra = servers[0].port, []
    flags, port = api_flags(workdir)
    gw = Gateway(workdir / "gw", "gw1", redis_port, [*flags, *extra])
    try:
        gw.start(wait_ready=True)
        nodes = [redis.Redis(port=s.port, decode_responses=True) for s in servers]
        owner = {}   # slot -> the client of its primary
        if cluster:
            port_of = {s.port: n for s, n in zip(servers, nodes)}
            for first, last, primary, *_ in nodes[0].execute_command("CLUSTER", "SLOTS"):
                owner.update((slot, port_of[primary[1]]) for slot in range(first, last + 1))
        fill(lambda key: owner[redis.crc.key_slot(key.encode())] if cluster else nodes[0],
             cluster, rooms)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        hdrs = {"Authorization": f"Bearer {KEY}"}

        def listing():
            conn.request("GET", "/api/rooms", headers=hdrs)
            resp = conn.getresponse()
            body = json.loads(resp.read())
            assert resp.status == 200, body
            return body["rooms"]
        got = listing()
        assert len(got) == rooms and all(r["members"] == 2 for r in got), len(got)
        before = [cpu(n) for n in nodes]
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            listing()
            times.append(time.perf_counter() - t)
        per_node = [(cpu(n) - b) / repeat * 1000 for n, b in zip(nodes, before)]
        conn.close()
        return statistics.median(times) * 1000, per_node
    finally:
        gw.stop()
        if rc:
            rc.stop()
        else:
            servers[0].stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rooms", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    for cluster in (False, True):
        with tempfile.TemporaryDirectory(prefix="rooms-listing-") as d:
            ms, per_node = run(pathlib.Path(d), cluster, args.rooms, args.repeat)
        print(json.dumps({"redis": "cluster of 3" if cluster else "one", "rooms": args.rooms,
                          "listing_ms_median": round(ms, 1),
                          "redis_cpu_ms_per_listing_by_node": [round(x, 2) for x in per_node]}))


if __name__ == "__main__":
    main()
