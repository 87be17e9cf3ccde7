"""Every member of a room, on whichever gateway, sees the room's messages in
the same order, with increasing ids and none missing."""

import asyncio

import pytest

from gateway_proc import NO_RATE_LIMIT
from msgid import assert_increasing
from wsclient import connect_many

PER_PUBLISHER = 200


async def collect(client, count):
    return [await client.recv_until("chat", 10) for _ in range(count)]


@pytest.mark.timeout(60)
async def test_same_order_everywhere(make_cluster):
    cluster = make_cluster(extra=NO_RATE_LIMIT)
    publishers, members = [], []
    for i, port in enumerate(cluster.ports):
        publishers += await connect_many(port, [f"pub{i}"])
        members += await connect_many(port, [f"mem{i}a", f"mem{i}b"])
    everyone = publishers + members
    await asyncio.gather(*(c.join("order") for c in everyone))
    total = PER_PUBLISHER * len(publishers)
    readers = [asyncio.create_task(collect(c, total)) for c in everyone]

    async def publish(p):
        for n in range(PER_PUBLISHER):
            await p.chat(f"{p.username}:{n}", room="order")
    await asyncio.gather(*(publish(p) for p in publishers))
    results = await asyncio.gather(*readers)

    reference = [f["id"] for f in results[0]]
    assert_increasing(reference)
    assert len(set(reference)) == total
    contents = [f["content"] for f in results[0]]
    assert sorted(contents) == sorted(f"{p.username}:{n}" for p in publishers
                                      for n in range(PER_PUBLISHER))
    for p in publishers:   # each publisher's own messages keep their order
        mine = [int(c.split(":")[1]) for c in contents if c.startswith(p.username + ":")]
        assert mine == list(range(PER_PUBLISHER))
    for client, frames in zip(everyone, results):
        assert [f["id"] for f in frames] == reference, \
            f"{client.username} (on {client.welcome['gateway']}) saw another order"
