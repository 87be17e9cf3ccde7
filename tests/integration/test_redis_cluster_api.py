"""The server API on a real Redis Cluster (3 primaries, 3 replicas of the
machine's redis-server, redis+cluster://) with three gateways, rooms spread
over the primaries. test_api.py's two-gateway tests run on such a cluster
too (its api_cluster fixture); here is what is the cluster's own: every
endpoint with rooms on every primary, the rooms listing that names the
rooms on the {global} node and counts each on its own node, and a node that
stops answering in the middle of a listing."""

import asyncio
import time

import pytest

from aio import eventually
from apiclient import start_with_api
from msgid import assert_increasing
from wsclient import Client, announces

ROOMS = [f"r{i}" for i in range(10)]


def start_api_gateways(gateways, redis_cluster, tmp_path, count=3, extra=()):
    """gw1..gwN on the emptied cluster, each with its API: [(gateway, Api), ...]."""
    for node in redis_cluster.primaries():
        node.command("FLUSHALL")
    url = f"redis+cluster://{redis_cluster.seeds}"
    return [start_with_api(gateways, tmp_path, f"gw{i + 1}", redis_url=url, extra=extra)
            for i in range(count)]


def room_nodes(redis_cluster):
    """{room: port of the primary holding its names hash} of every room
    with members."""
    return {key.split("}", 1)[1]: node.port for node in redis_cluster.primaries()
            for key in node.command("KEYS", "chat:pnames:*")}


def global_node(redis_cluster):
    """The primary of the {global} tag: gateways, counts, room sets."""
    return redis_cluster.owner_of("chat:gateways{global}")


def listing(api):
    return sorted((r["room"], r["members"]) for r in api.ok("GET", "/api/rooms")["rooms"])


async def test_rooms_and_presence_with_rooms_on_every_primary(gateways, redis_cluster, tmp_path):
    """The listing names the rooms of every gateway and counts each room's
    distinct names on its own node, whichever gateway is asked."""
    (gw1, api1), (gw2, api2), (gw3, api3) = start_api_gateways(gateways, redis_cluster, tmp_path)
    u0 = await Client.connect(gw1.port, "u0")
    u0_again = await Client.connect(gw2.port, "u0")   # the same name elsewhere counts once
    u1 = await Client.connect(gw2.port, "u1")
    u2 = await Client.connect(gw3.port, "u2")
    members = {room: set() for room in ROOMS}
    for i, room in enumerate(ROOMS):
        for c, joins in ((u0, True), (u0_again, i % 2 == 1), (u1, i % 2 == 0),
                         (u2, i % 3 == 0)):
            if joins:
                await c.join(room)
                members[room].add(c.username)
    nodes = room_nodes(redis_cluster)
    assert sorted(nodes) == ROOMS
    assert set(nodes.values()) == {n.port for n in redis_cluster.primaries()}, nodes
    expected = sorted((room, len(names)) for room, names in members.items())
    # A join adds the room to its gateway's set on the {global} node beside
    # the join itself on the room's node: both are sent before "joined",
    # the first is not waited for.
    await eventually(lambda: asyncio.to_thread(listing, api1), lambda got: got == expected, 5,
                     "every room listed")
    for api in (api2, api3):
        assert listing(api) == expected
    for room in ROOMS:
        assert api3.ok("POST", "/api/presence", {"room": room}) == {
            "room": room, "users": sorted(members[room])}
    # Leaving takes a room out of the listing once it has no member left; a
    # name still in the room on another gateway still counts.
    for c in (u0, u1, u2):
        await c.leave("r0")
    await u0.leave("r3")
    await u2.leave("r3")
    expected = [r for r in expected if r[0] not in ("r0", "r3")] + [("r3", 1)]
    await eventually(lambda: asyncio.to_thread(listing, api2), lambda got: got == sorted(expected),
                     5, "r0 gone and r3 with one member")
    assert api1.ok("POST", "/api/presence", {"room": "r0"})["users"] == []
    assert api1.ok("POST", "/api/presence", {"room": "r3"})["users"] == ["u0"]


async def test_publish_idempotency_broadcast_and_history(gateways, redis_cluster, tmp_path):
    """A publish takes the chat path on the room's node: in order with the
    clients' messages, deduplicated there, kept in its history."""
    (gw1, api1), (gw2, api2), (gw3, api3) = start_api_gateways(
        gateways, redis_cluster, tmp_path, extra=["--history", "5"])
    alice = await Client.connect(gw1.port, "alice")
    bob = await Client.connect(gw3.port, "bob")
    for room in ROOMS:
        await alice.join(room)
        await bob.join(room)
    assert len(set(room_nodes(redis_cluster).values())) == 3
    sent = {}
    for room in ROOMS:
        # Each sent once the one before is published (alice got it back),
        # through another gateway each time.
        await alice.chat(f"a {room}", room)
        first = await alice.recv_chat(f"a {room}")
        via_api = api2.ok("POST", "/api/publish",
                          {"room": room, "sender": "bot", "content": f"b {room}"})
        assert via_api["duplicate"] is False
        assert (await alice.recv_chat(f"b {room}"))["id"] == via_api["id"]
        await alice.chat(f"c {room}", room)
        last = await alice.recv_chat(f"c {room}")
        frames = [await bob.recv_chat() for _ in range(3)]
        assert [f["content"] for f in frames] == [f"a {room}", f"b {room}", f"c {room}"]
        assert frames[1]["sender"] == "bot" and frames[1]["room"] == room
        assert [f["id"] for f in frames] == [first["id"], via_api["id"], last["id"]]
        assert_increasing([f["id"] for f in frames])
        sent[room] = [f["id"] for f in frames]

    # History, from another gateway: all, the newest, a page after since.
    for room in ROOMS:
        hist = api3.ok("POST", "/api/history", {"room": room})
        assert [m["id"] for m in hist["messages"]] == sent[room] and hist["truncated"] is False
        newest = api1.ok("POST", "/api/history", {"room": room, "limit": 2})
        assert [m["id"] for m in newest["messages"]] == sent[room][-2:]
        page = api2.ok("POST", "/api/history", {"room": room, "since": sent[room][0],
                                                "limit": 1})
        assert [m["id"] for m in page["messages"]] == sent[room][1:2]
    # More than --history 5 kept: a since before them is truncated.
    for i in range(4):
        api1.ok("POST", "/api/publish", {"room": "r1", "sender": "bot", "content": f"more {i}"})
    hist = api2.ok("POST", "/api/history", {"room": "r1", "since": sent["r1"][0]})
    assert hist["truncated"] is True and len(hist["messages"]) == 5

    # An idempotency key, retried through other gateways: delivered once,
    # its key on the room's node.
    for room in ROOMS:
        body = {"room": room, "sender": "bot", "content": f"once {room}",
                "idempotency_key": "order-17"}
        first = api1.ok("POST", "/api/publish", body)
        for api in (api2, api3):
            assert api.ok("POST", "/api/publish", body) == {"id": first["id"], "duplicate": True}
    for room in ROOMS:
        assert (await bob.recv_chat(f"once {room}"))["id"] is not None
    await alice.chat("after", "r0")
    assert (await bob.recv_chat())["content"] == "after"   # each "once" came once
    nodes = room_nodes(redis_cluster)
    for node in redis_cluster.primaries():
        cids = node.command("KEYS", "chat:cid:*")
        assert sorted(k.split("}", 1)[1].split("\t", 1)[0] for k in cids) == sorted(
            room for room, port in nodes.items() if port == node.port), cids

    # A broadcast reaches every client of every gateway, once.
    carol = await Client.connect(gw2.port, "carol")
    sent_all = api3.ok("POST", "/api/broadcast", {"sender": "System", "content": "to all"})
    for c in (alice, bob, carol):
        frame = await c.recv_chat("to all")
        assert frame["id"] == sent_all["id"] and "room" not in frame


async def test_disconnect_unsubscribe_and_info_across_gateways(gateways, redis_cluster, tmp_path):
    (gw1, api1), (gw2, api2), (gw3, api3) = start_api_gateways(gateways, redis_cluster, tmp_path)
    m1 = await Client.connect(gw1.port, "mallory")
    m3 = await Client.connect(gw3.port, "mallory")
    watcher = await Client.connect(gw2.port, "watcher")
    for c in (m1, m3, watcher):
        for room in ROOMS:
            await c.join(room)

    async def info():
        return api2.ok("GET", "/api/info")
    got = await eventually(info, lambda i: i["connections"] == 3, 5, "3 connections in info")
    assert got["gateway"] == "gw2" and got["local_connections"] == 1
    assert got["redis"] == {"configured": True, "up": True} and got["gateways_alive"] == 3
    assert sorted((g["id"], g["alive"], g["connections"]) for g in got["gateways"]) == [
        ("gw1", True, 1), ("gw2", True, 1), ("gw3", True, 1)]

    # Out of one room on every gateway, the others kept.
    assert api1.ok("POST", "/api/unsubscribe", {"user": "mallory", "room": "r4"}) == {}
    for c in (m1, m3):
        await c.recv_until("left", where=lambda f: f["room"] == "r4")
    await watcher.recv_until("system", where=announces("mallory", "left", "r4"))
    assert api3.ok("POST", "/api/presence", {"room": "r4"})["users"] == ["watcher"]
    assert api3.ok("POST", "/api/presence", {"room": "r5"})["users"] == ["mallory", "watcher"]
    await m3.chat("still in r5", "r5")
    assert (await watcher.recv_chat("still in r5"))["sender"] == "mallory"

    # Every connection of the name closed, on every gateway.
    assert api2.ok("POST", "/api/disconnect",
                   {"user": "mallory", "code": 4003, "reason": "banned"}) == {}
    for c in (m1, m3):
        assert await c.expect_closed() == 4003 and c.ws.close_reason == "banned"
    await watcher.assert_alive()
    await eventually(info, lambda i: i["connections"] == 1, 5, "1 connection in info")
    await eventually(lambda: asyncio.to_thread(api1.ok, "POST", "/api/presence", {"room": "r5"}),
                     lambda p: p["users"] == ["watcher"], 5, "presence without mallory")


@pytest.mark.timeout(120)
async def test_a_node_that_stops_answering_mid_listing_is_503(gateways, redis_cluster, tmp_path):
    """The rooms of live gateways are named on the {global} node, then a
    node holding some of them stops answering (CLIENT PAUSE: its clients
    wait, the cluster does not fail over). The listing waits until the
    gateway gives the node up (two heartbeats), answers 503 unavailable
    once, and the gateway (under ASan in CI's sanitizer run: no leak) lists
    again once the node is back."""
    (gw1, api1), = start_api_gateways(gateways, redis_cluster, tmp_path, count=1)
    alice = await Client.connect(gw1.port, "alice")
    for room in ROOMS:
        await alice.join(room)
    nodes = room_nodes(redis_cluster)
    paused = next(n for n in redis_cluster.primaries()
                  if n is not global_node(redis_cluster) and n.port in nodes.values())
    expected = [(room, 1) for room in ROOMS]
    await eventually(lambda: asyncio.to_thread(listing, api1), lambda got: got == expected, 5,
                     "every room listed")
    pause_s = 25   # longer than the gateway takes to give a silent node up
    paused.command("CLIENT", "PAUSE", pause_s * 1000, "ALL")
    paused_at = time.monotonic()
    status, answer, _ = await asyncio.to_thread(api1.get, "/api/rooms", timeout=pause_s + 10)
    assert status == 503 and answer["error"] == "unavailable", (status, answer)
    assert time.monotonic() - paused_at < pause_s, "answered only after the node was back"
    assert "redis: lost (" in gw1.log_text()
    # While the link is down: 503 at once, nothing done.
    status, answer, _ = api1.get("/api/rooms")
    assert status == 503 and answer["error"] == "unavailable"
    await eventually(lambda: asyncio.to_thread(api1.get, "/api/rooms"),
                     lambda r: r[0] == 200, pause_s + 30, "the listing back")
    assert listing(api1) == expected
