"""Per-connection and per-request limits of issue #7, each with its flag and
metric: message rate (token bucket, rate_limited, 1008 for flooding), rooms
per connection, connections per address, handshake timeout, header size."""

import asyncio
import re
import socket
import time

import pytest

from gateway_proc import run_gateway
from netutil import free_port
from rawws import RawClient, expect_refused, one_line_reason
from wsclient import Client

RATE = 5
BURST = 5


# ---- message rate -------------------------------------------------------

@pytest.fixture
def rate_limited(gateways):
    return gateways.start("rate", extra=["--rate-limit", RATE, "--rate-burst", BURST])


async def answers(client, count):
    """The next count answers to pings: "pong" or the error's code."""
    kinds = []
    while len(kinds) < count:
        frame = await client.recv_json()
        if frame["type"] in ("pong", "error"):
            kinds.append(frame.get("code", frame["type"]))
    return kinds


async def test_frame_past_the_burst_gets_rate_limited(rate_limited):
    c = await Client.connect(rate_limited.port, "quick")
    before = rate_limited.metrics()
    for _ in range(BURST + 1):
        await c.send_json({"type": "ping"})
    assert await answers(c, BURST + 1) == ["pong"] * BURST + ["rate_limited"]
    await asyncio.sleep(1.5 / RATE)   # a token comes back
    await c.assert_alive()
    after = rate_limited.metrics()
    assert after["gateway_rate_limited_total"] == before["gateway_rate_limited_total"] + 1
    assert after.get('gateway_errors_total{code="rate_limited"}', 0) == \
        before.get('gateway_errors_total{code="rate_limited"}', 0) + 1


@pytest.mark.timeout(10)
async def test_sending_at_the_rate_is_never_refused(rate_limited):
    c = await Client.connect(rate_limited.port, "steady")
    for _ in range(BURST):
        await c.send_json({"type": "ping"})
    assert await answers(c, BURST) == ["pong"] * BURST   # bucket now empty
    for _ in range(2 * RATE):   # two seconds at 80 % of the rate
        await asyncio.sleep(1.25 / RATE)
        await c.send_json({"type": "ping"})
        assert await answers(c, 1) == ["pong"]
    assert rate_limited.metrics()["gateway_rate_limited_total"] == 0


def flood(port, frames):
    """Sends frames pings at once from a raw client and returns the close
    code it reads. One write (corked), under the 4 KB the gateway reads at a
    time, so that the gateway has read them all when it closes: a ping
    arriving after it closed the socket would reset the connection, losing
    the close frame we had not read yet."""
    raw = RawClient.connect(port, username="flood")
    try:
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        for _ in range(frames):
            raw.send_json({"type": "ping"})
        raw.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
        return raw.wait_closed(timeout=5)
    finally:
        raw.close()


async def test_sustained_flood_is_closed_with_1008(rate_limited):
    """Read with the raw client: the gateway closes the TCP connection right
    after its close frame, so a client still writing gets a reset, which
    websockets reports as 1006 before it parses the 1008 it had received."""
    witness = await Client.connect(rate_limited.port, "witness")
    # Past the burst, the refusal that opens a window and the grace (30).
    assert await asyncio.to_thread(flood, rate_limited.port, BURST + 1 + 30 + 4) == 1008
    # Refused frames counted up to the one that tipped it over.
    assert rate_limited.metrics()["gateway_rate_limited_total"] > RATE
    await witness.assert_alive()


async def test_default_rate_allows_a_rejoin_burst(gateway):
    """The default burst (120) covers rejoining many rooms at once."""
    c = await Client.connect(gateway.port, "rejoin")
    for i in range(100):
        await c.send_json({"type": "join_room", "room": f"r{i}"})
    for i in range(100):
        await c.recv_until("joined", where=lambda f, room=f"r{i}": f["room"] == room)
    assert gateway.metrics()["gateway_rate_limited_total"] == 0


# ---- rooms per connection -----------------------------------------------

async def test_max_rooms(gateways):
    gw = gateways.start("rooms", extra=["--max-rooms", 3])
    c = await Client.connect(gw.port, "roomy")
    for room in ("a", "b", "c"):
        await c.join(room)
    await c.send_json({"type": "join_room", "room": "d"})
    await c.expect_error("too_many_rooms")
    await c.join("a")                      # a room it is in: still fine
    await c.leave("b")
    await c.join("d")
    await c.send_json({"type": "join_room", "room": "e"})
    await c.expect_error("too_many_rooms")
    await c.assert_alive()
    assert sorted(await c.presence("d")) == ["roomy"]
    other = await Client.connect(gw.port, "other")   # the limit is per connection
    await other.join("e")
    m = gw.metrics()
    assert m.get('gateway_errors_total{code="too_many_rooms"}') == 2, m


# ---- connections per address --------------------------------------------

async def test_max_connections_per_ip(gateways):
    gw = gateways.start("perip", extra=["--max-connections-per-ip", 2])
    a = await Client.connect(gw.port, "a")
    await Client.connect(gw.port, "b")
    refused = await asyncio.to_thread(expect_refused, gw.port, username="c")
    assert refused.status == 429, refused
    one_line_reason(refused)
    assert gw.metrics()["gateway_rejected_upgrades_total"] == 1
    assert gw.http("/healthz")[0] == 200   # plain HTTP is not limited
    await a.close()
    deadline = time.monotonic() + 5
    while gw.metrics()["gateway_connections"] != 1:
        assert time.monotonic() < deadline, "closed connection still counted after 5 s"
        await asyncio.sleep(0.05)
    c = await Client.connect(gw.port, "c")
    await c.assert_alive()


async def test_connections_per_ip_unlimited_by_default(gateway):
    clients = [await Client.connect(gateway.port, f"u{i}") for i in range(12)]
    await clients[-1].assert_alive()
    assert gateway.metrics()["gateway_rejected_upgrades_total"] == 0


# ---- handshake timeout --------------------------------------------------

HANDSHAKE_TIMEOUT = 2


def seconds_until_closed(sock, keep_sending=None, limit=8.0):
    """Reads until the gateway ends the connection (None if it stays open past
    limit); keep_sending(i) bytes, if given, go out every 0.4 s meanwhile."""
    start = time.monotonic()
    sock.settimeout(0.4)
    i = 0
    try:
        while time.monotonic() - start < limit:
            try:
                if not sock.recv(4096):
                    return time.monotonic() - start
            except socket.timeout:
                if keep_sending:
                    sock.sendall(keep_sending(i))
                    i += 1
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - start
    finally:
        sock.close()
    return None


def half_upgrade(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /ws?username=slow HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Upgrade: websocket\r\n")
    return sock


@pytest.fixture
def short_handshake(gateways):
    return gateways.start("hs", extra=["--handshake-timeout", f"{HANDSHAKE_TIMEOUT}s"])


@pytest.mark.timeout(15)
@pytest.mark.parametrize("kind", ["stalled half upgrade", "slowloris trickle", "silent"])
async def test_slow_handshakes_are_closed(short_handshake, kind):
    port = short_handshake.port
    if kind == "silent":
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    else:
        sock = half_upgrade(port)
    trickle = (lambda i: f"X-Slow-{i}: y\r\n".encode()) if kind == "slowloris trickle" else None
    closing = asyncio.create_task(asyncio.to_thread(seconds_until_closed, sock, trickle))
    # Meanwhile a normal client connects and chats.
    a = await Client.connect(port, "normal")
    b = await Client.connect(port, "other")
    await a.join("r")
    await b.join("r")
    await a.chat("not blocked", room="r")
    await b.recv_chat("not blocked")
    elapsed = await closing
    assert elapsed is not None, f"{kind}: still open after 8 s"
    assert HANDSHAKE_TIMEOUT - 0.5 <= elapsed <= HANDSHAKE_TIMEOUT + 2, \
        f"{kind}: closed after {elapsed:.2f} s"
    assert short_handshake.metrics()["gateway_connections"] == 2


# ---- header size --------------------------------------------------------

def get_with_headers(port, pad_bytes, upgrade=False):
    """The first bytes of the answer to a request carrying pad_bytes of extra
    headers (b"" when the gateway closed without answering)."""
    lines = ["GET /ws?username=big HTTP/1.1" if upgrade else "GET /healthz HTTP/1.1",
             "Host: 127.0.0.1"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade",
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"]
    lines += [f"X-Pad-{i}: {'p' * 90}" for i in range(pad_bytes // 100)]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            return sock.recv(4096)
        except ConnectionResetError:
            return b""


def status_of(answer):
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(m.group(1)) if m else None


@pytest.mark.parametrize("upgrade", [False, True], ids=["GET", "upgrade"])
async def test_max_header_bytes(gateways, upgrade):
    gw = gateways.start("hdr", extra=["--max-header-bytes", 1024])
    assert status_of(await asyncio.to_thread(get_with_headers, gw.port, 600, upgrade)) \
        in (200, 101)
    answer = await asyncio.to_thread(get_with_headers, gw.port, 4096, upgrade)
    # Measured: the gateway closes without answering; a 4xx would do too.
    status = status_of(answer)
    assert answer == b"" or (status is not None and 400 <= status < 500), answer[:200]
    c = await Client.connect(gw.port, "next")
    await c.assert_alive()
    assert gw.metrics()["gateway_connections"] == 1


async def test_default_header_limit_is_4096(gateway):
    assert status_of(await asyncio.to_thread(get_with_headers, gateway.port, 3000)) == 200
    answer = await asyncio.to_thread(get_with_headers, gateway.port, 5000)
    status = status_of(answer)
    assert answer == b"" or (status is not None and 400 <= status < 500), answer[:200]


# ---- flags --------------------------------------------------------------

README_DEFAULTS = {"--rate-limit": "20", "--rate-burst": "120", "--max-rooms": "100",
                   "--max-connections-per-ip": "0", "--handshake-timeout": "10s",
                   "--max-header-bytes": "4096"}


def test_help_states_the_readme_defaults():
    result = run_gateway(["--help"])
    assert result.returncode == 0, result
    for flag, default in README_DEFAULTS.items():
        line = next((l for l in result.stdout.splitlines() if l.split()[:1] == [flag]), None)
        assert line is not None, f"--help has no line for {flag}:\n{result.stdout}"
        assert re.search(rf"default {re.escape(default)}\b", line), line


BAD_LIMITS = [("--rate-limit", "-1"), ("--rate-limit", "fast"), ("--rate-burst", "x"),
              ("--max-rooms", "-2"), ("--max-connections-per-ip", "many"),
              ("--handshake-timeout", "soon"), ("--max-header-bytes", "lots"),
              ("--max-header-bytes", "100000")]


@pytest.mark.parametrize("flag,value", BAD_LIMITS, ids=[f"{f}={v}" for f, v in BAD_LIMITS])
def test_bad_limit_value_exits_2(flag, value):
    result = run_gateway(["--listen", f"127.0.0.1:{free_port()}", flag, value])
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr
