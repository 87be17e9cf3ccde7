"""A client that stops reading is closed (1008) once its queue passes
--send-queue-limit, while a normal member keeps receiving everything.

The slow client is a raw socket with a tiny receive buffer that never reads
until the end, so only the gateway's own queue and the socket buffers
(a few MB on loopback) absorb the flood."""

import asyncio

import pytest

from aio import eventually
from gateway_proc import NO_RATE_LIMIT
from msgid import assert_increasing
from rawws import RawClient
from wsclient import Client

MESSAGES = 1500
CONTENT = "y" * 4000       # 1500 x 4 KB = 6 MB per member, above any socket buffering


async def read_chats(client, count, gap):
    """The next `count` chat frames, none later than `gap` seconds after the
    previous one: a stall behind the slow client fails here."""
    return [await client.recv_until("chat", gap) for _ in range(count)]


@pytest.mark.timeout(40)
async def test_slow_consumer_is_dropped_others_unaffected(gateways):
    gw = gateways.start("slow", extra=["--send-queue-limit", "256k", *NO_RATE_LIMIT])
    flooder = await Client.connect(gw.port, "flooder")
    normal = await Client.connect(gw.port, "normal")
    slow = await asyncio.to_thread(RawClient.connect, gw.port, username="slow", rcvbuf=4096)
    await asyncio.to_thread(slow.send_json, {"type": "join_room", "room": "flood"})
    await flooder.join("flood")
    await normal.join("flood")
    await eventually(lambda: flooder.presence("flood"), lambda users: "slow" in users, 5,
                     "the slow client in the room")

    normal_reader = asyncio.create_task(read_chats(normal, MESSAGES, 3))
    flooder_reader = asyncio.create_task(read_chats(flooder, MESSAGES, 3))
    for i in range(MESSAGES):
        await flooder.chat(f"{i} {CONTENT}", room="flood")
    got = await normal_reader
    await flooder_reader

    assert [int(f["content"].split()[0]) for f in got] == list(range(MESSAGES))
    assert_increasing([f["id"] for f in got])
    code = await asyncio.to_thread(slow.wait_closed, 15)
    assert code in (1008, None), f"slow consumer closed with {code}, expected 1008"
    assert gw.metrics()["gateway_slow_consumer_drops_total"] >= 1
    await normal.assert_alive()
    slow.close()
