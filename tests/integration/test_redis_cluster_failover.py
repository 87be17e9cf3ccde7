"""Gateways on a real Redis Cluster whose topology changes under traffic:
a room's slot moved to another primary (keys and all, as `redis-cli
--cluster reshard` does), and the room's primary killed so that its replica
takes over. Chat resumes by itself; members miss nothing unannounced and
get nothing twice; a refused chat is refused to its sender (`unavailable`).
The failover test prints how long chat was unavailable."""

import asyncio
import os
import signal
import time

import pytest

from redis_cluster_proc import move_slot
from test_cluster_resilience import (ROOM, assert_exactly_once_in_order, chats_until,
                                     send_chat)
from test_redis_cluster_gateways import shard_channels, start_gateways
from wsclient import Client

RECOVER_WITHIN = 30


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


def has_replica(node):
    role = node.command("ROLE")
    return role[0] == "master" and len(role[2]) > 0


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
