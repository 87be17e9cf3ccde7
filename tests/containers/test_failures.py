"""Failures, in containers: a gateway killed, Redis restarted, a gateway cut
off from Redis's network, and the whole stack stopped."""

import asyncio
import time

from member import Member
from rooms import assert_gap_free, close_all, run_async, settle, spread_members
from stack import GATEWAY_PORTS, LB_PORT, PROJECT, http_status, run, wait_for
from wsclient import Client

GW1, GW2, GW3 = GATEWAY_PORTS.values()


def readyz(port):
    return http_status(f"http://127.0.0.1:{port}/readyz", timeout=1)


def test_killed_gateway_clients_reconnect_through_the_lb_gap_free(cluster):
    async def scenario():
        author = await Member(GW1, "author", "kill").connect()
        members = await spread_members("k", "kill", 9)
        victims = [m for m in members if m.gateways[0] == "gw2"]
        assert victims, [m.gateways for m in members]
        readers = [asyncio.create_task(m.follow(20)) for m in [author, *members]]
        for i in range(10):
            await author.say(f"before {i}")
        await asyncio.to_thread(cluster.compose, "kill", "gateway2", timeout=60)
        for i in range(10):
            await author.say(f"after {i}")
            await asyncio.sleep(0.05)
        await settle(readers, 30)
        assert all(len(m.gateways) == 2 and m.gateways[1] != "gw2" for m in victims), \
            [(m.name, m.gateways) for m in victims]
        assert_gap_free(members, author.ids)
        await close_all([author, *members])

    run_async(scenario(), 60)


def test_redis_restart_readyz_unavailable_then_replay(cluster):
    async def scenario():
        alice = await Client.connect(GW1, "alice")
        bob = await Member(GW2, "bob", "outage").connect()
        await alice.join("outage")
        reader = asyncio.create_task(bob.follow(10**6))
        for i in range(5):
            await alice.chat(f"before {i}", room="outage")
            await alice.recv_chat(f"before {i}")
        restart = asyncio.create_task(asyncio.to_thread(
            cluster.compose, "restart", "redis", timeout=60))
        # While Redis is away: /readyz 503 and chat answered `unavailable`.
        await asyncio.to_thread(wait_for, lambda: readyz(GW1) == 503, 10, "/readyz 503",
                                interval=0.02)
        await alice.chat("while away", room="outage")
        frame = await alice.recv_until("error", timeout=5, where=lambda f: True)
        assert frame["code"] == "unavailable", frame
        await restart
        await asyncio.to_thread(wait_for, lambda: all(readyz(p) == 200 for p in (GW1, GW2)),
                                20, "/readyz 200 again")
        sent = []
        for i in range(5):
            await alice.chat(f"after {i}", room="outage")
            sent.append((await alice.recv_chat(f"after {i}"))["id"])
        await asyncio.wait([reader], timeout=10)
        reader.cancel()
        assert bob.contents == [f"before {i}" for i in range(5)] + \
            [f"after {i}" for i in range(5)], bob.contents
        # The history survived the restart (append-only file on the volume).
        late = await Member(GW3, "late", "outage").connect()
        assert late.contents == bob.contents
        for c in (alice, bob, late):
            await c.close()

    run_async(scenario(), 60)


def test_gateway_cut_off_from_redis_is_unready_skipped_and_loses_nothing(cluster):
    (gw3,) = cluster.containers("gateway3")
    network = f"{PROJECT}_redis"

    async def scenario():
        author = await Member(GW1, "author", "cut").connect()
        cut_off = await Member(GW3, "island", "cut").connect()
        readers = [asyncio.create_task(m.follow(20)) for m in (author, cut_off)]
        for i in range(10):
            await author.say(f"before {i}")
        await asyncio.to_thread(run, ["docker", "network", "disconnect", network, gw3], 30)
        try:
            await asyncio.to_thread(wait_for, lambda: readyz(GW3) == 503, 30, "gw3 /readyz 503")
            # HAProxy's /readyz probes take it out: new clients go elsewhere
            # although it has the fewest connections.
            await asyncio.sleep(5)
            probes = [await Client.connect(LB_PORT, f"new{i}") for i in range(9)]
            assert "gw3" not in {p.welcome["gateway"] for p in probes}
            for p in probes:
                await p.close()
            for i in range(10):
                await author.say(f"during {i}")
        finally:
            await asyncio.to_thread(run, ["docker", "network", "connect", network, gw3], 30)
        await asyncio.to_thread(wait_for, lambda: readyz(GW3) == 200, 30, "gw3 /readyz 200")
        await settle(readers, 20)
        assert cut_off.gateways == ["gw3"] and cut_off.close_codes == []
        assert_gap_free([cut_off], author.ids)
        await close_all([author, cut_off])

    run_async(scenario(), 120)


def test_stop_closes_every_client_with_1001_within_the_grace_period(cluster):
    async def connect_all():
        clients = [await Client.connect(port, f"s{port}") for port in (LB_PORT, GW1, GW2, GW3)]
        clients += [await Client.connect(LB_PORT, f"lb{i}") for i in range(5)]
        return clients

    async def closes(clients):
        for c in clients:
            await c.ws.wait_closed()
        return [c.ws.close_code for c in clients]

    async def scenario():
        clients = await connect_all()
        waiting = asyncio.create_task(closes(clients))
        start = time.monotonic()
        await asyncio.to_thread(cluster.compose, "stop", timeout=60)
        took = time.monotonic() - start
        codes = await asyncio.wait_for(waiting, 10)
        return codes, took

    ids = cluster.containers()
    codes, took = run_async(scenario(), 60)
    assert codes == [1001] * len(codes), codes
    states = {c["Name"]: (c["State"]["Status"], c["State"]["ExitCode"])
              for c in cluster.inspect(*ids)}
    # Debian bookworm's HAProxy (2.6.12) sometimes segfaults while it soft-stops
    # (SIGUSR1) with server-template slots whose DNS names are going away
    # (upstream's resolver crashes around 2.6, haproxy#1875 and #2378): after
    # every client got its 1001, so nothing is lost, but it exits 139.
    # Allowed for HAProxy alone, and only with that crash in its log.
    crashed = [n for n, s in states.items() if "haproxy" in n and s == ("exited", 139)]
    if crashed:
        assert "exited with code 139 (Segmentation fault)" in cluster.logs()
    assert all(s == ("exited", 0) for n, s in states.items() if n not in crashed), states
    assert took < 15, f"stop took {took:.1f}s"
