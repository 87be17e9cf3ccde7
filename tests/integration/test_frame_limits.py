"""Frames over --max-message-bytes close with 1009, also when fragmented;
invalid UTF-8 in a text frame closes with 1007.

Invalid UTF-8 is sent with websockets' low-level write_frame (the public
send() only takes str for text), so the bytes go out exactly as given."""

import json

import pytest
import websockets.frames

from rawws import OP_CONT, OP_TEXT, RawClient, frame_bytes
from wsclient import Client

LIMIT = 1024


@pytest.fixture
def limited_gateway(gateways):
    # "1k" also checks the size suffix of the README.
    return gateways.start("limits", extra=["--max-message-bytes", "1k"])


def chat_frame(total_bytes):
    """A global chat frame of exactly total_bytes bytes."""
    empty = json.dumps({"type": "chat", "content": ""})
    return json.dumps({"type": "chat", "content": "x" * (total_bytes - len(empty))})


async def test_frame_at_limit_is_fine(limited_gateway):
    c = await Client.connect(limited_gateway.port, "a")
    frame = chat_frame(LIMIT)
    assert len(frame) == LIMIT
    await c.send_raw(frame)
    assert len((await c.recv_chat())["content"]) > 900


async def test_oversize_frame_closes_1009(limited_gateway):
    c = await Client.connect(limited_gateway.port, "a")
    await c.send_raw(chat_frame(LIMIT + 1))
    assert await c.expect_closed() == 1009


async def test_oversize_fragmented_message_closes_1009(limited_gateway):
    c = RawClient.connect(limited_gateway.port, username="a")
    text = chat_frame(LIMIT + 300).encode()
    # 14 fragments of 100 bytes: each one small, the message too big. One
    # write, so that the gateway has read them all when it closes: closing
    # with data unread is a reset, and a reset can lose the close frame on
    # its way (a client still sending fragments then sees no 1009).
    parts = [text[i:i + 100] for i in range(0, len(text), 100)]
    c.sock.sendall(b"".join(frame_bytes(OP_TEXT if i == 0 else OP_CONT, part,
                                        fin=i == len(parts) - 1)
                            for i, part in enumerate(parts)))
    try:
        assert c.wait_closed() == 1009
    finally:
        c.close()


async def test_fragmented_message_under_limit_is_fine(limited_gateway):
    c = await Client.connect(limited_gateway.port, "a")
    text = chat_frame(900)
    await c.send_raw(text[i:i + 50] for i in range(0, len(text), 50))
    assert len((await c.recv_chat())["content"]) > 800


async def test_default_limit_is_64k(gateway):
    c = await Client.connect(gateway.port, "a")
    await c.send_raw(chat_frame(65536))
    await c.recv_chat()
    await c.send_raw(chat_frame(65537))
    assert await c.expect_closed() == 1009


@pytest.mark.parametrize("payload", [b"\xff\xfe", b'{"type":"echo","content":"\xc3\x28"}',
                                     b'{"type":"echo","content":"\xed\xa0\x80"}'], ids=repr)
async def test_invalid_utf8_closes_1007(gateway, payload):
    c = await Client.connect(gateway.port, "a")
    await c.ws.write_frame(True, websockets.frames.Opcode.TEXT, payload)
    assert await c.expect_closed() == 1007
