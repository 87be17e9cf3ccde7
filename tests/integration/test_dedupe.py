"""Exactly-once publish (PROTOCOL.md v1.1): a chat with a cid is delivered
once however often it is resent within the dedupe window; a resend is
answered with the original message (same id) to its sender alone."""

import asyncio

import pytest

from redis_proc import RedisServer
from wsclient import Client


async def chat_cid(client, content, cid, room=None):
    frame = {"type": "chat", "content": content, "cid": cid}
    if room:
        frame["room"] = room
    await client.send_json(frame)


async def test_resend_is_answered_with_the_original(gateway):
    a = await Client.connect(gateway.port, "alice")
    b = await Client.connect(gateway.port, "bob")
    for c in (a, b):
        await c.join("r")
    await chat_cid(a, "once", "m-1", "r")
    first = await a.recv_chat("once")
    assert first["cid"] == "m-1"
    assert (await b.recv_chat("once"))["id"] == first["id"]
    await chat_cid(a, "once", "m-1", "r")
    again = await a.recv_chat("once")
    assert again == first, "the sender gets the original back"
    await b.expect_silence("chat", 0.5)
    # Another cid, or the same cid from another sender, is another message.
    await chat_cid(b, "once", "m-1", "r")
    assert (await a.recv_chat("once"))["id"] != first["id"]
    await chat_cid(a, "global", "m-2")
    g = await b.recv_chat("global")
    assert g["cid"] == "m-2" and "room" not in g
    assert gateway.metrics()["gateway_chat_resends_total"] == 1


async def test_bad_cid_and_errors_carry_the_cid(gateway):
    a = await Client.connect(gateway.port, "alice")
    await a.send_json({"type": "chat", "content": "x", "cid": "x" * 65})
    await a.expect_error("bad_cid")
    await chat_cid(a, "x", "c-7", "not-joined")
    err = await a.expect_error("not_in_room")
    assert err["cid"] == "c-7"
    await a.chat("no cid")
    f = await a.recv_chat("no cid")
    assert "cid" not in f


async def resend_after_a_cut(cluster_ports, room, content, cid):
    """alice sends and her connection is cut before the echo can arrive;
    she reconnects to another gateway and resends with the same cid."""
    a = await Client.connect(cluster_ports[0], "alice")
    joined = await a.join(room)
    since = joined["history"][-1]["id"] if joined["history"] else None
    await chat_cid(a, content, cid, room)
    await a.ws.close()
    a2 = await Client.connect(cluster_ports[1], "alice")
    rejoined = await a2.join(room, since=since)
    await chat_cid(a2, content, cid, room)
    answer = await a2.recv_chat(content)
    in_history = [m for m in rejoined["history"] if m.get("cid") == cid]
    assert len(in_history) <= 1
    if in_history:
        assert in_history[0]["id"] == answer["id"]
    return answer


@pytest.mark.timeout(30)
async def test_resend_through_another_gateway_is_delivered_once(cluster):
    bob = await Client.connect(cluster.ports[2], "bob")
    await bob.join("r")
    for i in range(5):
        answer = await resend_after_a_cut(cluster.ports, "r", f"hello {i}", f"cut-{i}")
        got = await bob.recv_chat(f"hello {i}")
        assert got["id"] == answer["id"]
        await bob.expect_silence("chat", 0.3)


@pytest.mark.timeout(40)
async def test_resend_across_a_redis_restart(tmp_path, gateways):
    # A Redis whose restart keeps its data, as production runs it.
    redis = RedisServer(tmp_path / "redis", ["--appendonly", "yes",
                                             "--appendfsync", "always"]).start()
    try:
        gws = [gateways.start(f"gw{i}", redis.port) for i in (1, 2)]
        for gw in gws:
            gw.wait_ready()
        bob = await Client.connect(gws[1].port, "bob")
        await bob.join("r")
        alice = await Client.connect(gws[0].port, "alice")
        await alice.join("r")
        await chat_cid(alice, "before the restart", "r-1", "r")
        first = await bob.recv_chat("before the restart")

        assert await asyncio.to_thread(redis.stop) == 0
        await asyncio.to_thread(redis.restart)
        for gw in gws:
            await asyncio.to_thread(gw.wait_ready, 15)
        await chat_cid(alice, "before the restart", "r-1", "r")
        again = await alice.recv_chat("before the restart")
        assert again["id"] == first["id"]
        await bob.expect_silence("chat", 0.5)
    finally:
        for gw in gateways.started:
            gw.stop(timeout=5)
        redis.stop(timeout=5)


async def test_a_refused_chat_is_named_by_its_cid(gateways):
    gw = gateways.start("gw1", extra=["--rate-limit", "1", "--rate-burst", "1"])
    a = await Client.connect(gw.port, "alice")
    await chat_cid(a, "first", "q-1")
    await chat_cid(a, "second", "q-2")
    err = await a.expect_error("rate_limited")
    assert err["cid"] == "q-2" and err["retry_after_ms"] >= 1
    await asyncio.sleep(err["retry_after_ms"] / 1000)
    await chat_cid(a, "second", "q-2")
    assert (await a.recv_chat("second"))["cid"] == "q-2"
