"""A room member that behaves like a browser behind a load balancer: when its
gateway closes the connection it reconnects through the load balancer and
rejoins with `since` = the last message id it saw, so it should end up with
every message of the room exactly once, in the room's order."""

import asyncio
import json

import websockets.exceptions

from wsclient import Client

RECONNECT_ATTEMPTS = 20


class Member:
    """reconnect_gate: an asyncio.Event the member waits for before it
    reconnects (a browser's backoff, held as long as a test needs)."""

    def __init__(self, lb_port, name, room, reconnect_gate=None):
        self.lb_port = lb_port
        self.name = name
        self.room = room
        self.reconnect_gate = reconnect_gate
        self.client = None
        self.ids = []          # chat ids of the room, in the order received
        self.contents = []
        self.gateways = []     # the gateway of each connection, from `welcome`
        self.close_codes = []  # close code of each connection the gateway ended
        self.recovered = 0     # messages that came from history on a rejoin
        self.rejoins = []      # (since, ids of the history) per rejoin, for failures

    async def connect(self):
        """Connect through the load balancer and join (with `since` once a
        message was seen); history counts as received."""
        client = await Client.connect(self.lb_port, self.name)
        since = self.ids[-1] if self.ids else None
        joined = await client.join(self.room, since=since)
        assert joined.get("truncated") is False, f"{self.name}: history truncated: {joined}"
        if since is not None:
            self.recovered += len(joined["history"])
            self.rejoins.append((since, [m["id"] for m in joined["history"]]))
        for frame in joined["history"]:
            self._take(frame)
        self.client = client
        self.gateways.append(client.welcome["gateway"])
        return self

    async def say(self, content):
        await self.client.chat(content, room=self.room)

    async def follow(self, total):
        """Read the room until total distinct chat messages have arrived
        (a duplicate must not stand in for a missing one), reconnecting
        whenever the gateway closes the connection. (Counting, not waiting
        for a last message: messages sent one after the other through
        different gateways may reach the room in either order.)"""
        while len(set(self.ids)) < total:
            try:
                raw = await self.client.ws.recv()
            except websockets.exceptions.ConnectionClosed as exc:
                self.close_codes.append(exc.rcvd.code if exc.rcvd else None)
                if self.reconnect_gate is not None:
                    await self.reconnect_gate.wait()
                await self._reconnect()
                continue
            frame = json.loads(raw)
            assert frame.get("type") != "error", f"{self.name}: {frame}"
            if frame.get("type") == "chat" and frame.get("room") == self.room:
                self._take(frame)

    async def _reconnect(self):
        last_error = None
        for attempt in range(RECONNECT_ATTEMPTS):
            try:
                await self.connect()
                return
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                    AssertionError) as exc:
                # A gateway still shutting down may take the connection and
                # close it, or the load balancer may answer 502 for a moment.
                last_error = exc
                await asyncio.sleep(0.1 * (attempt + 1))
        raise AssertionError(f"{self.name}: no reconnect in {RECONNECT_ATTEMPTS} attempts: "
                             f"{last_error!r}")

    def _take(self, frame):
        self.ids.append(frame["id"])
        self.contents.append(frame["content"])

    async def close(self):
        if self.client is not None:
            await self.client.close()
