"""The server API from a test: gateways started with --api-listen and a key
file, and a small blocking JSON client on http.client (what a backend's
curl does)."""

import http.client
import json
import pathlib

from netutil import free_port

KEY = "test-key-0123456789abcdef"


def api_flags(workdir, port=None, key=KEY):
    """The flags of a gateway with the API on a free port: (flags, port)."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    key_file = workdir / f"api-key-{free_port()}"
    key_file.write_text(key + "\n")
    port = port or free_port()
    return ["--api-listen", f"127.0.0.1:{port}", "--api-key-file", str(key_file)], port


def start_with_api(gateways, tmp_path, name, redis_port=None, extra=(), redis_url=None):
    """A gateway of the factory with the API on, on the Redis of redis_port
    or of redis_url (a redis+cluster:// URL, say), else a single node;
    returns (gateway, Api)."""
    flags, port = api_flags(tmp_path / f"api-{name}")
    if redis_url:
        flags += ["--redis", redis_url]
    gw = gateways.start(name, redis_port, [*flags, *extra],
                        wait_ready=redis_port is not None or redis_url is not None)
    return gw, Api(port)


class Api:
    def __init__(self, port, key=KEY):
        self.port = port
        self.key = key

    def request(self, method, path, body=None, key=None, raw=None, headers=None, timeout=5.0):
        """(status, decoded JSON or None, raw body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            key = self.key if key is None else key
            if key:
                hdrs["Authorization"] = f"Bearer {key}"
            data = raw if raw is not None else (json.dumps(body).encode()
                                                 if body is not None else None)
            if data is not None:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            payload = resp.read()
            try:
                decoded = json.loads(payload) if payload else None
            except ValueError:
                decoded = None
            return resp.status, decoded, payload
        finally:
            conn.close()

    def post(self, path, body, **kw):
        return self.request("POST", path, body, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def ok(self, method, path, body=None):
        """The JSON answer of a request that must succeed."""
        status, decoded, payload = self.request(method, path, body)
        assert status == 200, f"{method} {path} -> {status} {payload!r}"
        return decoded
