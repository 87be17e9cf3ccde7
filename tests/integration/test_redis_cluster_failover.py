"""Gateways on a real Redis Cluster whose topology changes under traffic:
a room's slot moved to another primary (keys and all, as `redis-cli
--cluster reshard` does), and the room's primary killed so that its replica
takes over. Chat resumes by itself; members miss nothing unannounced and
get nothing twice; a refused chat is refused to its sender (`unavailable`).
The failover tests print how long chat was unavailable.

The first two lose one primary (killed, or hung) under traffic in rooms on
every primary: only its rooms wait for its replica, the others go on
untouched (no `unavailable`, no resubscribe, no reconnect). They leave the
cluster with a replica behind every primary again, for the tests after."""

import asyncio
import os
import signal
import time

import pytest

from netutil import wait_until
from redis_cluster_proc import move_slot
from test_cluster_resilience import (ROOM, assert_exactly_once_in_order, chats_until,
                                     send_chat)
from test_redis_cluster_gateways import seed_node, shard_channels, start_gateways
from wsclient import Client

RECOVER_WITHIN = 30
GLOBAL_KEY = "chat:gateways{global}"
ROOMS_TRIED = [f"spread{i}" for i in range(24)]


def room_channel(redis_cluster):
    """The room's shard channel and the primary that holds it."""
    for node in redis_cluster.primaries():
        for ch in shard_channels(node):
            if ch.endswith("}" + ROOM):
                return ch, node
    raise AssertionError(f"no primary holds a channel of {ROOM}")


async def room_of_three(gateways, redis_cluster):
    gws = start_gateways(gateways, redis_cluster, extra=["--rate-limit", "0"])
    sender = await Client.connect(gws[0].port, "sender")
    receivers = [await Client.connect(gw.port, f"r{i}") for i, gw in enumerate(gws)]
    for c in [sender, *receivers]:
        await c.join(ROOM)
    return sender, receivers


async def through_an_outage(sender, receivers, fail, count):
    """count chats, fail(), count more (the first retried until the gateway
    takes it): every receiver gets all of them once, in order. Returns how
    long chat was refused after fail()."""
    expected, own = [], []
    for i in range(count):
        await send_chat(sender, f"before{i}", own, timeout=RECOVER_WITHIN)
        expected.append(f"before{i}")
    seen = {r.username: await chats_until(r, expected[-1], [], timeout=RECOVER_WITHIN)
            for r in receivers}
    failed_at = time.monotonic()
    fail()
    await send_chat(sender, "after0", own, timeout=60)
    unavailable_s = time.monotonic() - failed_at
    expected.append("after0")
    for i in range(1, count):
        await send_chat(sender, f"after{i}", own)
        expected.append(f"after{i}")
    for r in receivers:
        got = await chats_until(r, expected[-1], seen[r.username], timeout=RECOVER_WITHIN)
        assert_exactly_once_in_order(r.username, got, expected)
    return unavailable_s


def has_replica(node):
    role = node.command("ROLE")
    return role[0] == "master" and len(role[2]) > 0


class RoomTraffic:
    """A sender in one room, chatting one message after another (each
    retried after `unavailable` until the gateway takes it), and members of
    the room on every gateway."""

    def __init__(self, room, sender, members):
        self.room, self.sender, self.members = room, sender, members
        self.sent = []          # contents the gateway took, in order
        self.refused = []       # monotonic times of `unavailable` answers
        self.started_at = []    # monotonic time each was first sent
        self.taken_at = []      # monotonic time each was taken
        self.stop = False

    async def run(self):
        i = 0
        while not self.stop:
            content = f"{self.room}-{i}"
            started = time.monotonic()
            frame, refusals = await self.send_one(content)
            self.sent.append(content)
            self.started_at.append(started)
            self.taken_at.append(time.monotonic())
            self.refused += refusals
            i += 1
            await asyncio.sleep(0.03)

    async def send_one(self, content):
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        refusals = []
        await self.sender.chat(content, room=self.room)
        while True:
            frame = await self.sender.recv_json(max(deadline - loop.time(), 0.1))
            if frame["type"] == "chat" and frame["content"] == content:
                return frame, refusals
            if frame["type"] == "error":
                assert frame["code"] == "unavailable", f"{content}: {frame}"
                refusals.append(time.monotonic())
                assert loop.time() < deadline, f"{content}: still unavailable after 60 s"
                await asyncio.sleep(0.1)
                await self.sender.chat(content, room=self.room)

    async def check_members(self):
        """Every member got every message the sender's gateway took, once,
        in order, with increasing ids; returns the first member's frames."""
        got = None
        for m in self.members:
            frames = await chats_until(m, self.sent[-1], [], timeout=RECOVER_WITHIN)
            assert_exactly_once_in_order(f"{m.username} in {self.room}", frames, self.sent)
            got = got or frames
        return got


async def rooms_on_every_primary(gateways, redis_cluster):
    """Three gateways, and a room on each primary: {primary port: RoomTraffic}."""
    gws = start_gateways(gateways, redis_cluster, extra=["--rate-limit", "0"])
    probe = await Client.connect(gws[0].port, "probe")
    for room in ROOMS_TRIED:
        await probe.join(room)
    where = {}
    for node in redis_cluster.primaries():
        for ch in shard_channels(node):
            room = ch.split("}", 1)[1]
            if room in ROOMS_TRIED:
                where.setdefault(node.port, room)
    await probe.close()
    assert len(where) == 3, f"24 rooms on fewer than 3 primaries: {where}"
    traffic = {}
    for port, room in where.items():
        sender = await Client.connect(gws[0].port, f"s-{room}")
        await sender.join(room)
        members = [await Client.connect(gw.port, f"m{i}-{room}") for i, gw in enumerate(gws)]
        for m in members:
            await m.join(room)
        traffic[port] = RoomTraffic(room, sender, members)
    return gws, traffic


async def one_primary_lost(gateways, redis_cluster, fail, recover, what):
    """fail() one primary (not a gateway's seed, not the node of the shared
    keys) under traffic in a room on every primary; then recover() it."""
    gws, traffic = await rooms_on_every_primary(gateways, redis_cluster)
    for gw in gws:
        m = gw.metrics()
        assert (m["gateway_redis_cluster_nodes_up"], m["gateway_redis_cluster_slots_unserved"]) \
            == (3, 0)
    seeds = {seed_node(redis_cluster, gw) for gw in gws}
    home = redis_cluster.owner_of(GLOBAL_KEY)

    def candidates():
        return [n for n in redis_cluster.primaries()
                if has_replica(n) and n is not home and n not in seeds]
    # A fresh cluster's replicas may still be syncing.
    await asyncio.to_thread(wait_until, candidates, 20, interval=0.2,
                            what="a primary with a replica, neither seed nor the shared keys' node")
    target = candidates()[0]
    victim = traffic[target.port]
    others = [t for port, t in traffic.items() if port != target.port]
    # One who leaves the failed primary's room while it is gone: the leave
    # cannot reach it, so the gateway registers its presence there anew.
    leaver = await Client.connect(gws[2].port, "leaver")
    await leaver.join(victim.room)
    # By default every node refuses everything (CLUSTERDOWN) between the
    # primary's failure and its replica's promotion: the other shards go on
    # only when the cluster does not require full coverage (README).
    coverage(redis_cluster, "no")
    tasks = [asyncio.create_task(t.run()) for t in traffic.values()]
    try:
        await asyncio.sleep(1.5)
        failed_at = time.monotonic()
        before = len(victim.sent)
        fail(target)
        await leaver.leave(victim.room)
        # The replica takes over: the victim's room is back once a chat
        # after the failure was taken; then a little more for everyone.
        while len(victim.sent) < before + 3:
            await asyncio.sleep(0.05)
            assert time.monotonic() - failed_at < 60, "the killed primary's room never came back"
        # The first chat sent after the failure (one already on its way
        # may have been taken by the primary just before it went).
        back_s = next(taken for started, taken in zip(victim.started_at, victim.taken_at)
                      if started >= failed_at) - failed_at
        await asyncio.sleep(1)
    finally:
        for t in traffic.values():
            t.stop = True
        await asyncio.gather(*tasks, return_exceptions=True)
        recover(target)
        coverage(redis_cluster, "yes")
    for t in tasks:
        t.result()  # a send that failed fails the test
    for t in others:
        assert not t.refused, f"{t.room} (another primary's) was refused {len(t.refused)} times"
    assert victim.refused, "the failed primary's room was never refused"
    frames = {t.room: await t.check_members() for t in traffic.values()}
    # The others' subscriptions were never renewed; the link never restarted.
    for gw in gws:
        log = gw.log_text()
        for t in others:
            assert f"room {t.room} resubscribed" not in log, gw.log_tail(80)
            assert f"room {t.room}'s slot moved" not in log, gw.log_tail(80)
        assert f"room {victim.room} resubscribed" in log, gw.log_tail(80)
        m = gw.metrics()
        assert m["gateway_redis_reconnects_total"] == 0, gw.log_tail(80)
        assert m["gateway_redis_cluster_nodes_up"] == 3
        assert m["gateway_redis_cluster_slots_unserved"] == 0
        assert gw.readyz_status() == 200
    # A late joiner's since recovers the victim room's history.
    late = await Client.connect(gws[1].port, "late")
    joined = await late.join(victim.room, since=frames[victim.room][before - 1]["id"])
    assert [f["content"] for f in joined["history"]] == victim.sent[before:], joined
    # Presence on the new primary: who is there, not the leaver.
    members = [victim.sender, *victim.members, late]
    assert await late.presence(victim.room) == sorted(c.username for c in members)
    print(f"FIGURE {what}: the failed primary's room took chat again {back_s:.1f} s after; "
          f"the other primaries' rooms were never refused "
          f"({sum(len(t.sent) for t in others)} chats, 0 unavailable)")


def coverage(redis_cluster, value):
    for n in redis_cluster.nodes:
        if n.running():
            n.command("CONFIG", "SET", "cluster-require-full-coverage", value)


def restart_as_replica(redis_cluster, node):
    """A killed primary starts again, and joins as its successor's replica."""
    node.restart()
    wait_until(lambda: node.command("ROLE")[0] == "slave" and
               "cluster_state:ok" in node.command("CLUSTER", "INFO"), 30, interval=0.2,
               what="the old primary back as a replica")


def resume_as_replica(redis_cluster, node):
    os.kill(node.process.pid, signal.SIGCONT)
    wait_until(lambda: node.command("ROLE")[0] == "slave", 30, interval=0.2,
               what="the hung primary back as a replica")


@pytest.mark.timeout(120)
async def test_one_primary_hung_only_its_rooms_wait(gateways, redis_cluster):
    await one_primary_lost(gateways, redis_cluster,
                           lambda n: os.kill(n.process.pid, signal.SIGSTOP),
                           lambda n: resume_as_replica(redis_cluster, n), "hung primary, alone")


@pytest.mark.timeout(120)
async def test_one_primary_killed_only_its_rooms_wait(gateways, redis_cluster):
    await one_primary_lost(gateways, redis_cluster, lambda n: n.kill(),
                           lambda n: restart_as_replica(redis_cluster, n),
                           "killed primary, alone")


@pytest.mark.timeout(60)
async def test_slot_moved_under_traffic(gateways, redis_cluster):
    sender, receivers = await room_of_three(gateways, redis_cluster)
    channel, owner = room_channel(redis_cluster)
    slot = owner.command("CLUSTER", "KEYSLOT", channel)
    dst = next(n for n in redis_cluster.primaries() if n is not owner)
    expected, own = [], []
    move = None
    for i in range(60):
        await send_chat(sender, f"m{i}", own, timeout=RECOVER_WITHIN)
        expected.append(f"m{i}")
        if i == 10:
            move = asyncio.create_task(asyncio.to_thread(move_slot, redis_cluster, slot, owner,
                                                         dst))
        await asyncio.sleep(0.02)
    await move
    for r in receivers:
        seen = await chats_until(r, expected[-1], [], timeout=RECOVER_WITHIN)
        assert_exactly_once_in_order(r.username, seen, expected)
    # The subscriptions followed the slot: on the new owner only.
    assert shard_channels(dst).get(channel) == 3
    assert channel not in shard_channels(owner)


@pytest.mark.timeout(90)
async def test_primary_killed_under_traffic(gateways, redis_cluster):
    sender, receivers = await room_of_three(gateways, redis_cluster)
    channel, owner = room_channel(redis_cluster)
    unavailable_s = await through_an_outage(sender, receivers, owner.kill, 10)
    new_owner = redis_cluster.owner_of(channel)
    assert new_owner is not owner and shard_channels(new_owner).get(channel) == 3
    print(f"FIGURE failover: chat unavailable for {unavailable_s:.1f} s after SIGKILL of the "
          f"room's primary (cluster-node-timeout 2 s)")


@pytest.mark.timeout(120)
async def test_primary_hung_under_traffic(gateways, redis_cluster):
    """The room's primary stops (SIGSTOP) without closing anything: its
    replica takes over, and the gateways, whose connections to it stay
    open and silent, leave it when it misses two heartbeats of its own (it
    is not the node of the gateways' shared keys, whose silence the count's
    heartbeat sees)."""
    sender, receivers = await room_of_three(gateways, redis_cluster)
    channel, owner = room_channel(redis_cluster)
    home = redis_cluster.owner_of("chat:gateways{global}")
    target = next(n for n in redis_cluster.primaries() if has_replica(n) and n is not home)
    if owner is not target:
        move_slot(redis_cluster, owner.command("CLUSTER", "KEYSLOT", channel), owner, target)
        owner = target
    try:
        unavailable_s = await through_an_outage(
            sender, receivers, lambda: os.kill(owner.process.pid, signal.SIGSTOP), 5)
    finally:
        os.kill(owner.process.pid, signal.SIGCONT)
    print(f"FIGURE hung primary: chat unavailable for {unavailable_s:.1f} s after SIGSTOP")
