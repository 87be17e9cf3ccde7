"""What the gateways do in Redis: every key and channel under --redis-prefix
(so two clusters can share one Redis), and one subscription per room per
gateway with local members, not one per client (PROTOCOL.md, "Redis")."""

import asyncio

from aio import eventually
from wsclient import Client, close_all, connect_many


def channels(redis):
    return set(redis.command("PUBSUB", "CHANNELS"))


def subscribers(redis, channel):
    return redis.command("PUBSUB", "NUMSUB", channel)[1]


async def test_default_prefix(cluster):
    a = await Client.connect(cluster.ports[0], "alice")
    await a.join("r")
    await a.chat("hi", room="r")
    await a.recv_chat("hi")
    names = set(cluster.redis.command("KEYS", "*")) | channels(cluster.redis)
    assert names, "nothing in Redis"
    assert all(n.startswith("chat:") for n in names), sorted(names)


async def test_prefix_separates_clusters(redis_server, gateways):
    alpha = gateways.start("alpha1", redis_server.port, ["--redis-prefix", "alpha:"], wait_ready=True)
    beta = gateways.start("beta1", redis_server.port, ["--redis-prefix", "beta:"], wait_ready=True)
    ann = await Client.connect(alpha.port, "ann")
    ben = await Client.connect(beta.port, "ben")
    await ann.join("r")
    await ben.join("r")
    await ann.chat("alpha room", room="r")
    await ann.chat("alpha global")
    await ann.recv_chat("alpha global")
    await ben.chat("beta global")
    assert (await ben.recv_chat())["content"] == "beta global"
    assert await ben.presence("r") == ["ben"]
    await ben.recv_until("client_count", where=lambda f: f["count"] == 1)
    names = set(redis_server.command("KEYS", "*")) | channels(redis_server)
    assert all(n.startswith(("alpha:", "beta:")) for n in names), sorted(names)


async def test_one_subscription_per_gateway_per_room(cluster):
    redis = cluster.redis
    before = channels(redis)
    local = await connect_many(cluster.ports[0], ["a1", "a2", "a3"])
    for c in local:
        await c.join("sub")
    new = channels(redis) - before
    assert len(new) == 1, f"expected one new channel for the room, got {sorted(new)}"
    (room_channel,) = new
    assert subscribers(redis, room_channel) == 1, "one subscription per gateway, not per client"

    remote = await Client.connect(cluster.ports[1], "b1")
    await remote.join("sub")
    assert subscribers(redis, room_channel) == 2

    await local[0].leave("sub")
    await close_all(local[1:])
    await eventually(lambda: asyncio.to_thread(subscribers, redis, room_channel),
                     lambda n: n == 1, 5, "gw1 unsubscribed after its last member went")
    await remote.leave("sub")
    await eventually(lambda: asyncio.to_thread(channels, redis),
                     lambda chans: room_channel not in chans, 5,
                     "no subscription left for an empty room")


async def test_redis_from_environment(redis_server, gateways):
    gw = gateways.start("envredis", env={"GATEWAY_REDIS": f"redis://127.0.0.1:{redis_server.port}",
                                         "GATEWAY_REDIS_PREFIX": "envp:"}, wait_ready=True)
    a = await Client.connect(gw.port, "alice")
    await a.join("r")
    assert any(n.startswith("envp:") for n in channels(redis_server)), channels(redis_server)
