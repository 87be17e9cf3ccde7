"""Redis going away and coming back: chats are refused with `unavailable`
(never dropped silently), /readyz says 503, clients stay connected; after a
restart on the same port everything works again without touching gateways."""

import asyncio

import pytest

from aio import eventually
from wsclient import Client

BACK_WITHIN = 10


async def readyz(gw):
    return await asyncio.to_thread(gw.readyz_status)


async def all_ready(cluster, status):
    return all([await readyz(gw) == status for gw in cluster.gws])


@pytest.mark.timeout(30)
async def test_redis_outage_and_recovery(cluster):
    a = await Client.connect(cluster.ports[0], "alice")
    b = await Client.connect(cluster.ports[1], "bob")
    await a.join("r")
    await b.join("r")

    assert await asyncio.to_thread(cluster.redis.stop) == 0
    await a.chat("lost?", room="r")
    await a.expect_error("unavailable", timeout=2)
    await b.chat("global lost?")
    await b.expect_error("unavailable", timeout=2)
    await eventually(lambda: all_ready(cluster, 503), bool, 5, "/readyz 503 everywhere")
    assert all(gw.metrics()["gateway_redis_up"] == 0 for gw in cluster.gws)
    for c in (a, b):
        await c.assert_alive()
        await c.expect_silence("chat", 0.2)   # nothing half-delivered

    await asyncio.to_thread(cluster.redis.restart)
    await eventually(lambda: all_ready(cluster, 200), bool, BACK_WITHIN,
                     "/readyz 200 everywhere after the restart")
    assert all(gw.metrics()["gateway_redis_up"] == 1 for gw in cluster.gws)
    # The room subscriptions were restored: a message crosses gateways again.
    await a.chat("back again", room="r")
    await b.recv_chat("back again")
    await b.chat("global again")
    await a.recv_chat("global again")


async def test_redis_killed_gives_unavailable(cluster):
    a = await Client.connect(cluster.ports[2], "alice")
    await a.join("r")
    cluster.redis.kill()
    await a.chat("x", room="r")
    await a.expect_error("unavailable", timeout=2)
    await a.assert_alive()
