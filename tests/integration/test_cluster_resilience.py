"""Redis misbehaving under a running cluster (one Redis, two gateways):
subscriber connections killed, Redis replaced by an empty one on the same
port, Redis missing when a gateway starts. The gateways recover by
themselves; members miss nothing and see nothing twice."""

import asyncio

import pytest

from aio import eventually
from msgid import assert_increasing, id_key
from wsclient import Client

ROOM = "resilient"
RECOVER_WITHIN = 10


async def send_chat(client, content, seen, timeout=RECOVER_WITHIN, room=ROOM):
    """Sends a room chat until the gateway takes it (`unavailable` means it was
    not published: retry) and returns its own copy. Chat frames read
    meanwhile are appended to seen."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    await client.chat(content, room=room)
    while True:
        frame = await client.recv_json(max(deadline - loop.time(), 0.1))
        if frame["type"] == "chat":
            seen.append(frame)
            if frame["content"] == content and frame["sender"] == client.username:
                return frame
        elif frame["type"] == "error":
            assert frame["code"] == "unavailable", f"{content}: {frame}"
            assert loop.time() < deadline, f"{content}: still unavailable after {timeout}s"
            await asyncio.sleep(0.2)
            await client.chat(content, room=room)


async def chats_until(client, last, seen, timeout=RECOVER_WITHIN):
    """Appends chat frames to seen until one with content last arrives."""
    while not seen or seen[-1]["content"] != last:
        seen.append(await client.recv_until("chat", timeout))
    return seen


def assert_exactly_once_in_order(who, frames, expected):
    contents = [f["content"] for f in frames]
    assert contents == expected, f"{who} received {contents}, expected {expected} once each"
    assert_increasing([f["id"] for f in frames])


async def metric_everywhere(cluster, name):
    return await asyncio.to_thread(lambda: [gw.metrics()[name] for gw in cluster.gws])


async def redis_up_everywhere(cluster):
    return all(v == 1 for v in await metric_everywhere(cluster, "gateway_redis_up"))


@pytest.mark.timeout(30)
async def test_killed_subscriber_connections_replay_what_was_missed(make_cluster):
    """gw1 is frozen while the subscriber connections are killed, so what gw2
    publishes meanwhile surely falls into gw1's gap: gw1 must replay it from
    the room's stream once it has resubscribed."""
    cluster = make_cluster(2)
    gw1, gw2 = cluster.gws
    alice = await Client.connect(gw1.port, "alice")
    carol = await Client.connect(gw1.port, "carol")
    bob = await Client.connect(gw2.port, "bob")
    for c in (alice, carol, bob):
        await c.join(ROOM)
    await send_chat(bob, "before", [])
    for c in (alice, carol):
        await c.recv_chat("before")
    reconnects = await metric_everywhere(cluster, "gateway_redis_reconnects_total")

    gap = [f"gap-{i}" for i in range(5)]
    bob_seen = []
    with gw1.paused():
        killed = cluster.redis.command("CLIENT", "KILL", "TYPE", "pubsub")
        assert killed >= 2, f"CLIENT KILL TYPE pubsub killed {killed} connections"
        for content in gap:   # gw2 recovers by itself first
            await send_chat(bob, content, bob_seen)

    await eventually(lambda: metric_everywhere(cluster, "gateway_redis_reconnects_total"),
                     lambda now: all(n > r for n, r in zip(now, reconnects)), RECOVER_WITHIN,
                     "both gateways reconnected")
    await eventually(lambda: redis_up_everywhere(cluster), bool, RECOVER_WITHIN,
                     "gateway_redis_up 1 again")
    await send_chat(bob, "after", bob_seen)
    expected = gap + ["after"]
    assert_exactly_once_in_order("bob", bob_seen, expected)
    for c in (alice, carol):
        assert_exactly_once_in_order(c.username, await chats_until(c, "after", []), expected)

    # And the other way round, from the gateway that missed messages.
    alice_seen = []
    mine = await send_chat(alice, "from gw1", alice_seen)
    assert [f["content"] for f in alice_seen] == ["from gw1"], alice_seen
    assert (await bob.recv_chat("from gw1"))["id"] == mine["id"]
    assert (await carol.recv_chat("from gw1"))["id"] == mine["id"]
    await bob.expect_silence("chat", 0.5)   # not twice
    assert id_key(mine["id"]) > id_key(bob_seen[-1]["id"])


@pytest.mark.timeout(40)
async def test_redis_restarted_empty(make_cluster):
    cluster = make_cluster(2)
    gw1, gw2 = cluster.gws
    alice = await Client.connect(gw1.port, "alice")
    bob = await Client.connect(gw2.port, "bob")
    for c in (alice, bob):
        await c.join(ROOM)
    old = await send_chat(alice, "old", [])
    await bob.recv_chat("old")

    assert await asyncio.to_thread(cluster.redis.stop) == 0
    await asyncio.to_thread(cluster.redis.restart)   # no persistence: empty

    await eventually(lambda: redis_up_everywhere(cluster), bool, RECOVER_WITHIN,
                     "gateway_redis_up 1 after the restart")
    for viewer in (alice, bob):
        await eventually(lambda v=viewer: v.presence(ROOM), lambda u: u == ["alice", "bob"],
                         RECOVER_WITHIN, f"presence from {viewer.username} re-registered")
    carol = await Client.connect(gw1.port, "carol")
    await carol.recv_until("client_count", RECOVER_WITHIN, where=lambda f: f["count"] == 3)

    first = await send_chat(bob, "new", [])
    assert (await alice.recv_chat("new"))["id"] == first["id"]
    assert id_key(first["id"]) > id_key(old["id"]), (old["id"], first["id"])
    second = await send_chat(alice, "newer", [])
    assert (await bob.recv_chat("newer"))["id"] == second["id"]
    assert_increasing([old["id"], first["id"], second["id"]])


@pytest.mark.timeout(30)
async def test_gateway_starts_without_redis(redis_server, gateways):
    port = redis_server.port
    assert await asyncio.to_thread(redis_server.stop) == 0
    gw = gateways.start("early", redis_port=port)
    assert await asyncio.to_thread(gw.readyz_status) == 503
    assert gw.metrics()["gateway_redis_up"] == 0
    c = await Client.connect(gw.port, "early")   # served already, chat refused
    await c.chat("too soon", room=None)
    await c.expect_error("unavailable")

    await asyncio.to_thread(redis_server.restart)
    await eventually(lambda: asyncio.to_thread(gw.readyz_status), lambda s: s == 200,
                     RECOVER_WITHIN, "/readyz 200 once Redis is up")
    await c.join(ROOM)
    await c.chat("now", room=ROOM)
    await c.recv_chat("now")
