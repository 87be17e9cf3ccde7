"""Fan-out writes go out in io_uring batches by default (--io-uring on) and
one send() each with --io-uring off; both deliver the same frames. A member
that stops reading makes the batched sends partial: the rest of each frame
must follow whole, before any later frame."""

import asyncio

import pytest

from gateway_proc import NO_RATE_LIMIT
from rawws import RawClient
from wsclient import Client

MESSAGES = 600
CONTENT = "z" * 10000  # 6 MB: past the socket buffers (a few MB), so sends come back partial
QUEUE_LIMIT = "16m"    # and nobody is dropped as slow


def io_uring_in_use(gw, mode):
    """The gateway_io_uring gauge, after skipping where io_uring cannot be
    used at all (the gateway says so at start and writes one send() each)."""
    if mode == "on" and "io_uring unavailable" in gw.log_tail(50):
        pytest.skip("io_uring is unavailable on this machine")
    return gw.metrics()["gateway_io_uring"]


def read_until(raw, kind):
    while True:
        frame = raw.recv_json(5)
        if frame["type"] == kind:
            return frame


@pytest.mark.timeout(40)
@pytest.mark.parametrize("mode", ["on", "off"])
async def test_paused_member_gets_every_frame_whole_and_in_order(gateways, mode):
    gw = gateways.start(f"uring-{mode}", extra=["--io-uring", mode, "--send-queue-limit", QUEUE_LIMIT,
                                              *NO_RATE_LIMIT])
    assert io_uring_in_use(gw, mode) == (1 if mode == "on" else 0)
    paused = await asyncio.to_thread(RawClient.connect, gw.port, username="paused",
                                     rcvbuf=4096)
    await asyncio.to_thread(paused.send_json, {"type": "join_room", "room": "r"})
    await asyncio.to_thread(read_until, paused, "joined")
    sender = await Client.connect(gw.port, "sender")
    await sender.join("r")

    for i in range(MESSAGES):
        await sender.chat(f"{i} {CONTENT}", room="r")
    for i in range(MESSAGES):   # all published and fanned out
        await sender.recv_chat(f"{i} {CONTENT}")

    got = []
    while len(got) < MESSAGES:
        frame = await asyncio.to_thread(read_until, paused, "chat")
        got.append(frame["content"])
    assert got == [f"{i} {CONTENT}" for i in range(MESSAGES)]
    assert gw.metrics()["gateway_slow_consumer_drops_total"] == 0
    paused.close()


async def test_env_twin_turns_it_off(gateways):
    gw = gateways.start("uring-env", env={"GATEWAY_IO_URING": "off"})
    assert io_uring_in_use(gw, "off") == 0
    a = await Client.connect(gw.port, "a")
    b = await Client.connect(gw.port, "b")
    await a.join("r")
    await b.join("r")
    await a.chat("hello", room="r")
    await b.recv_chat("hello")
