"""client_count: content is the count as a decimal string, count a number;
coalesced, but the last one after a storm of connects is right."""

import asyncio

from wsclient import Client, close_all, connect_many


async def settled_count(client, expected, timeout=5.0, quiet=0.5):
    """Read client_count frames until one says expected, then check that any
    that follow within `quiet` seconds (late coalesced ones) say the same."""
    await client.recv_until("client_count", timeout, where=lambda f: f["count"] == expected)
    await client.expect_silence("client_count", quiet, allowed=lambda f: f["count"] == expected)


def check_shape(frame):
    assert isinstance(frame["count"], int)
    assert frame["content"] == str(frame["count"])
    assert isinstance(frame.get("timestamp"), int), frame


async def test_client_count_shape(gateway):
    a = await Client.connect(gateway.port, "alice")
    check_shape(await a.recv_until("client_count", where=lambda f: f["count"] == 1))
    b = await Client.connect(gateway.port, "bob")
    for c in (a, b):
        check_shape(await c.recv_until("client_count", where=lambda f: f["count"] == 2))
    await b.close()
    check_shape(await a.recv_until("client_count", where=lambda f: f["count"] == 1))


async def test_client_count_after_storm(gateway):
    watcher = await Client.connect(gateway.port, "watcher")
    await settled_count(watcher, 1)
    storm = await connect_many(gateway.port, [f"s{i}" for i in range(40)])
    await settled_count(watcher, 41)
    await close_all(storm[:25])
    await settled_count(watcher, 16)
    await asyncio.gather(*(s.assert_alive() for s in storm[25:]))
