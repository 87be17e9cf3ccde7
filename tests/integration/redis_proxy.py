"""A TCP proxy between gateways and a redis-server, for failures Redis itself
cannot be asked for: a subscriber connection that stays up but no longer
delivers (stall_subscribers), and a gateway whose --redis address now leads
to another server, as after a failover behind a fixed address (retarget and
drop_all). Threads, one pair per connection: tests open a handful."""

import socket
import threading

from netutil import free_port


class _Link:
    """One proxied connection: client <-> server."""

    def __init__(self, client, server):
        self.client = client
        self.server = server
        self.subscriber = False   # it sent SUBSCRIBE
        self.stalled = False      # server -> client bytes are dropped

    def close(self):
        for s in (self.client, self.server):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class RedisProxy:
    def __init__(self, target_port):
        self.target_port = target_port
        self.port = None
        self._links = []
        self._lock = threading.Lock()
        self._listener = None
        self._closed = False

    def start(self):
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.port = free_port()
        self._listener.bind(("127.0.0.1", self.port))
        self._listener.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self):
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                server.settimeout(None)
            except OSError:
                client.close()   # like a server that is not there
                continue
            link = _Link(client, server)
            with self._lock:
                self._links.append(link)
            threading.Thread(target=self._pump, args=(link, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(link, False), daemon=True).start()

    def _pump(self, link, upstream):
        src, dst = (link.client, link.server) if upstream else (link.server, link.client)
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if upstream and b"SUBSCRIBE" in data:
                    link.subscriber = True
                if not upstream and link.stalled:
                    continue   # Redis wrote it; the gateway never sees it
                dst.sendall(data)
        except OSError:
            pass
        link.close()
        with self._lock:
            if link in self._links:
                self._links.remove(link)

    def stall_subscribers(self):
        """Stop delivering to the subscriber connections open now (their
        TCP connections stay up); returns how many."""
        with self._lock:
            subs = [link for link in self._links if link.subscriber]
        for link in subs:
            link.stalled = True
        return len(subs)

    def retarget(self, port):
        """New connections go to this redis-server."""
        self.target_port = port

    def drop_all(self):
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()

    def close(self):
        self._closed = True
        self._listener.close()
        self.drop_all()
