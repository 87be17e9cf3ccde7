"""gateway_bus_received_total counts every message a gateway gets from the
bus exactly once, with the Redis bus (two gateways on one Redis) and with the
in-process bus (it once counted every Redis message twice)."""

import asyncio

import pytest

from wsclient import Client

METRIC = "gateway_bus_received_total"
ROOM_CHATS = 10
GLOBAL_CHATS = 3
# Longer than a client_count's coalescing plus its hold-back (1 s each) and
# an announcement's interval (1 s): a counter unchanged this long has no
# frame of the setup left on its way.
QUIET_S = 2.5


async def settled(gws, timeout=15.0):
    """The counters once none of them moved for QUIET_S."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last, since = None, loop.time()
    while True:
        now_values = [gw.metrics()[METRIC] for gw in gws]
        if now_values != last:
            last, since = now_values, loop.time()
        elif loop.time() - since >= QUIET_S:
            return now_values
        assert loop.time() < deadline, f"{METRIC} still moving after {timeout}s: {now_values}"
        await asyncio.sleep(0.1)


async def chat_and_count(gws, clients):
    """Sends ROOM_CHATS room chats and GLOBAL_CHATS global ones, spread over
    the clients, and checks that each gateway counted each of them once."""
    for c in clients:
        await c.join("r")
    before = await settled(gws)
    texts = []
    for i in range(ROOM_CHATS + GLOBAL_CHATS):
        sender = clients[i % len(clients)]
        texts.append(f"m{i}")
        await sender.chat(texts[-1], room="r" if i < ROOM_CHATS else None)
    for c in clients:   # the senders' messages interleave in any order
        seen = set()
        while seen != set(texts):
            seen.add((await c.recv_chat())["content"])
    after = [gw.metrics()[METRIC] for gw in gws]
    expected = [b + ROOM_CHATS + GLOBAL_CHATS for b in before]
    assert after == expected, f"{METRIC} before {before}, after {after}"
    # Nothing counted late either.
    assert await settled(gws) == expected


@pytest.mark.timeout(40)
async def test_bus_received_once_per_message_on_redis(make_cluster):
    cluster = make_cluster(count=2, extra=["--announce-connections", "off"])
    clients = [await Client.connect(port, name)
               for port, name in zip(cluster.ports, ["alice", "bob"])]
    await chat_and_count(cluster.gws, clients)


@pytest.mark.timeout(40)
async def test_bus_received_once_per_message_in_process(gateways):
    gw = gateways.start("gw1", extra=["--announce-connections", "off"])
    gw.wait_ready()
    clients = [await Client.connect(gw.port, name) for name in ["alice", "bob"]]
    await chat_and_count([gw], clients)
