"""The per-connection rate limit: frames past the burst get `rate_limited`
errors (PROTOCOL.md) and the connection stays open; --rate-limit 0 turns it off.

The flags are the gateway's --rate-limit/--rate-burst (not yet in the README)."""

import pytest

from wsclient import Client

RATE = 5
BURST = 5


@pytest.fixture
def limited(gateways):
    return gateways.start("rl", extra=["--rate-limit", str(RATE), "--rate-burst", str(BURST)])


async def test_burst_past_the_limit_is_refused_not_dropped(limited):
    c = await Client.connect(limited.port, "eager")
    over = 3   # few enough not to count as flooding
    for _ in range(BURST + over):
        await c.send_json({"type": "ping"})
    kinds = []
    while len(kinds) < BURST + over:
        frame = await c.recv_json()
        if frame["type"] in ("pong", "error"):
            kinds.append(frame.get("code", frame["type"]))
    assert kinds.count("pong") >= BURST and "rate_limited" in kinds, kinds
    await c.expect_silence("error", 1.0)   # tokens come back at RATE per second
    await c.assert_alive()


async def test_rate_limit_zero_is_off(gateways):
    gw = gateways.start("norl", extra=["--rate-limit", "0"])
    c = await Client.connect(gw.port, "eager")
    for _ in range(300):
        await c.send_json({"type": "ping"})
    for _ in range(300):
        await c.recv_until("pong")
