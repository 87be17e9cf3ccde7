"""Origin rules of the /ws upgrade: no Origin or the same origin as Host is
fine, any other origin gets 403 unless --allowed-origins lists it.

The raw client reads the status: websockets refuses the gateway's
"HTTP/1.0 403" refusal line as an invalid response before showing its status."""

import asyncio

import pytest

from rawws import HandshakeRefused, RawClient


async def upgrade_status(port, origin):
    """101 when the upgrade succeeds, else the HTTP status of the refusal."""
    headers = {} if origin is None else {"Origin": origin}
    try:
        raw = await asyncio.to_thread(RawClient.connect, port, username="o", headers=headers)
    except HandshakeRefused as refused:
        return refused.status
    raw.close()
    return 101


async def test_without_origin_allowed(gateway):
    assert await upgrade_status(gateway.port, None) == 101


async def test_same_origin_allowed(gateway):
    # The raw client sends Host: 127.0.0.1:PORT
    assert await upgrade_status(gateway.port, f"http://127.0.0.1:{gateway.port}") == 101


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null"])
async def test_other_origin_refused(gateway, origin):
    assert await upgrade_status(gateway.port, origin) == 403


async def test_allowed_origins_flag(gateways):
    gw = gateways.start("orig", extra=["--allowed-origins",
                                       "https://chat.example,http://localhost:3000"])
    assert await upgrade_status(gw.port, "https://chat.example") == 101
    assert await upgrade_status(gw.port, "http://localhost:3000") == 101
    assert await upgrade_status(gw.port, f"http://127.0.0.1:{gw.port}") == 101
    assert await upgrade_status(gw.port, "https://evil.example") == 403
