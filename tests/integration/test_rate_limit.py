"""The per-connection rate limit: frames past the burst get `rate_limited`
errors with `retry_after_ms` (PROTOCOL.md v1.1) and the connection stays
open; a client that waits that long is never closed, however much it has to
send; one that keeps sending while refused, more than --rate-limit-grace
frames before the time it was told, is closed with 1008; --rate-limit 0
turns the limit off."""

import asyncio

import pytest

from test_limits import flood
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
    frames = []
    while len(frames) < BURST + over:
        frame = await c.recv_json()
        if frame["type"] in ("pong", "error"):
            frames.append(frame)
    kinds = [f.get("code", f["type"]) for f in frames]
    assert kinds.count("pong") >= BURST and "rate_limited" in kinds, kinds
    for f in frames:
        if f["type"] == "error":
            # The time until a token is back: at most one token's worth.
            assert isinstance(f["retry_after_ms"], int), f
            assert 1 <= f["retry_after_ms"] <= 1000 // RATE, f
    await c.expect_silence("error", 1.0)   # tokens come back at RATE per second
    await c.assert_alive()


async def test_rate_limit_zero_is_off(gateways):
    gw = gateways.start("norl", extra=["--rate-limit", "0"])
    c = await Client.connect(gw.port, "eager")
    for _ in range(300):
        await c.send_json({"type": "ping"})
    for _ in range(300):
        await c.recv_until("pong")


BULK = 2000
PIPELINE = 20


async def send_honouring_retry_after(c, contents, room):
    """Sends contents PIPELINE at a time: each batch in one go, then every
    answer to it (its own chat back, or rate_limited), then, after the
    retry_after_ms last told, the refused ones again, until all went
    through. Returns the refusals it got."""
    refusals = 0
    for start in range(0, len(contents), PIPELINE):
        pending = set(contents[start:start + PIPELINE])
        while pending:
            for content in sorted(pending):
                await c.send_json({"type": "chat", "room": room, "content": content})
            sent, answered, retry_after_ms = len(pending), 0, 0
            while answered < sent:
                frame = await c.recv_json(timeout=10)
                if frame["type"] == "error":
                    assert frame["code"] == "rate_limited", frame
                    retry_after_ms = frame["retry_after_ms"]
                    answered += 1
                    refusals += 1
                elif frame["type"] == "chat" and frame["content"] in pending:
                    pending.discard(frame["content"])
                    answered += 1
            if pending:
                await asyncio.sleep(retry_after_ms / 1000)
    return refusals


@pytest.mark.timeout(240)
async def test_bulk_sender_that_waits_is_never_closed(gateway):
    """2,000 messages at the default limit (20/s, burst 120): ~95 s."""
    sender = await Client.connect(gateway.port, "bulk")
    watcher = await Client.connect(gateway.port, "watcher")
    await sender.join("bulk")
    await watcher.join("bulk")
    contents = [f"m{i:04d}" for i in range(BULK)]
    refusals = await send_honouring_retry_after(sender, contents, "bulk")
    assert refusals > 0   # the limit was reached, and waited out
    seen = []
    while len(seen) < BULK:
        frame = await watcher.recv_until("chat", timeout=10)
        seen.append(frame["content"])
    assert sorted(seen) == contents   # every message, exactly once
    await watcher.expect_silence("chat", 0.5)
    await sender.assert_alive()
    m = gateway.metrics()
    assert m["gateway_rate_limit_closes_total"] == 0, m
    assert m['gateway_errors_total{code="rate_limited"}'] == refusals, m


async def test_flooder_that_ignores_refusals_is_closed(gateway):
    """Sends without reading at the default limit: past the burst (120) and
    the grace (30) it is closed with 1008, well within a second."""
    witness = await Client.connect(gateway.port, "witness")
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await asyncio.to_thread(flood, gateway.port, 120 + 1 + 30 + 9) == 1008
    assert loop.time() - started < 5
    await witness.assert_alive()
    m = gateway.metrics()
    assert m["gateway_rate_limit_closes_total"] == 1, m
    # At least the refusal that opened a window and the grace, then closed
    # (more when a token came back while the pings arrived).
    assert m['gateway_errors_total{code="rate_limited"}'] >= 1 + 30, m
