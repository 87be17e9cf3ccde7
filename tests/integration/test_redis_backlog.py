"""A Redis that is behind is not a Redis that is gone. In a connect storm
thousands of joins queue up on a gateway's command connection, and the
heartbeat's answer comes after all of them: the gateway must not take that
for an outage (drop Redis, answer `unavailable`, report 503), as long as
answers keep coming. Here the backlog is made with a proxy that lets Redis's
answers through at 100 KB/s while joins fetch large histories."""

import asyncio
import os
import signal

import pytest

from wsclient import Client

RATE = 100_000          # bytes per second from Redis to the gateway, once throttled
MESSAGE_BYTES = 4000
KEPT = 100              # the gateway's default --history
JOINS = 5               # about 400 KB of history each: 20 s of answers queued


class ThrottlingProxy:
    """TCP proxy to a Redis port. The Redis-to-client direction passes at
    `rate` bytes per second once `rate` is set; the other way is never held."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.rate = None
        self.server = None
        self.port = None
        self.tasks = set()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, client_reader, client_writer):
        try:
            redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1",
                                                                       self.target_port)
        except OSError:
            client_writer.close()
            return

        async def pump(reader, writer, throttled):
            try:
                while data := await reader.read(4096):
                    writer.write(data)
                    await writer.drain()
                    if throttled and self.rate:
                        await asyncio.sleep(len(data) / self.rate)
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        for task in (asyncio.create_task(pump(client_reader, redis_writer, False)),
                     asyncio.create_task(pump(redis_reader, client_writer, True))):
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def close(self):
        self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.mark.timeout(75)
async def test_answers_queued_behind_a_backlog_are_not_an_outage(redis_server, gateways):
    proxy = await ThrottlingProxy(redis_server.port).start()
    try:
        gw = gateways.start("gw1", proxy.port)
        await asyncio.to_thread(gw.wait_ready)
        writer = await Client.connect(gw.port, "writer")
        await writer.join("big")
        for i in range(KEPT):
            await writer.chat(f"{i:04d} " + "x" * MESSAGE_BYTES, room="big")
            await writer.recv_chat(timeout=5)

        proxy.rate = RATE
        readers = [await Client.connect(gw.port, f"reader{i}") for i in range(JOINS)]
        for r in readers:
            await r.send_json({"type": "join_room", "room": "big"})
        for r in readers:
            joined = await r.recv_until("joined", timeout=60)
            assert len(joined["history"]) == KEPT
        metrics = await asyncio.to_thread(gw.metrics)
        assert metrics["gateway_redis_reconnects_total"] == 0, gw.log_tail(20)
        assert "no answer to the heartbeat" not in gw.log_text()
    finally:
        await proxy.close()


@pytest.mark.timeout(60)
async def test_a_redis_that_answers_nothing_is_gone(redis_server, gateways):
    """Frozen (SIGSTOP): its connections stay open but nothing comes back.
    Within two heartbeats and a bit the gateway reports 503 and answers a
    waiting chat with `unavailable`; thawed, it is back by itself."""
    gw = gateways.start("gw1", redis_server.port)
    await asyncio.to_thread(gw.wait_ready)
    alice = await Client.connect(gw.port, "alice")
    os.kill(redis_server.process.pid, signal.SIGSTOP)
    try:
        await alice.chat("while Redis is frozen")
        await alice.expect_error("unavailable", timeout=20)
        assert await asyncio.to_thread(gw.readyz_status) == 503
        assert "no answer to the heartbeat" in gw.log_text()
    finally:
        os.kill(redis_server.process.pid, signal.SIGCONT)
    await asyncio.to_thread(gw.wait_ready, 15)
    await alice.chat("after the thaw")
    assert (await alice.recv_chat("after the thaw"))["sender"] == "alice"
