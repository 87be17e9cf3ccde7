"""An asyncio chat client for tests, on websockets 10.4 (legacy asyncio API).

Every receive has a timeout, so a gateway that never answers fails the test
quickly instead of hanging it. Frames are JSON objects per PROTOCOL.md."""

import asyncio
import json
import urllib.parse
import weakref

import websockets
import websockets.exceptions

DEFAULT_TIMEOUT = 5.0

# Connections a test left open; conftest closes them when the test ends, since
# an abandoned websockets client waits close_timeout for the TCP close. Weak:
# the event loop's tasks keep an open connection alive, not this set.
_open_sockets = weakref.WeakSet()


def announces(name, event, room=None):
    """A `where` for recv_until("system", ...): an announcement (coalesced
    ones included) that names `name`; event is connected, disconnected,
    joined or left; room None means a global one."""
    return lambda f: (f.get("event") == event and name in f.get("names", ())
                      and f.get("room") == room)


def ws_url(port, username=None, path="/ws"):
    if username is None:
        return f"ws://127.0.0.1:{port}{path}"
    return f"ws://127.0.0.1:{port}{path}?username={urllib.parse.quote(username, safe='')}"


def connect_ws(url, **kwargs):
    """websockets.connect with the options every test wants:
    no compression (the gateway offers none), no client-side pings (they would
    mask the gateway's keepalive), a bounded handshake, a large max_size, and an
    unbounded receive queue: with a bounded one the library stops reading from
    the socket while a test is not calling recv, and then answers neither the
    gateway's pings nor its close frame."""
    opts = dict(compression=None, ping_interval=None, open_timeout=DEFAULT_TIMEOUT,
                close_timeout=2, max_size=2**24, max_queue=None)
    opts.update(kwargs)
    return websockets.connect(url, **opts)


class Client:
    """A connected /ws client. Use `await Client.connect(port, "alice")`."""

    def __init__(self, ws, welcome):
        self.ws = ws
        _open_sockets.add(ws)
        self.welcome = welcome
        self.username = welcome.get("username") if welcome else None

    @classmethod
    async def connect(cls, port, username=None, wait_welcome=True, **kwargs):
        """Connect to /ws; by default wait for and keep the `welcome` frame."""
        return await cls.connect_url(ws_url(port, username), wait_welcome, **kwargs)

    @classmethod
    async def connect_url(cls, url, wait_welcome=True, **kwargs):
        """Connect to any URL (wss://, ?token=); see connect."""
        ws = await connect_ws(url, **kwargs)
        client = cls(ws, None)
        if wait_welcome:
            client.welcome = await client.recv_json()
            assert client.welcome.get("type") == "welcome", \
                f"first frame is not welcome: {client.welcome}"
            client.username = client.welcome.get("username")
        return client

    async def send_json(self, obj):
        await self.ws.send(json.dumps(obj))

    async def send_raw(self, data):
        """A str goes as one text frame, bytes as one binary frame."""
        await self.ws.send(data)

    async def recv_json(self, timeout=DEFAULT_TIMEOUT):
        """Next frame as a dict; fails on timeout, close, binary or non-JSON."""
        try:
            raw = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.username}: no frame within {timeout}s") from None
        except websockets.exceptions.ConnectionClosed as exc:
            raise AssertionError(f"{self.username}: connection closed while waiting for a "
                                 f"frame: code {exc.code} {exc.reason!r}") from None
        assert isinstance(raw, str), f"{self.username}: binary frame {raw!r}"
        frame = json.loads(raw)
        assert isinstance(frame, dict), f"{self.username}: frame is not an object: {raw}"
        return frame

    async def recv_until(self, type_, timeout=DEFAULT_TIMEOUT, where=None, allow_error=False):
        """The next frame of type type_ (for which where(frame) holds),
        skipping others such as client_count and system frames.

        An `error` frame fails at once (unless waiting for errors or
        allow_error), so a rejected request shows up as itself, not as a
        timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped = []
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"{self.username}: no {type_!r} frame within {timeout}s; "
                                     f"skipped {skipped[-10:]}")
            try:
                frame = await self.recv_json(left)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; waiting for {type_!r}, skipped "
                                     f"{skipped[-10:]}") from None
            if frame.get("type") == type_ and (where is None or where(frame)):
                return frame
            if frame.get("type") == "error" and type_ != "error" and not allow_error:
                raise AssertionError(f"{self.username}: error frame {frame} while "
                                     f"waiting for {type_!r}")
            skipped.append(frame)

    async def expect_silence(self, type_, seconds, allowed=None):
        """Assert no frame of type type_ arrives within seconds, other than
        ones for which allowed(frame) holds; frames of other types are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                frame = await self.recv_json(left)
            except AssertionError:
                if self.ws.closed:
                    raise
                return
            if frame.get("type") == type_:
                assert allowed is not None and allowed(frame), \
                    f"{self.username}: unexpected {frame}"

    async def request(self, obj, reply_type, timeout=DEFAULT_TIMEOUT):
        await self.send_json(obj)
        return await self.recv_until(reply_type, timeout)

    async def join(self, room, since=None, timeout=DEFAULT_TIMEOUT):
        """join_room; returns the `joined` answer for that room."""
        msg = {"type": "join_room", "room": room}
        if since is not None:
            msg["since"] = since
        await self.send_json(msg)
        return await self.recv_until("joined", timeout, where=lambda f: f.get("room") == room)

    async def leave(self, room, timeout=DEFAULT_TIMEOUT):
        await self.send_json({"type": "leave_room", "room": room})
        return await self.recv_until("left", timeout, where=lambda f: f.get("room") == room)

    async def chat(self, content, room=None):
        msg = {"type": "chat", "content": content}
        if room is not None:
            msg["room"] = room
        await self.send_json(msg)

    async def recv_chat(self, content=None, timeout=DEFAULT_TIMEOUT):
        """The next chat frame (with that content, if given)."""
        return await self.recv_until(
            "chat", timeout, where=None if content is None else lambda f: f.get("content") == content)

    async def presence(self, room, timeout=DEFAULT_TIMEOUT):
        frame = await self.request({"type": "presence", "room": room}, "presence", timeout)
        assert frame.get("room") == room, frame
        return frame["users"]

    async def expect_error(self, code, timeout=DEFAULT_TIMEOUT):
        frame = await self.recv_until("error", timeout)
        if code is not None:
            assert frame.get("code") == code, f"expected error {code!r}, got {frame}"
        assert isinstance(frame.get("content"), str) and frame["content"], \
            f"error without a sentence in content: {frame}"
        return frame

    async def assert_alive(self, timeout=DEFAULT_TIMEOUT):
        """The connection is open and served: ping gets pong."""
        await self.request({"type": "ping"}, "pong", timeout)

    async def expect_closed(self, timeout=DEFAULT_TIMEOUT):
        """Drain frames until the gateway closes; returns the close code."""
        try:
            await asyncio.wait_for(self._drain(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.username}: still open after {timeout}s") from None
        return self.ws.close_code

    async def _drain(self):
        try:
            while True:
                await self.ws.recv()
        except websockets.exceptions.ConnectionClosed:
            pass
        await self.ws.wait_closed()

    async def close(self):
        await self.ws.close()


async def close_leftovers(timeout=1.0):
    """Close every connection still open (a close handshake, else abort the TCP)."""
    async def close_one(ws):
        try:
            await asyncio.wait_for(ws.close(), timeout)
        except (asyncio.TimeoutError, OSError):
            ws.transport.abort()
    await asyncio.gather(*(close_one(ws) for ws in list(_open_sockets) if not ws.closed))


async def connect_many(port, usernames, **kwargs):
    """Connect several clients concurrently; returns them in the same order."""
    return list(await asyncio.gather(*(Client.connect(port, u, **kwargs) for u in usernames)))


async def close_all(clients):
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
