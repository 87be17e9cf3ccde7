"""The /echo WebSocket: every frame back verbatim, text as text, binary as binary."""

import asyncio

from wsclient import connect_ws, ws_url


async def test_echo_text_and_binary(gateway):
    async with connect_ws(ws_url(gateway.port, path="/echo")) as ws:
        for message in ["hello", "日本語", "x" * 10_000, b"\x00\x01\xff", bytes(range(256)) * 40]:
            await ws.send(message)
            back = await asyncio.wait_for(ws.recv(), 5)
            assert type(back) is type(message)
            assert back == message
