"""Hostile handshakes and frames (issue #7): the gateway refuses or closes
the offender with the right status, keeps serving everyone else, and its
memory comes back to where it was.

Frames that break RFC 6455 are written with the raw client. Where the RFC
only says an endpoint SHOULD send a close frame before failing the
connection (section 7.1.7), dropping the TCP connection without one is
accepted for the cases the issue does not name, as the Autobahn test suite
does; a close frame with a wrong code, or staying open, never is."""

import asyncio
import base64
import os
import random
import re
import socket
import struct

import pytest

from rawws import (OP_CLOSE, OP_CONT, OP_PING, OP_TEXT, HandshakeRefused, RawClient,
                   exchange)
from wsclient import Client

HANDSHAKE_TIMEOUT = 2
DROPPED = None   # RawClient.wait_closed: the TCP connection ended without a close frame


@pytest.fixture(scope="module")
def hostile_gw(module_gateways):
    return module_gateways.start("hostile",
                                 extra=["--handshake-timeout", f"{HANDSHAKE_TIMEOUT}s"])


async def assert_serving(gw):
    """A normal pair of clients still joins and chats."""
    a = await Client.connect(gw.port, "bystander-a")
    b = await Client.connect(gw.port, "bystander-b")
    await a.join("calm")
    await b.join("calm")
    await a.chat("still here", room="calm")
    await b.recv_chat("still here")
    await a.close()
    await b.close()


# ---- handshakes -----------------------------------------------------------

_rng = random.Random(4711)   # the same bytes on every run

NOT_HTTP = {
    "3000 random bytes": _rng.randbytes(3000),
    "20 random bytes": _rng.randbytes(20),
    "NUL bytes": b"\0" * 200,
    "text, not a request": b"hello there\r\n\r\n",
    "GET and random bytes": b"GET " + _rng.randbytes(300) + b"\r\n\r\n",
    "10 KB request line": b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "64 KB of headers": b"GET /ws HTTP/1.1\r\nHost: x\r\n"
                        + b"".join(b"X-H%d: %s\r\n" % (i, b"h" * 100) for i in range(640))
                        + b"\r\n",
}

STATUS_LINE = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


# lws keeps a connection it refused open for its own 5 s, whatever
# --handshake-timeout says; measured, and bounded all the same.
REFUSED_CLOSED_WITHIN = max(HANDSHAKE_TIMEOUT, 5) + 2


async def not_http_problem(port, name, data):
    answer, ended = await asyncio.to_thread(exchange, port, data, REFUSED_CLOSED_WITHIN)
    m = STATUS_LINE.match(answer)
    if not (answer == b"" or (m and 400 <= int(m.group(1)) < 500)):
        return f"{name}: answered {answer[:200]!r}"
    if not ended:
        return f"{name}: still open after {REFUSED_CLOSED_WITHIN}s (answer {answer[:60]!r})"
    return None


@pytest.mark.timeout(REFUSED_CLOSED_WITHIN + 10)
async def test_not_http_is_refused(hostile_gw):
    """All at once, each refused (4xx or closed) and ended: the gateway must
    not keep garbage connections."""
    before = hostile_gw.metrics()["gateway_connections_total"]
    problems = await asyncio.gather(*(not_http_problem(hostile_gw.port, name, data)
                                      for name, data in NOT_HTTP.items()))
    assert not any(problems), [p for p in problems if p]
    assert hostile_gw.metrics()["gateway_connections_total"] == before
    await assert_serving(hostile_gw)


def b64(n):
    return base64.b64encode(os.urandom(n)).decode()


BAD_KEYS = {
    "not base64": "this is not base64!",
    "base64 of 15 bytes": b64(15),
    "base64 of 17 bytes": b64(17),
    "base64 of 16 bytes with junk": b64(16) + "@@",
    "empty": "",
    "300 bytes": "A" * 300,
}


def upgrade_outcome(port, key):
    """101, the refusal's status, or "closed"."""
    try:
        raw = RawClient.connect(port, username="keyed", key=key, timeout=3)
    except HandshakeRefused as refused:
        return refused.status
    except ConnectionError:
        return "closed"
    raw.close()
    return 101


@pytest.mark.parametrize("key", BAD_KEYS.values(), ids=BAD_KEYS.keys())
async def test_bad_websocket_key_is_refused(hostile_gw, key):
    """RFC 6455 4.2.1: the key must be base64 of 16 bytes; otherwise 400."""
    before = hostile_gw.metrics()["gateway_connections_total"]
    outcome = await asyncio.to_thread(upgrade_outcome, hostile_gw.port, key)
    assert outcome == "closed" or (outcome != 101 and 400 <= outcome < 500), \
        f"Sec-WebSocket-Key {key!r}: {outcome}"
    assert hostile_gw.metrics()["gateway_connections_total"] == before, "a session was created"
    await assert_serving(hostile_gw)


# ---- frames ---------------------------------------------------------------

def unmasked(raw):
    raw.send_frame(OP_TEXT, '{"type":"ping"}', masked=False)


def opcode(code):
    return lambda raw: raw.send_frame(code, b"x")


def rsv_bits(raw):
    raw.send_frame(OP_TEXT, '{"type":"ping"}', rsv=4)


def ping_126(raw):
    raw.send_frame(OP_PING, b"p" * 126)


def close_126(raw):
    raw.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 124)


def fragmented_ping(raw):
    raw.send_frame(OP_PING, b"p", fin=False)


def utf8_split_invalid(raw):
    """The first fragment ends with the lead byte of a 3-byte sequence (€ is
    E2 82 AC); the next starts with a byte that cannot continue it."""
    raw.send_frame(OP_TEXT, b'{"type":"echo","content":"ab\xe2', fin=False)
    raw.send_frame(OP_CONT, b'\x82', fin=False)
    raw.send_frame(OP_CONT, b'\x28"}', fin=True)


def utf8_split_invalid_two_fragments(raw):
    raw.send_frame(OP_TEXT, b'{"type":"echo","content":"ab\xe2', fin=False)
    raw.send_frame(OP_CONT, b'\x28\xa1"}', fin=True)


def continuation_first(raw):
    raw.send_frame(OP_CONT, b'{"type":"ping"}')


def text_inside_fragmented(raw):
    raw.send_frame(OP_TEXT, b'{"type":', fin=False)
    raw.send_frame(OP_TEXT, b'{"type":"ping"}')


def length_msb_set(raw):
    raw.sock.sendall(bytes([0x80 | OP_TEXT, 0x80 | 127]) + struct.pack("!Q", 1 << 63)
                     + os.urandom(4))


def length_one_terabyte(raw):
    mask = os.urandom(4)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b'{"type":"echo","content":"'))
    raw.sock.sendall(bytes([0x80 | OP_TEXT, 0x80 | 127]) + struct.pack("!Q", 1 << 40)
                     + mask + payload)


def close_code(code):
    return lambda raw: raw.send_frame(OP_CLOSE, struct.pack("!H", code))


def close_one_byte(raw):
    raw.send_frame(OP_CLOSE, b"\x03")


def close_reason_not_utf8(raw):
    raw.send_frame(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")


# name: (what the offender sends, close codes accepted)
BAD_FRAMES = {
    # named by issue #7
    "unmasked client frame": (unmasked, {1002, DROPPED}),
    "reserved opcode 0x3": (opcode(0x3), {1002}),
    "reserved opcode 0xB": (opcode(0xB), {1002}),
    "ping with 126 bytes": (ping_126, {1002}),
    "close with 126 bytes": (close_126, {1002}),
    "fragmented ping": (fragmented_ping, {1002}),
    "invalid UTF-8 split over 3 fragments": (utf8_split_invalid, {1007}),
    "invalid UTF-8 split over 2 fragments": (utf8_split_invalid_two_fragments, {1007}),
    # more of RFC 6455 section 5
    "RSV1 without an extension": (rsv_bits, {1002, DROPPED}),
    "continuation without a start": (continuation_first, {1002, DROPPED}),
    "new text frame inside a fragmented one": (text_inside_fragmented, {1002, DROPPED}),
    "64-bit length with the top bit set": (length_msb_set, {1002, 1009, DROPPED}),
    "1 TB frame announced": (length_one_terabyte, {1009, DROPPED}),
    "close code 999": (close_code(999), {1002, DROPPED}),
    "close code 1005 (reserved)": (close_code(1005), {1002, DROPPED}),
    "close with a 1-byte payload": (close_one_byte, {1002, DROPPED}),
    "close reason not UTF-8": (close_reason_not_utf8, {1002, 1007, DROPPED}),
}


def offend(port, send):
    """Connects, sends the bad frame(s) and returns how the gateway closed
    (the close code, DROPPED, or "open" with the frames it answered)."""
    raw = RawClient.connect(port, username="offender")
    try:
        raw.recv_json()   # welcome
        try:
            send(raw)
        except OSError:
            pass   # closed while sending: what it said is in our buffer
        answered = []
        while True:
            try:
                _, op, payload = raw.recv_frame(3.0)
            except (EOFError, ConnectionResetError):
                return DROPPED
            except TimeoutError:
                return "open", tuple(answered)
            if op == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            answered.append(bytes(payload[:80]))
    finally:
        raw.close()


def describe(outcome):
    if outcome is DROPPED:
        return "TCP closed without a close frame"
    if isinstance(outcome, int):
        return f"close frame {outcome}"
    return f"still open after answering {list(outcome[1])}"


@pytest.mark.parametrize("send,codes", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
async def test_bad_frame_closes_offender(hostile_gw, send, codes):
    outcome = await asyncio.to_thread(offend, hostile_gw.port, send)
    assert outcome in codes, \
        f"expected one of {[describe(c) for c in codes]}, got {describe(outcome)}"
    await assert_serving(hostile_gw)


async def test_no_data_frame_after_a_close_frame(gateways):
    """RFC 6455 5.5.1: after sending a Close frame, an endpoint MUST NOT send
    more data frames. The offender reads on without answering the close
    (a slow client) while the others chat."""
    gw = gateways.start("afterclose", extra=["--max-message-bytes", 256])
    chatter = await Client.connect(gw.port, "chatter")
    cases = {"1002": opcode(0x3), "1007": utf8_split_invalid,
             "1009": lambda raw: raw.send_json({"type": "echo", "content": "x" * 300})}
    late = {}
    for name, send in cases.items():
        raw = await asyncio.to_thread(RawClient.connect, gw.port, username="offender")
        await asyncio.to_thread(raw.recv_json)
        await asyncio.sleep(0.2)   # its own announcements go out before the close
        await asyncio.to_thread(send, raw)
        assert await asyncio.to_thread(raw.wait_closed, 3) == int(name)
        await chatter.chat(f"after {name}")   # global: every session gets it
        await chatter.recv_chat(f"after {name}")
        try:
            frame = await asyncio.to_thread(raw.recv_frame, 0.5)
            late[name] = frame
        except (TimeoutError, EOFError, ConnectionResetError):
            pass
        raw.close()
    assert not late, f"frames sent after the gateway's close frame: {late}"


async def test_deeply_nested_json_is_bad_json(hostile_gw):
    c = await Client.connect(hostile_gw.port, "nester")
    await c.send_raw("[" * 10_000 + "]" * 10_000)
    await c.expect_error("bad_json")
    await c.send_raw('{"type":"chat","content":"x","extra":' + '{"a":' * 10_000 + "1"
                     + "}" * 10_001)
    await c.expect_error("bad_json")
    await c.assert_alive()
    await c.join("deep")
    await c.chat("fine", room="deep")
    await c.recv_chat("fine")


def valid_utf8_split(port):
    raw = RawClient.connect(port, username="splitter")
    try:
        raw.recv_json()
        raw.send_frame(OP_TEXT, b'{"type":"echo","content":"ab\xe2', fin=False)
        raw.send_frame(OP_CONT, b'\x82', fin=False)
        raw.send_frame(OP_CONT, b'\xac"}', fin=True)
        while (frame := raw.recv_json())["type"] != "echo":
            pass
        return frame
    finally:
        raw.close()


async def test_valid_utf8_split_across_fragments_is_fine(hostile_gw):
    frame = await asyncio.to_thread(valid_utf8_split, hostile_gw.port)
    assert frame["content"] == "ab€", frame


# ---- memory -------------------------------------------------------------

def poke(port, data, read=True):
    """Sends data, reads the first answer if asked, and hangs up."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(data)
            if read:
                sock.recv(4096)
        except (BrokenPipeError, ConnectionResetError):
            pass   # the gateway hung up first: fine


def hostile_round(port, i):
    """One hostile connection of a rotating kind; the client side hangs up."""
    kind = i % 6
    if kind == 0:
        poke(port, NOT_HTTP["3000 random bytes"])
    elif kind == 1:
        poke(port, NOT_HTTP["64 KB of headers"])
    elif kind == 2:   # half an upgrade, then gone
        poke(port, b"GET /ws?username=half HTTP/1.1\r\nHost: x\r\n", read=False)
    elif kind == 3:
        offend(port, utf8_split_invalid)
    elif kind == 4:
        offend(port, opcode(0xB))
    else:   # a big fragmented message cut off in the middle
        raw = RawClient.connect(port, username="cut")
        raw.send_frame(OP_TEXT, '{"type":"echo","content":"' + "y" * 60_000, fin=False)
        raw.close()


@pytest.mark.timeout(60)
async def test_memory_returns_after_hostile_connections(gateways):
    gw = gateways.start("leak", extra=["--handshake-timeout", f"{HANDSHAKE_TIMEOUT}s"])

    def rounds(start, count):
        for i in range(start, start + count):
            hostile_round(gw.port, i)

    await asyncio.to_thread(rounds, 0, 60)   # warm-up: allocator pools, lws buffers
    await assert_serving(gw)
    baseline = gw.rss_kb()
    await asyncio.to_thread(rounds, 60, 360)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANDSHAKE_TIMEOUT + 6
    while gw.metrics()["gateway_connections"] != 0:
        assert loop.time() < deadline, f"connections left: {gw.metrics()['gateway_connections']}"
        await asyncio.sleep(0.1)
    await assert_serving(gw)
    grown_mb = (gw.rss_kb() - baseline) / 1024
    print(f"RSS {baseline} kB after the warm-up, grew by {grown_mb:.1f} MB")
    assert grown_mb < 20, f"RSS grew by {grown_mb:.1f} MB over 360 hostile connections"
