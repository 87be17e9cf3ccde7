"""Graceful shutdown: on SIGTERM every client gets close code 1001 and the
process exits 0 quickly, also when a client never answers the close."""

import asyncio
import os
import signal
import time

from rawws import RawClient
from wsclient import connect_many


async def test_sigterm_closes_clients_with_1001(gateway):
    clients = await connect_many(gateway.port, [f"c{i}" for i in range(5)])
    await clients[0].join("r")
    started = time.monotonic()
    os.kill(gateway.process.pid, signal.SIGTERM)
    codes = await asyncio.gather(*(c.expect_closed(5) for c in clients))
    assert codes == [1001] * len(clients)
    assert await asyncio.to_thread(gateway.wait_exit, 5) == 0
    assert time.monotonic() - started < 3


async def test_shutdown_timeout_bounds_a_client_that_never_closes(gateways):
    gw = gateways.start("st", extra=["--shutdown-timeout", "1s"])
    (polite,) = await connect_many(gw.port, ["polite"])
    stubborn = await asyncio.to_thread(RawClient.connect, gw.port, username="stubborn")
    started = time.monotonic()
    os.kill(gw.process.pid, signal.SIGTERM)
    assert await polite.expect_closed(5) == 1001
    assert await asyncio.to_thread(gw.wait_exit, 6) == 0
    assert time.monotonic() - started < 4, "exit took longer than --shutdown-timeout allows"
    # The stubborn client did get its close frame; it just never answered.
    assert await asyncio.to_thread(stubborn.wait_closed, 2) == 1001
    stubborn.close()
