"""Keepalive: with --ping-interval 1s --pong-timeout 3s a client that answers
the gateway's pings stays, one that never answers is dropped.

The answering client is websockets (it answers pings by itself and, with
ping_interval=None, sends none of its own). The silent one is a raw socket
that sends nothing and reads nothing until the end."""

import asyncio
import time

import pytest

from rawws import OP_PING, RawClient
from wsclient import Client


@pytest.mark.timeout(20)
async def test_keepalive(gateways):
    gw = gateways.start("ka", extra=["--ping-interval", "1s", "--pong-timeout", "3s"])
    answering = await Client.connect(gw.port, "answering")
    silent = await asyncio.to_thread(RawClient.connect, gw.port, username="silent")
    started = time.monotonic()

    code = await asyncio.to_thread(silent.wait_closed, 8)
    dropped_after = time.monotonic() - started
    assert code in (1008, None), f"silent client closed with {code}"
    assert dropped_after > 2, f"dropped after {dropped_after:.1f}s, before the pong timeout"

    await asyncio.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
    await answering.assert_alive()
    silent.close()


async def test_gateway_sends_pings(gateways):
    gw = gateways.start("ka", extra=["--ping-interval", "500ms", "--pong-timeout", "5s"])
    raw = await asyncio.to_thread(RawClient.connect, gw.port, username="raw")
    deadline = time.monotonic() + 3
    opcodes = []
    while OP_PING not in opcodes:
        left = deadline - time.monotonic()
        assert left > 0, f"no ping within 3s with --ping-interval 500ms; frames: {opcodes}"
        opcodes.append((await asyncio.to_thread(raw.recv_frame, left))[1])
    raw.close()
