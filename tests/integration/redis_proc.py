"""A private redis-server for cluster tests: free port, own directory, no
persistence, so a restart starts empty, like a replaced Redis node."""

import pathlib
import shutil
import socket

from netutil import GiveUp, free_port, port_is_free, wait_until
from process import Process

START_ATTEMPTS = 3


def _read_reply(f):
    """One RESP2 reply from a buffered socket file, as Python values."""
    line = f.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError(f"short reply from redis: {line!r}")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(f"redis error: {rest.decode()}")
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2].decode(errors="replace")
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [_read_reply(f) for _ in range(n)]
    raise ConnectionError(f"unexpected reply from redis: {line!r}")


def _encode(args):
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def redis_command(port, *args, timeout=2.0, password=None):
    """Run one command on a fresh connection, e.g. redis_command(p, "PUBSUB", "CHANNELS");
    after AUTH password when one is given."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with s.makefile("rb") as f:
            if password is not None:
                s.sendall(_encode(("AUTH", password)))
                _read_reply(f)
            s.sendall(_encode(args))
            return _read_reply(f)


def redis_asking(port, *args, timeout=2.0):
    """One command after ASKING on the same connection: a cluster node that
    is importing a slot answers it for the slot's keys (else MOVED)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with s.makefile("rb") as f:
            s.sendall(_encode(("ASKING",)) + _encode(args))
            _read_reply(f)
            return _read_reply(f)


def redis_ping(port, timeout=1.0, password=None):
    return redis_command(port, "PING", timeout=timeout, password=password) == "PONG"


class RedisServer:
    """extra: more redis-server flags, after the defaults so they win (e.g.
    ["--appendonly", "yes"] for a server whose restart keeps its data).
    password: requirepass (and masterauth, for a replica of a server with
    the same password); the harness's own commands AUTH with it."""

    def __init__(self, workdir, extra=(), password=None):
        self.extra = list(extra)
        self.password = password
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = None
        self.process = None
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"

    def argv(self):
        """The command line (the port is chosen): a subclass may run another kind."""
        secret = ["--requirepass", self.password, "--masterauth", self.password] \
            if self.password is not None else []
        return [self.binary, "--port", self.port, "--bind", "127.0.0.1",
                "--dir", self.workdir, "--save", "", "--appendonly", "no", *secret, *self.extra]

    def _launch(self, timeout):
        self.process = Process(self.argv(), self.workdir / "redis.log").start()
        try:
            wait_until(self._ready, timeout, what=f"redis-server on port {self.port}")
        except AssertionError:
            self.process.kill()
            raise

    def _ready(self):
        if not self.process.running():
            raise GiveUp("redis-server exited")
        return redis_ping(self.port, password=self.password)

    def start(self, timeout=10.0):
        """Start on a fresh free port (retrying if another process grabbed it)."""
        for attempt in range(START_ATTEMPTS):
            self.port = free_port()
            try:
                self._launch(timeout)
                return self
            except AssertionError:
                if attempt == START_ATTEMPTS - 1 or port_is_free(self.port):
                    raise AssertionError(f"redis-server failed; log:\n{self.log_tail()}")
        return self

    def restart(self, timeout=10.0):
        """Start again on the same port (after stop or kill): gateways must reconnect."""
        assert not self.running(), "restart() of a running redis-server"
        self._launch(timeout)
        return self

    def command(self, *args):
        return redis_command(self.port, *args, password=self.password)

    def stop(self, timeout=10.0):
        return self.process.stop(timeout) if self.process else None

    def kill(self):
        return self.process.kill() if self.process else None

    def running(self):
        return self.process is not None and self.process.running()

    def log_tail(self, lines=100):
        return self.process.log_tail(lines) if self.process else ""
