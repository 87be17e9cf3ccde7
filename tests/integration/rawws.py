"""A minimal blocking WebSocket client on a plain socket, for what the
websockets library will not do on purpose: read a refused handshake's body,
never answer pings, stop reading entirely (with a small receive buffer), or
send frames a well-behaved client never sends. Call blocking methods from
async tests through asyncio.to_thread."""

import base64
import json
import os
import socket
import struct
import time
import urllib.parse

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(Exception):
    def __init__(self, status, headers, body):
        super().__init__(f"HTTP {status}: {body!r}")
        self.status, self.headers, self.body = status, headers, body


def _read_http_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed during handshake: {data!r}")
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def _read_body(sock, headers, rest, timeout):
    """A refused handshake's body: Content-Length bytes, else until EOF or idle.
    A body shorter than its Content-Length is an error, not a short reason."""
    length = headers.get("content-length")
    sock.settimeout(timeout)
    body = rest
    try:
        while length is None or len(body) < int(length):
            chunk = sock.recv(4096)
            if not chunk:
                break
            body += chunk
    except socket.timeout:
        pass
    if length is not None and len(body) < int(length):
        raise ConnectionError(f"refusal body cut short: {len(body)} of {length} bytes "
                              f"within {timeout}s: {body!r}")
    return body


def exchange(port, data, timeout=3.0):
    """Sends raw bytes (anything, HTTP or not) and reads what comes back.
    Returns (answer, ended): ended is False when the gateway had not ended
    the connection timeout seconds after the bytes went out."""
    deadline = time.monotonic() + timeout
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass   # closed while we were still sending: read what it said
        answer = b""
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return answer, True
            except socket.timeout:
                break
            if not chunk:
                return answer, True
            answer += chunk
        return answer, False


def expect_refused(port, **kwargs):
    """The HandshakeRefused of an upgrade that must fail (RawClient.connect's
    arguments); fails the test, showing the first frame, if it succeeds."""
    try:
        raw = RawClient.connect(port, **kwargs)
    except HandshakeRefused as refused:
        return refused
    try:
        first = raw.recv_frame(2.0)
    except (TimeoutError, EOFError, OSError) as exc:
        first = exc
    finally:
        raw.close()
    raise AssertionError(f"upgrade {kwargs} accepted; first frame: {first!r}")


def one_line_reason(refused):
    """The refusal body as the README promises it: one line of text."""
    reason = refused.body.decode(errors="replace").strip()
    assert reason, f"HTTP {refused.status} without a reason"
    assert "\n" not in reason, f"reason is not one line: {reason!r}"
    assert not reason.startswith("<"), f"an HTML page is not a one-line reason: {reason!r}"
    return reason


def frame_bytes(opcode, payload, fin=True, masked=True, rsv=0):
    """One frame's bytes, masked as RFC 6455 requires from clients unless
    told otherwise; rsv sets the reserved bits (0 to 7), which no extension
    here defines."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytes([(0x80 if fin else 0) | rsv << 4 | opcode])
    mask_bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask_bit | 127]) + struct.pack("!Q", n)
    if masked:
        mask = os.urandom(4)
        head += mask
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + payload


class RawClient:
    def __init__(self, sock, leftover=b""):
        self.sock = sock
        self.buf = leftover

    @classmethod
    def connect(cls, port, path="/ws", username=None, query=None, headers=None,
                rcvbuf=None, timeout=5.0, key=None):
        """Open a WebSocket; raises HandshakeRefused for any status but 101.

        query, if given, is sent verbatim (e.g. "username=%FF"); username is
        percent-encoded. rcvbuf shrinks SO_RCVBUF before connecting so a
        client that does not read fills up quickly. key replaces the random
        Sec-WebSocket-Key (None: a valid one)."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        try:
            sock.connect(("127.0.0.1", port))
            if query is None and username is not None:
                query = "username=" + urllib.parse.quote(username, safe="")
            target = path + ("?" + query if query else "")
            if key is None:
                key = base64.b64encode(os.urandom(16)).decode()
            lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{port}",
                     "Upgrade: websocket", "Connection: Upgrade",
                     f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
            lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            status, resp_headers, rest = _read_http_head(sock)
            if status != 101:
                raise HandshakeRefused(status, resp_headers, _read_body(sock, resp_headers, rest, 1.0))
        except BaseException:
            sock.close()
            raise
        return cls(sock, rest)

    def send_frame(self, opcode, payload, fin=True, masked=True, rsv=0):
        self.sock.sendall(frame_bytes(opcode, payload, fin, masked, rsv))

    def send_json(self, obj):
        self.send_frame(OP_TEXT, json.dumps(obj))

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no complete frame before the deadline")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed by the gateway")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv_frame(self, timeout=5.0):
        """(fin, opcode, payload) of the next frame; EOFError on end of stream,
        TimeoutError when none arrives in time."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_exact(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8, deadline))[0]
        mask = self._read_exact(4, deadline) if b1 & 0x80 else None
        payload = self._read_exact(n, deadline)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_json(self, timeout=5.0):
        """The next text frame as a dict, skipping control frames."""
        deadline = time.monotonic() + timeout
        while True:
            _, opcode, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            if opcode == OP_TEXT:
                return json.loads(payload)
            if opcode == OP_CLOSE:
                raise EOFError(f"closed by the gateway: {payload!r}")

    def wait_closed(self, timeout=5.0, answer_pings=False):
        """Read until the gateway ends the connection, without ever answering
        pings unless asked. Returns the close code, or None when the TCP
        connection ended without a close frame (reset or plain EOF)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                _, opcode, payload = self.recv_frame(max(deadline - time.monotonic(), 0.001))
            except EOFError:
                return None
            except ConnectionResetError:
                return None
            if opcode == OP_CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            if opcode == OP_PING and answer_pings:
                self.send_frame(OP_PONG, payload)

    def close(self):
        self.sock.close()
