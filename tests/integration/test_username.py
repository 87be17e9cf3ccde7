"""welcome frame and the username rules of the /ws upgrade."""

import asyncio
import re
import time

import pytest

from rawws import HandshakeRefused, RawClient
from wsclient import Client


def assert_recent_ms(ts):
    assert isinstance(ts, int), f"timestamp {ts!r} is not an integer"
    assert abs(ts - time.time() * 1000) < 60_000, f"timestamp {ts} is not now in ms"


async def test_welcome_fields(gateway):
    c = await Client.connect(gateway.port, "alice")
    w = c.welcome
    assert w["type"] == "welcome"
    assert w["content"] == "Welcome, alice!"
    assert w["sender"] == "System"
    assert w["gateway"] == "gw1"
    assert w["username"] == "alice"
    assert w.get("id") not in (None, ""), w
    assert_recent_ms(w["timestamp"])


async def test_connection_ids_differ(gateway):
    a = await Client.connect(gateway.port, "same")
    b = await Client.connect(gateway.port, "same")
    assert a.welcome["id"] != b.welcome["id"]


async def test_missing_username_is_generated(gateway):
    a = await Client.connect(gateway.port)
    b = await Client.connect(gateway.port)
    for c in (a, b):
        assert re.fullmatch(r"User\d+", c.username), c.welcome
        assert c.welcome["content"] == f"Welcome, {c.username}!"
    assert a.username != b.username


VALID_NAMES = {
    "32 bytes, the longest allowed": "a" * 32,
    "Japanese": "太郎",
    "10 Japanese chars = 30 bytes": "あ" * 10,
    "accent, space, emoji": "Zoë the 🐈",
}


@pytest.mark.parametrize("name", VALID_NAMES.values(), ids=VALID_NAMES.keys())
async def test_valid_usernames(gateway, name):
    c = await Client.connect(gateway.port, name)
    assert c.username == name
    assert c.welcome["content"] == f"Welcome, {name}!"


# Sent verbatim as the query string, so the bytes are exactly these.
INVALID_QUERIES = {
    "too long (33 bytes)": "username=" + "a" * 33,
    "too long (11 Japanese chars = 33 bytes)": "username=" + "%E3%81%82" * 11,
    "control char SOH": "username=bo%01b",
    "newline": "username=bo%0Ab",
    "carriage return": "username=bo%0Db",
    "tab": "username=%09x",
    "NUL": "username=bo%00b",
    "DEL": "username=bob%7F",
    "invalid UTF-8 byte": "username=%FF%FE",
    "truncated UTF-8 sequence": "username=ab%E3%81",
    "overlong UTF-8": "username=%C0%AF",
}


@pytest.mark.parametrize("query", INVALID_QUERIES.values(), ids=INVALID_QUERIES.keys())
async def test_invalid_username_refused_with_400(gateway, query):
    try:
        raw = await asyncio.to_thread(RawClient.connect, gateway.port, query=query)
    except HandshakeRefused as refused:
        status, body = refused.status, refused.body
    else:
        welcome = await asyncio.to_thread(raw.recv_json, 2)
        raw.close()
        pytest.fail(f"upgrade with ?{query} accepted; welcome: {welcome}")
    assert status == 400
    reason = body.decode(errors="replace").strip()
    assert reason, "400 without a reason"
    assert "\n" not in reason, f"reason is not one line: {reason!r}"
    assert not reason.startswith("<"), f"an HTML page is not a one-line reason: {reason!r}"


async def test_refused_upgrades_leave_no_connection_behind(gateway):
    """The connection gauge counts open chat connections only, whatever
    became of the refused upgrades (the test above checks the refusals)."""
    for query in INVALID_QUERIES.values():
        try:
            (await asyncio.to_thread(RawClient.connect, gateway.port, query=query)).close()
        except (HandshakeRefused, ConnectionError):
            pass
    ok = await Client.connect(gateway.port, "ok")
    await asyncio.sleep(0.2)   # let the gateway see the accepted ones close
    await ok.assert_alive()
    assert gateway.metrics()["gateway_connections"] == 1
