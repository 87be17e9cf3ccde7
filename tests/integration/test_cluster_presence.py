"""client_count and presence across gateways, and what happens to them when
a gateway dies without saying goodbye (SIGKILL)."""

import asyncio
import re
import time

import pytest

from aio import eventually
from wsclient import Client, connect_many

GONE_WITHIN = 30


async def count_reaches(client, expected, timeout):
    frame = await client.recv_until("client_count", timeout,
                                    where=lambda f: f["count"] == expected)
    assert frame["content"] == str(expected)


async def test_client_count_across_gateways(cluster):
    clients = []
    for port, names in zip(cluster.ports, (["a1", "a2"], ["b1"], ["c1", "c2", "c3"])):
        clients += await connect_many(port, names)
    for c in clients:
        await count_reaches(c, 6, 5)
    await clients[0].close()
    await clients[2].close()
    for c in clients[3:]:
        await count_reaches(c, 4, 5)


@pytest.mark.timeout(40)
async def test_changes_on_two_gateways_at_once_converge(cluster):
    """The cluster publishes at most one count a second, so of two changes a
    millisecond apart on two gateways the second is held back: it must go
    out when that second is over (not with a heartbeat, seconds later)."""
    watcher = await Client.connect(cluster.ports[2], "watcher")
    for rnd in range(4):   # a held-back change waited for a heartbeat (every 5 s): timing
        a = await Client.connect(cluster.ports[0], f"a{rnd}")
        b = await Client.connect(cluster.ports[1], f"b{rnd}")
        await count_reaches(watcher, 3, 3)
        await asyncio.gather(a.close(), b.close())
        await count_reaches(watcher, 1, 3)   # 1 s coalescing + 1 s held back, and margin


async def test_presence_across_gateways(cluster):
    a, b, c = [await Client.connect(port, name) for port, name in
               zip(cluster.ports, ["carol", "alice", "bob"])]
    for x, members in ((a, 1), (b, 2), (c, 3)):
        assert (await x.join("p"))["members"] == members
    assert await a.presence("p") == ["alice", "bob", "carol"]
    twin = await Client.connect(cluster.ports[2], "alice")   # same name on another gateway
    assert (await twin.join("p"))["members"] == 3, "members counts distinct names"
    assert await a.presence("p") == ["alice", "bob", "carol"]
    await c.leave("p")
    await eventually(lambda: a.presence("p"), lambda u: u == ["alice", "carol"], 5,
                     "bob gone from presence after leave_room")
    await b.leave("p")   # the twin still holds the name in the room
    assert await c.presence("p") == ["alice", "carol"]
    assert await b.presence("nobody-here") == []
    late = await Client.connect(cluster.ports[1], "dave")
    assert (await late.join("p"))["members"] == 3   # alice, carol, dave
    # The per-name counts behind `members`: every join and leave kept them.
    counts = cluster.redis.command("HGETALL", "chat:pnames:p")
    assert dict(zip(counts[::2], counts[1::2])) == {"alice": "1", "carol": "1", "dave": "1"}


@pytest.mark.timeout(GONE_WITHIN + 8)
async def test_killed_gateway_clients_disappear(cluster):
    gw1, gw2, gw3 = cluster.gws
    survivors = [await Client.connect(gw1.port, "s1"), await Client.connect(gw3.port, "s3")]
    doomed = await connect_many(gw2.port, ["d1", "d2", "d3"])
    for c in survivors + doomed:
        await c.join("k")
    for c in survivors:
        await count_reaches(c, 5, 5)
    assert await survivors[0].presence("k") == ["d1", "d2", "d3", "s1", "s3"]

    gw2.kill()
    deadline = time.monotonic() + GONE_WITHIN
    for c in survivors:
        await count_reaches(c, 2, deadline - time.monotonic())
    await eventually(lambda: survivors[1].presence("k"), lambda u: u == ["s1", "s3"],
                     deadline - time.monotonic(), "the killed gateway's users gone from presence")
    # The room still works for the survivors.
    await survivors[0].chat("still here", room="k")
    await survivors[1].recv_chat("still here")



def used_memory(redis):
    """used_memory less the connections' buffers, which come and go with
    the traffic: what Redis holds."""
    info = redis.command("INFO", "memory")
    def field(name):
        return int(re.search(rf"^{name}:(\d+)", info, re.M).group(1))
    return field("used_memory") - field("mem_clients_normal")


ROOMS = 1000
PER_CONNECTION = 100   # the default --max-rooms, and within the default --rate-burst
# Of what gw2's rooms took in Redis (about 370 KB at the peak), Redis may
# keep some after the cleanup: tables and buffers it grew for the traffic
# and shrinks later or never (50 to 120 KB seen), while a leak of the
# presence hashes alone would keep more than half.
MEMORY_KEPT_MAX = 1 / 3


async def join_rooms(gw):
    """Clients of gw join ROOMS rooms, room-0 to room-999; returns them."""
    clients = await connect_many(gw.port, [f"d{i}" for i in range(ROOMS // PER_CONNECTION)])
    for n, c in enumerate(clients):
        rooms = [f"room-{n * PER_CONNECTION + i}" for i in range(PER_CONNECTION)]
        for room in rooms:
            await c.send_json({"type": "join_room", "room": room})
        for room in rooms:
            await c.recv_until("joined", where=lambda f, room=room: f["room"] == room)
    return clients


def lasting_keys(redis):
    """The keys of the cluster's state: without the announcements' merge
    hashes, which expire by themselves within a minute of their scope's
    last event."""
    return len([k for k in redis.command("KEYS", "*") if not k.startswith("chat:announce")])


@pytest.mark.timeout(90)
async def test_dead_gateway_is_cleaned_up_by_survivors(redis_server, gateways):
    """A gateway in 1,000 rooms is SIGKILLed: the survivor removes its
    presence entries, its room set and its count once its heartbeat lapsed
    (15 s, then the survivor's next heartbeat, every 5 s), without anyone
    asking for those rooms; Redis's keys and memory return to where they
    were. No chat is sent: room history streams are not per gateway and
    stay by design (they expire after 7 days)."""
    redis = redis_server
    gw1 = gateways.start("gw1", redis.port, wait_ready=True)
    survivor = await Client.connect(gw1.port, "survivor")
    await survivor.join("room-0")
    # A first life of gw2, ended with SIGTERM (it withdraws everything
    # itself), so that the baseline has the tables Redis grew for 1,000
    # rooms and their channels and keeps (its pub/sub table never shrinks).
    first = gateways.start("gw2", redis.port, wait_ready=True)
    await join_rooms(first)
    assert first.stop(timeout=5) == 0
    keys_before = lasting_keys(redis)
    # gw1's, and room-0's presence (its entries and its names)
    assert keys_before == 6, redis.command("KEYS", "*")
    await asyncio.sleep(1)   # Redis's cron shrinks the keyspace's table
    memory_before = used_memory(redis)

    gw2 = gateways.start("gw2", redis.port, wait_ready=True)
    await join_rooms(gw2)
    assert await survivor.presence("room-0") == ["d0", "survivor"]
    # Two presence hashes for each room but room-0, and gw2's room set.
    assert lasting_keys(redis) == keys_before + 2 * (ROOMS - 1) + 1
    memory_peak = used_memory(redis)

    gw2.kill()
    await eventually(lambda: asyncio.to_thread(lasting_keys, redis),
                     lambda n: n == keys_before, 40, "the key count back to where it was")
    # Nobody asked for presence since the kill: the survivor cleaned up.
    assert redis.command("HKEYS", "chat:presence:room-0") == ["gw1\tsurvivor"]
    assert redis.command("HGETALL", "chat:pnames:room-0") == ["survivor", "1"]
    assert redis.command("ZRANGE", "chat:gateways", 0, -1) == ["gw1"]
    assert redis.command("HKEYS", "chat:clients") == ["gw1"]
    assert gw1.metrics()["gateway_dead_gateways_reaped_total"] == 1
    allowed = memory_before + (memory_peak - memory_before) * MEMORY_KEPT_MAX
    memory_after = await eventually(lambda: asyncio.to_thread(used_memory, redis),
                                    lambda m: m <= allowed, 5, "Redis memory back to about where "
                                    f"it was ({memory_before}, {memory_peak} with gw2)")
    print(f"used_memory before {memory_before}, with gw2 {memory_peak}, after {memory_after}")
    assert await survivor.presence("room-0") == ["survivor"]


@pytest.mark.timeout(90)
async def test_stalled_gateway_registers_again_after_the_cleanup(redis_server, gateways):
    """A gateway frozen past its heartbeat's lapse is cleaned up by the
    others; when it runs again, its next heartbeat finds the lapse and it
    registers its presence again, without reconnecting."""
    gw1 = gateways.start("gw1", redis_server.port, wait_ready=True)
    gw2 = gateways.start("gw2", redis_server.port, wait_ready=True)
    watcher = await Client.connect(gw1.port, "watcher")
    sleeper = await Client.connect(gw2.port, "sleeper")
    await sleeper.join("s")
    assert await watcher.presence("s") == ["sleeper"]
    with gw2.paused():
        await eventually(lambda: asyncio.to_thread(redis_server.command, "EXISTS",
                                                   "chat:presence:s"),
                         lambda n: n == 0, 40, "gw2's presence cleaned up by gw1")
    await eventually(lambda: watcher.presence("s"), lambda users: users == ["sleeper"], 10,
                     "gw2's presence registered again")
    assert gw1.metrics()["gateway_dead_gateways_reaped_total"] == 1
    assert gw2.metrics()["gateway_redis_reconnects_total"] == 0


async def test_a_room_leaves_the_gateway_s_room_set_with_its_last_member(cluster):
    """The set of rooms a gateway registered presence in (what the survivors
    clean up after it dies) holds only rooms with local members now."""
    a = await Client.connect(cluster.ports[0], "alice")
    b = await Client.connect(cluster.ports[0], "bob")
    for c in (a, b):
        await c.join("s")

    def in_set():
        return cluster.redis.command("SISMEMBER", "chat:gwrooms:gw1", "s")

    assert in_set() == 1
    await a.leave("s")
    assert in_set() == 1, "bob is still there"
    await b.leave("s")
    await eventually(lambda: asyncio.to_thread(in_set), lambda n: n == 0, 5,
                     "the room out of gw1's set")
    await a.join("s")
    assert in_set() == 1
