"""Small network helpers shared by the process wrappers and the tests:
free ports, plain HTTP GETs, bounded polling and Prometheus parsing."""

import http.client
import re
import socket
import ssl
import time


def free_port():
    """A TCP port on 127.0.0.1 that nobody listened on a moment ago.

    Other people run gateways and redis-servers on this machine, so tests never
    use fixed ports; the small race between closing this socket and the real
    server binding it is handled by the process wrappers retrying."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_is_free(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def unverified_tls():
    """A client TLS context that accepts the tests' self-signed certificates."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http_get(port, path, headers=None, timeout=5.0, tls=False):
    """GET http(s)://127.0.0.1:port/path; returns (status, headers dict, body bytes)."""
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout,
                                           context=unverified_tls())
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body
    finally:
        conn.close()


class GiveUp(Exception):
    """Raised by a wait_until predicate when waiting longer cannot help
    (the server process has exited)."""


def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Poll predicate() until it returns a truthy value or timeout seconds pass.

    Exceptions from predicate count as 'not yet' (a server still starting
    refuses connections), except GiveUp, which ends the wait at once. Returns
    the truthy value; raises AssertionError with the last exception otherwise."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except GiveUp as exc:
            raise AssertionError(f"gave up waiting for {what}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
            last_exc = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + (f" (last error: {last_exc!r})" if last_exc else ""))
        time.sleep(interval)


_METRIC_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)")


def parse_metrics(text):
    """Prometheus text format -> {'name{labels}': float}; comments skipped."""
    out = {}
    for line in text.splitlines():
        m = _METRIC_LINE.match(line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def metrics(port, tls=False):
    status, _, body = http_get(port, "/metrics", tls=tls)
    assert status == 200, f"/metrics answered {status}"
    return parse_metrics(body.decode())
