"""A subscriber connection that stays up but stops delivering (the peers'
most reported Redis failure) is noticed by the gateway's canary: the link is
restarted, the rooms resubscribed and replayed, so members get what was sent
in the gap and what comes after; the miss shows in the metrics."""

import asyncio

import pytest

from aio import eventually
from redis_proxy import RedisProxy
from wsclient import Client

INTERVAL_MS = 300
# Noticed within two intervals, then a reconnect (backoff from 100 ms) and a
# replay: generous, so that a loaded machine does not fail the test.
RECOVERED_WITHIN = 15


@pytest.fixture
def proxy(redis_server):
    p = RedisProxy(redis_server.port).start()
    yield p
    p.close()


def counter(gw, name):
    return gw.metrics().get(name, 0)


@pytest.mark.timeout(60)
async def test_stalled_subscriber_is_noticed_and_replayed(redis_server, proxy, gateways):
    # gw1 reaches Redis through the proxy; gw2 directly.
    gw1 = gateways.start("gw1", proxy.port, ["--redis-canary-interval", f"{INTERVAL_MS}ms"])
    gw2 = gateways.start("gw2", redis_server.port)
    for gw in (gw1, gw2):
        gw.wait_ready()
    a = await Client.connect(gw1.port, "alice")
    b = await Client.connect(gw2.port, "bob")
    await a.join("r")
    await b.join("r")
    await b.chat("before", room="r")
    await a.recv_chat("before")
    # A healthy link: canaries come back.
    await asyncio.sleep(4 * INTERVAL_MS / 1000)
    assert counter(gw1, "gateway_redis_canary_misses_total") == 0

    assert await asyncio.to_thread(proxy.stall_subscribers) == 1
    await b.chat("in the gap", room="r")
    gap = await a.recv_chat("in the gap", timeout=RECOVERED_WITHIN)
    await eventually(lambda: asyncio.to_thread(gw1.readyz_status), lambda s: s == 200,
                     RECOVERED_WITHIN, "gw1 ready again")
    await b.chat("after", room="r")
    after = await a.recv_chat("after")
    assert [int(x) for x in after["id"].split("-")] > [int(x) for x in gap["id"].split("-")]
    # Exactly once: the replay and the live subscription do not both deliver.
    await a.expect_silence("chat", 0.5)

    m = gw1.metrics()
    assert m["gateway_redis_canary_misses_total"] >= 1
    assert m["gateway_redis_reconnects_total"] >= 1
    assert m["gateway_redis_replays_total"] >= 1
    assert m["gateway_redis_history_lost_total"] == 0
    assert "subscription canary did not come back" in gw1.log_text()
    assert counter(gw2, "gateway_redis_canary_misses_total") == 0


async def test_canary_interval_is_bounded(gateways):
    from gateway_proc import run_gateway
    for bad in ("50ms", "61s", "soon"):
        r = run_gateway(["--redis-canary-interval", bad])
        assert r.returncode == 2, (bad, r)
        assert "--redis-canary-interval" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
