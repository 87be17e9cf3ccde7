"""Origin rules of the /ws upgrade: no Origin or the same origin as Host is
fine, any other origin gets 403 unless --allowed-origins lists it."""

import pytest
import websockets.exceptions

from wsclient import Client


async def connect_status(port, origin):
    """101 when the upgrade succeeds, else the HTTP status of the refusal."""
    try:
        c = await Client.connect(port, "o", origin=origin)
    except websockets.exceptions.InvalidStatusCode as exc:
        return exc.status_code
    await c.close()
    return 101


async def test_without_origin_allowed(gateway):
    assert await connect_status(gateway.port, None) == 101


async def test_same_origin_allowed(gateway):
    # websockets sends Host: 127.0.0.1:PORT
    assert await connect_status(gateway.port, f"http://127.0.0.1:{gateway.port}") == 101


@pytest.mark.parametrize("origin", ["http://evil.example", "http://127.0.0.1:1", "null"])
async def test_other_origin_refused(gateway, origin):
    assert await connect_status(gateway.port, origin) == 403


async def test_allowed_origins_flag(gateways):
    gw = gateways.start("orig", extra=["--allowed-origins",
                                       "https://chat.example,http://localhost:3000"])
    assert await connect_status(gw.port, "https://chat.example") == 101
    assert await connect_status(gw.port, "http://localhost:3000") == 101
    assert await connect_status(gw.port, f"http://127.0.0.1:{gw.port}") == 101
    assert await connect_status(gw.port, "https://evil.example") == 403
