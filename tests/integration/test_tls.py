"""TLS (issue #7): --tls-cert and --tls-key serve HTTPS and WSS on the same
port, with a self-signed certificate made here by the openssl CLI. Plain
HTTP and ws:// to that port get nothing served."""

import asyncio
import http.client
import shutil
import socket
import subprocess

import pytest

from gateway_proc import run_gateway
from netutil import free_port, unverified_tls
from rawws import HandshakeRefused, RawClient
from wsclient import Client, connect_ws


@pytest.fixture(scope="module")
def cert_and_key(tmp_path_factory):
    openssl = shutil.which("openssl")
    assert openssl, "the openssl CLI is missing (Debian package openssl)"
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    return str(cert), str(key)


@pytest.fixture(scope="module")
def tls_gateway(module_gateways, cert_and_key):
    # Its start already waited for /healthz over HTTPS.
    return module_gateways.start("tls", tls=cert_and_key)


def wss_url(port, username):
    return f"wss://127.0.0.1:{port}/ws?username={username}"


async def connect_wss(port, username):
    return await Client.connect_url(wss_url(port, username), ssl=unverified_tls())


def test_https_endpoints(tls_gateway):
    status, _, body = tls_gateway.http("/healthz")
    assert (status, body.strip()) == (200, b"ok")
    assert tls_gateway.http("/readyz")[0] == 200
    assert "gateway_connections" in tls_gateway.metrics()
    assert tls_gateway.http("/")[0] == 200


async def test_wss_chat_round_trip(tls_gateway):
    a = await connect_wss(tls_gateway.port, "alice")
    b = await connect_wss(tls_gateway.port, "bob")
    assert a.welcome["username"] == "alice"
    await a.join("secure")
    await b.join("secure")
    await a.chat("over tls", room="secure")
    for c in (a, b):
        frame = await c.recv_chat("over tls")
        assert (frame["sender"], frame["room"]) == ("alice", "secure"), frame
    await b.send_json({"type": "echo", "content": "é" * 5000})
    assert (await b.recv_until("echo"))["content"] == "é" * 5000


def plain_healthz(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", "/healthz")
        return conn.getresponse().status
    finally:
        conn.close()


async def test_plain_http_to_tls_port_is_not_served(tls_gateway):
    with pytest.raises((http.client.HTTPException, OSError)):
        status = await asyncio.to_thread(plain_healthz, tls_gateway.port)
        pytest.fail(f"plain HTTP GET /healthz on the TLS port answered {status}")
    assert tls_gateway.http("/healthz")[0] == 200


async def test_plain_ws_to_tls_port_fails(tls_gateway):
    with pytest.raises((HandshakeRefused, ConnectionError, TimeoutError, socket.timeout)):
        raw = await asyncio.to_thread(RawClient.connect, tls_gateway.port, username="plain",
                                      timeout=3)
        raw.close()
        pytest.fail("a plain ws:// upgrade on the TLS port was accepted")
    with pytest.raises(Exception):   # whatever the library makes of a TLS alert
        ws = await connect_ws(f"ws://127.0.0.1:{tls_gateway.port}/ws?username=plain",
                              open_timeout=3)
        await ws.close()
        pytest.fail("websockets opened ws:// on the TLS port")
    c = await connect_wss(tls_gateway.port, "after")
    await c.assert_alive()


@pytest.mark.parametrize("given,missing", [("--tls-cert", "--tls-key"),
                                           ("--tls-key", "--tls-cert")])
def test_cert_and_key_go_together(cert_and_key, given, missing):
    path = cert_and_key[0] if given == "--tls-cert" else cert_and_key[1]
    result = run_gateway(["--listen", f"127.0.0.1:{free_port()}", given, path])
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and missing in lines[0], result.stderr


def test_unreadable_certificate_does_not_serve(tmp_path, cert_and_key):
    """Not covered by the README's flag rules (a value that parses but names
    no file): at least it must not start serving without TLS."""
    missing = tmp_path / "no-such-cert.pem"
    result = run_gateway(["--listen", f"127.0.0.1:{free_port()}", "--tls-cert", str(missing),
                          "--tls-key", cert_and_key[1]])
    assert result.returncode != 0, result
    assert str(missing) in result.stderr + result.stdout, result
