"""Room and global chat, echo, ping, connect/disconnect announcements (single node)."""

import asyncio
import time

from msgid import assert_increasing, id_key
from wsclient import Client, announces, connect_many


async def test_room_chat_reaches_every_member_and_only_them(gateway):
    a, b, c, outsider = await connect_many(gateway.port, ["alice", "bob", "carol", "zed"])
    for x in (a, b, c):
        await x.join("r")
    await a.chat("hello room", room="r")
    frames = [await x.recv_chat("hello room") for x in (a, b, c)]
    f = frames[0]
    assert (f["room"], f["sender"], f["content"]) == ("r", "alice", "hello room")
    id_key(f["id"])
    assert abs(f["timestamp"] - time.time() * 1000) < 60_000
    assert all(x == f for x in frames), frames   # the same frame for everyone
    # The outsider's next chat frame is a later global one, not the room's.
    await a.chat("global marker")
    assert (await outsider.recv_chat())["content"] == "global marker"


async def test_chat_to_room_not_joined(gateway):
    a, b = await connect_many(gateway.port, ["alice", "bob"])
    await b.join("r")
    await a.chat("sneaky", room="r")
    err = await a.expect_error("not_in_room")
    assert err["type"] == "error"
    await a.assert_alive()
    await b.expect_silence("chat", 0.3)


async def test_global_chat_reaches_everyone(gateway):
    a, b, c = await connect_many(gateway.port, ["alice", "bob", "carol"])
    await b.join("somewhere")
    await a.chat("hi all")
    for x in (a, b, c):
        f = await x.recv_chat("hi all")
        assert "room" not in f, f
        assert f["sender"] == "alice"
        id_key(f["id"])


async def test_ids_increase_per_room(gateway):
    a, b = await connect_many(gateway.port, ["alice", "bob"])
    await a.join("r1")
    await b.join("r1")
    await b.join("r2")
    for i in range(20):
        await a.chat(f"a{i}", room="r1")
        await b.chat(f"b{i}", room="r2" if i % 2 else "r1")
    r1 = [await a.recv_until("chat", where=lambda f: f["room"] == "r1") for _ in range(30)]
    assert_increasing([f["id"] for f in r1])
    assert len({f["id"] for f in r1}) == 30
    assert [f["content"] for f in r1 if f["sender"] == "alice"] == [f"a{i}" for i in range(20)]


async def test_echo_and_ping(gateway):
    a, b = await connect_many(gateway.port, ["alice", "bob"])
    echo = await a.request({"type": "echo", "content": "ping-pong 日本"}, "echo")
    assert echo["content"] == "ping-pong 日本"
    await a.request({"type": "ping"}, "pong")
    await b.expect_silence("echo", 0.3)


async def test_connected_and_disconnected_announcements(gateway):
    watcher = await Client.connect(gateway.port, "watcher")
    bob = await Client.connect(gateway.port, "bob")
    f = await watcher.recv_until("system", where=announces("bob", "connected"))
    assert "room" not in f and f["sender"] == "System"
    await bob.close()
    f = await watcher.recv_until("system", where=announces("bob", "disconnected"))
    assert "room" not in f


async def test_many_clients_chat_concurrently(gateway):
    clients = await connect_many(gateway.port, [f"u{i}" for i in range(10)])
    await asyncio.gather(*(c.join("busy") for c in clients))
    await asyncio.gather(*(c.chat(f"from {c.username}", room="busy") for c in clients))
    expected = {f"from u{i}" for i in range(10)}
    for c in clients:
        got = [await c.recv_until("chat") for _ in range(10)]
        assert {f["content"] for f in got} == expected
        assert_increasing([f["id"] for f in got])
