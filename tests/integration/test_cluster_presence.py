"""client_count and presence across gateways, and what happens to them when
a gateway dies without saying goodbye (SIGKILL)."""

import asyncio
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
    await twin.join("p")
    assert await a.presence("p") == ["alice", "bob", "carol"]
    await c.leave("p")
    await eventually(lambda: a.presence("p"), lambda u: u == ["alice", "carol"], 5,
                     "bob gone from presence after leave_room")
    await b.leave("p")   # the twin still holds the name in the room
    assert await c.presence("p") == ["alice", "carol"]
    assert await b.presence("nobody-here") == []


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
