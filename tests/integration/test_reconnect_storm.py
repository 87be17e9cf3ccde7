"""A reconnect storm at a small scale (the bench's `reconnect` scenario is
the large one): three gateways behind a real HAProxy with the native
cluster's deploy/haproxy.cfg, members connected through it, a publisher
talking into every room. One gateway is SIGKILLed; its members reconnect
through the load balancer with the browser client's backoff and jitter and
rejoin with `since`. Every member must end with every message of its room
exactly once, and no member of the surviving gateways may be dropped."""

import asyncio
import os
import random
import shutil

import pytest
import websockets.exceptions

from gateway_proc import REPO
from netutil import free_port, http_get, wait_until
from process import Process
from wsclient import Client, ws_url

MEMBERS = 240
ROOMS = 12
PUBLISH_PER_S = 12  # under the default rate limit of 20 frames/s
BACK_WITHIN_S = 30


def backoff_ms(attempt):
    """client/backoff.js: half of the capped exponential delay is fixed,
    half random."""
    d = min(15000, 500 * 2 ** min(attempt, 10))
    return d / 2 + random.random() * d / 2


class Member:
    """One chat client of the storm, reconnecting like the browser client."""

    def __init__(self, i, lb_port):
        self.name = f"m{i}"
        self.room = f"room{i % ROOMS}"
        self.lb_port = lb_port
        self.last_id = None
        self.ids = []        # every chat id received, in order
        self.seqs = []       # the publisher's sequence numbers received
        self.gateways = []   # the gateway of each connection
        self.joined = asyncio.Event()
        self.reconnected_at = None
        self.truncated = False
        self.stop = False

    async def run(self, loop_start):
        attempt = 0
        while not self.stop:
            try:
                client = await Client.connect_url(ws_url(self.lb_port, self.name))
            except (OSError, AssertionError, websockets.exceptions.WebSocketException):
                await asyncio.sleep(backoff_ms(attempt) / 1000)
                attempt += 1
                continue
            attempt = 0
            self.gateways.append(client.welcome["gateway"])
            try:
                await self.session(client, loop_start)
            except (AssertionError, websockets.exceptions.ConnectionClosed):
                pass
            finally:
                await client.close()
            if not self.stop:
                await asyncio.sleep(backoff_ms(0) / 1000)
                attempt = 1

    async def session(self, client, loop_start):
        frame = {"type": "join_room", "room": self.room}
        if self.last_id:
            frame["since"] = self.last_id
        await client.send_json(frame)
        while not self.stop:
            try:
                f = await client.recv_json(timeout=1.0)
            except AssertionError as exc:
                if "no frame within" in str(exc):
                    continue
                raise
            if f["type"] == "joined":
                self.truncated |= bool(f.get("truncated"))
                for m in f["history"]:
                    self.take(m)
                if self.joined.is_set() and self.reconnected_at is None:
                    self.reconnected_at = asyncio.get_running_loop().time() - loop_start
                self.joined.set()
            elif f["type"] == "chat" and f.get("room") == self.room:
                self.take(f)

    def take(self, m):
        self.ids.append(m["id"])
        self.last_id = m["id"]
        self.seqs.append(int(m["content"].split()[1]))


def start_haproxy(tmp_path, gws):
    port = free_port()
    env = dict(os.environ, LB_BIND=f"127.0.0.1:{port}",
               **{f"GW{i + 1}_ADDR": f"127.0.0.1:{gw.port}" for i, gw in enumerate(gws)})
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    proc = Process([binary, "-db", "-f", REPO / "deploy" / "haproxy.cfg"],
                   tmp_path / "haproxy.log", env).start()
    wait_until(lambda: proc.running() and http_get(port, "/healthz", timeout=1)[0] == 200,
               10, what="haproxy")
    return proc, port


@pytest.mark.timeout(90)
async def test_a_killed_gateway_s_members_come_back_with_nothing_missed_or_twice(
        make_cluster, tmp_path):
    cluster = make_cluster(3)
    lb, lb_port = await asyncio.to_thread(start_haproxy, tmp_path, cluster.gws)
    loop = asyncio.get_running_loop()
    start = loop.time()
    members = [Member(i, lb_port) for i in range(MEMBERS)]
    tasks = [asyncio.create_task(m.run(start)) for m in members]
    try:
        await asyncio.wait_for(asyncio.gather(*(m.joined.wait() for m in members)), 30)
        victim = cluster.gws[0]
        on_victim = [m for m in members if m.gateways[0] == victim.name]
        others = [m for m in members if m.gateways[0] != victim.name]
        assert len(on_victim) > MEMBERS // 5, "the load balancer spread the members"

        # The publisher talks to a survivor directly, into every room.
        pub = await Client.connect(cluster.ports[2], "publisher")
        for r in range(ROOMS):
            await pub.join(f"room{r}")
        published = {f"room{r}": [] for r in range(ROOMS)}

        async def publish(first, count):
            for seq in range(first, first + count):
                room = f"room{seq % ROOMS}"
                await pub.send_json({"type": "chat", "room": room, "content": f"seq {seq}",
                                     "cid": f"p-{seq}"})
                published[room].append(seq)
                await asyncio.sleep(1 / PUBLISH_PER_S)

        await publish(0, 2 * PUBLISH_PER_S)
        victim.kill()
        killed_at = loop.time() - start
        await publish(2 * PUBLISH_PER_S, 8 * PUBLISH_PER_S)

        async def everyone_back_and_current():
            while True:
                back = all(m.reconnected_at is not None for m in on_victim)
                current = all(m.seqs and m.seqs[-1] == published[m.room][-1] for m in members)
                if back and current:
                    return
                await asyncio.sleep(0.2)

        try:
            await asyncio.wait_for(everyone_back_and_current(), BACK_WITHIN_S)
        except asyncio.TimeoutError:
            late = [m.name for m in on_victim if m.reconnected_at is None]
            behind = [m.name for m in members if not m.seqs or
                      m.seqs[-1] != published[m.room][-1]]
            pytest.fail(f"not back within {BACK_WITHIN_S} s of the kill: {len(late)} not "
                        f"reconnected {late[:5]}, {len(behind)} behind {behind[:5]}")
        slowest = max(m.reconnected_at for m in on_victim) - killed_at
        print(f"{len(on_victim)} members reconnected within {slowest:.1f} s of the kill")

        for m in members:
            assert len(set(m.ids)) == len(m.ids), f"{m.name} got a message twice"
            assert m.seqs == published[m.room], f"{m.name} missed messages or got them out of order"
            assert not m.truncated, f"{m.name}: history did not reach back far enough"
        for m in others:
            assert len(m.gateways) == 1, f"{m.name} of a surviving gateway was dropped"
        assert all(len(m.gateways) == 2 and m.gateways[1] != victim.name for m in on_victim)
    finally:
        for m in members:
            m.stop = True
        await asyncio.wait(tasks, timeout=10)
        lb.stop(timeout=5)
