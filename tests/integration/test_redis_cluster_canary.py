"""The subscription canary under Redis Cluster: besides the seed's classic
subscriber, every primary's sharded subscriber gets a canary of its own, a
shard channel whose slot that primary serves. A primary whose sharded
subscriber stays connected but stops delivering (a TCP proxy drops what the
primary writes to it) is noticed: the miss is counted and named in the log,
that primary's connections alone are restarted (the other primaries' rooms
are not resubscribed), and members of a room on that primary get what was
published in the gap once, by the replay. A canary channel's slot that
moves is no miss: the primary gets another channel."""

import asyncio
import time

import pytest

from aio import eventually
from redis_cluster_proc import move_slot, room_key, shard_channels
from redis_proxy import RedisProxy
from test_redis_cluster_gateways import cluster_url
from wsclient import Client

INTERVAL_MS = 300
INTERVAL = INTERVAL_MS / 1000
# Noticed within two intervals, then the primary's connections again (the
# slot map read every 500 ms) and the replay: generous for a loaded machine.
RECOVERED_WITHIN = 20


def room_channel(room):
    return room_key("room", room)


def canary_channels(node):
    """{shard channel: subscribers} of the canary channels node holds."""
    return shard_channels(node, "chat:canary:*")


def spublish_calls(node):
    for line in node.command("INFO", "commandstats").splitlines():
        if line.startswith("cmdstat_spublish:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def start_gateway(gateways, redis_cluster, name="gw1"):
    gw = gateways.start(name, extra=["--redis", cluster_url(redis_cluster),
                                     "--redis-canary-interval", f"{INTERVAL_MS}ms",
                                     "--rate-limit", "0"])
    gw.wait_ready()
    return gw


def counters(gw):
    m = gw.metrics()
    return {k: m[k] for k in ("gateway_redis_canary_misses_total",
                              "gateway_redis_reconnects_total")}


NOTHING = {"gateway_redis_canary_misses_total": 0, "gateway_redis_reconnects_total": 0}


async def canaries_on_their_owners(redis_cluster, name):
    """Each primary holds exactly one canary channel of gateway name, with
    one subscriber, on a slot it serves; returns {port: channel}."""
    def probe():
        return {n.port: canary_channels(n) for n in redis_cluster.primaries()}
    per_node = await eventually(
        lambda: asyncio.to_thread(probe),
        lambda v: all(len([c for c in chans if c.endswith("}" + name)]) == 1
                      for chans in v.values()),
        10, f"one canary channel of {name} on every primary")
    found = {}
    for node in redis_cluster.primaries():
        (chan, subscribers), = [(c, k) for c, k in per_node[node.port].items()
                                if c.endswith("}" + name)]
        assert subscribers == 1, per_node
        assert chan.startswith("chat:canary:{c"), chan
        assert redis_cluster.owner_of(chan) is node, (chan, node.port)
        found[node.port] = chan
    return found


@pytest.mark.timeout(60)
async def test_every_primary_has_a_canary_and_none_is_missed(gateways, redis_cluster):
    gw = start_gateway(gateways, redis_cluster)
    channels = await canaries_on_their_owners(redis_cluster, "gw1")
    assert len(set(channels.values())) == len(redis_cluster.primaries())
    # The seed's classic subscriber (a primary or a replica) keeps its own
    # canary.
    classic = [n.command("PUBSUB", "CHANNELS", "chat:canary:*") for n in redis_cluster.nodes]
    assert sorted(c for chans in classic for c in chans) == ["chat:canary:gw1"], classic
    # A room on every primary, so that room traffic and canaries share the
    # sharded subscribers.
    a = await Client.connect(gw.port, "alice")
    rooms = {}
    for i in range(40):
        owner = redis_cluster.owner_of(room_channel(f"r{i}"))
        rooms.setdefault(owner.port, f"r{i}")
    assert len(rooms) == len(redis_cluster.primaries()), rooms
    for room in rooms.values():
        await a.join(room)
    # Every primary takes canaries (SPUBLISH) while nothing else is said.
    before = {n.port: spublish_calls(n) for n in redis_cluster.primaries()}
    await asyncio.sleep(6 * INTERVAL)
    after = {n.port: spublish_calls(n) for n in redis_cluster.primaries()}
    assert all(after[p] - before[p] >= 3 for p in after), (before, after)
    # Several intervals of canaries with chat on every primary meanwhile.
    for i in range(8):
        for room in rooms.values():
            await a.chat(f"m{i}", room=room)
            assert (await a.recv_chat(f"m{i}"))["room"] == room
        await asyncio.sleep(INTERVAL)
    assert counters(gw) == NOTHING
    # The canaries never reached a room.
    await a.expect_silence("chat", 2 * INTERVAL)
    assert await canaries_on_their_owners(redis_cluster, "gw1") == channels


@pytest.fixture
def proxied_primary(redis_cluster):
    """A primary that every client reaches through a TCP proxy (it announces
    the proxy's port); the test's own commands go to it directly."""
    node = redis_cluster.primaries()[0]
    proxy = RedisProxy(node.port).start()
    redis_cluster.announce(node, proxy.port)
    yield node, proxy
    redis_cluster.announce(node, None)
    proxy.close()


@pytest.mark.timeout(90)
async def test_stalled_sharded_subscriber_is_noticed_and_replayed(gateways, redis_cluster,
                                                                  proxied_primary):
    node, proxy = proxied_primary
    gw = start_gateway(gateways, redis_cluster)
    # A room on the proxied primary, one on another.
    room = next(f"s{i}" for i in range(100)
                if redis_cluster.owner_of(room_channel(f"s{i}")) is node)
    other = next(f"s{i}" for i in range(100)
                 if redis_cluster.owner_of(room_channel(f"s{i}")) is not node)
    a = await Client.connect(gw.port, "alice")
    b = await Client.connect(gw.port, "bob")
    for c in (a, b):
        await c.join(room)
        await c.join(other)
    await a.chat("before", room=room)
    for c in (a, b):
        await c.recv_chat("before")
    await asyncio.sleep(4 * INTERVAL)
    assert counters(gw) == NOTHING

    # Only the sharded subscriber goes through the proxy as a subscriber:
    # the seeds are reached directly, the command connection subscribes
    # nothing.
    assert await asyncio.to_thread(proxy.stall_subscribers) == 1
    stalled_at = time.monotonic()
    await a.chat("in the gap", room=room)
    await a.chat("elsewhere", room=other)
    got = {c.username: [] for c in (a, b)}
    for c in (a, b):
        # The other primary's room is not held up by the stall.
        while not got[c.username] or got[c.username][-1]["content"] != "in the gap":
            got[c.username].append(await c.recv_until("chat", RECOVERED_WITHIN))
    print(f"the gap's message was replayed {time.monotonic() - stalled_at:.1f} s after the "
          f"stall (canary interval {INTERVAL_MS} ms)")
    await eventually(lambda: asyncio.to_thread(gw.readyz_status), lambda s: s == 200,
                     RECOVERED_WITHIN, "the gateway ready again")
    await a.chat("after", room=room)
    for c in (a, b):
        while got[c.username][-1]["content"] != "after":
            got[c.username].append(await c.recv_until("chat", RECOVERED_WITHIN))
        # Exactly once each: the replay and the new subscription do not
        # both deliver.
        await c.expect_silence("chat", 2 * INTERVAL)
        contents = sorted(f["content"] for f in got[c.username])
        assert contents == ["after", "elsewhere", "in the gap"], (c.username, contents)

    m = gw.metrics()
    assert m["gateway_redis_canary_misses_total"] == 1, m
    assert m["gateway_redis_reconnects_total"] == 0, m
    assert m["gateway_redis_replays_total"] == 1, m
    assert m["gateway_redis_history_lost_total"] == 0, m
    log = gw.log_text()
    assert (f"node 127.0.0.1:{proxy.port}'s sharded-subscriber connection stopped delivering"
            in log), log[-3000:]
    assert f"room {room} resubscribed, 1 missed messages replayed" in log, log[-3000:]
    assert f"room {other} resubscribed" not in log, log[-3000:]
    # A healthy link again: no more misses.
    await asyncio.sleep(4 * INTERVAL)
    assert counters(gw) == {"gateway_redis_canary_misses_total": 1,
                            "gateway_redis_reconnects_total": 0}


@pytest.mark.timeout(60)
async def test_canary_slot_moved_is_no_miss(gateways, redis_cluster):
    gw = start_gateway(gateways, redis_cluster)
    channels = await canaries_on_their_owners(redis_cluster, "gw1")
    src = redis_cluster.primaries()[0]
    dst = redis_cluster.primaries()[1]
    moved = channels[src.port]
    slot = src.command("CLUSTER", "KEYSLOT", moved)
    await asyncio.to_thread(move_slot, redis_cluster, slot, src, dst)
    try:
        # Redis ended the subscription; the primary got another channel.
        held = await eventually(
            lambda: asyncio.to_thread(lambda: {n.port: canary_channels(n)
                                               for n in redis_cluster.primaries()}),
            lambda v: moved not in v[dst.port] and len(v[src.port]) == 1 and
            moved not in v[src.port], 15, "another canary channel on the source")
        assert held[dst.port] == {channels[dst.port]: 1}, held
        now = await canaries_on_their_owners(redis_cluster, "gw1")
        assert now[src.port] != moved and now[dst.port] == channels[dst.port]
        await asyncio.sleep(4 * INTERVAL)
        assert counters(gw) == NOTHING
        assert gw.metrics()["gateway_redis_up"] == 1
    finally:
        await asyncio.to_thread(move_slot, redis_cluster, slot, dst, src)
