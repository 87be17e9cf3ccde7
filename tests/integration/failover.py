"""The failover measurement shared by test_redis_sentinel.py and
tests/bench/sentinel_failover.py: one client sends a chat (with a cid) to a
room every `interval` seconds while the primary is killed; every answer is
recorded: its own chat back (delivered) or `error` `unavailable`, matched by
cid. Others in the room record what they receive.

Failover time: from the kill to the first chat sent after it that came back
delivered to its sender."""

import asyncio
import time

from wsclient import Client


class _Reader:
    """Reads one client's frames into lists until stopped."""

    def __init__(self, client, room):
        self.client = client
        self.room = room
        self.chats = []          # (monotonic time, frame) of room chats, in arrival order
        self.unavailable = {}    # cid -> monotonic time
        self.other_errors = []
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            frame = await self.client.recv_json(timeout=3600)
            now = time.monotonic()
            if frame.get("type") == "chat" and frame.get("room") == self.room:
                self.chats.append((now, frame))
            elif frame.get("type") == "error":
                if frame.get("code") == "unavailable" and frame.get("cid"):
                    self.unavailable[frame["cid"]] = now
                else:
                    self.other_errors.append(frame)

    def delivered(self):
        """cid -> (time, frame) of chats that carry a cid."""
        return {f["cid"]: (t, f) for t, f in self.chats if f.get("cid")}

    async def stop(self):
        self.task.cancel()
        try:
            await self.task
        except (asyncio.CancelledError, AssertionError):
            pass


async def measure_failover(sender: Client, receivers, room, kill, interval=0.05,
                           before=5, after=10, deadline=60.0, prefix="m"):
    """Sends `before` chats (all must be delivered), calls kill(), and keeps
    sending every interval until one sent after the kill is delivered, then
    `after` more; waits for every chat to be answered and for the receivers
    to have every delivered one. Returns a dict of what happened."""
    readers = [_Reader(sender, room)] + [_Reader(r, room) for r in receivers]
    own = readers[0]
    sent = []   # (cid, monotonic time sent)
    loop_deadline = time.monotonic() + deadline
    n = 0

    async def send():
        nonlocal n
        cid = f"{prefix}{n:05d}"
        n += 1
        sent.append((cid, time.monotonic()))
        await sender.send_json({"type": "chat", "room": room, "content": cid, "cid": cid})
        return cid

    def answered(cid):
        return cid in own.delivered() or cid in own.unavailable

    try:
        for _ in range(before):
            await send()
            await asyncio.sleep(interval)
        while not all(answered(c) for c, _ in sent):
            assert time.monotonic() < loop_deadline, "chats before the kill unanswered"
            await asyncio.sleep(0.01)
        assert not own.unavailable, f"unavailable before the kill: {own.unavailable}"

        t_kill = time.monotonic()
        await asyncio.to_thread(kill)
        first_delivery = None
        extra = 0
        while extra < after:
            assert time.monotonic() < loop_deadline, \
                f"no chat delivered within {deadline}s of the kill"
            await send()
            await asyncio.sleep(interval)
            if first_delivery is None:
                times = [own.delivered()[c][0] for c, t in sent
                         if t >= t_kill and c in own.delivered()]
                if times:
                    first_delivery = min(times)
            else:
                extra += 1
        # Every chat gets its answer within a few seconds (a request in
        # flight on a dead connection fails when the connection does).
        answer_deadline = time.monotonic() + 10
        while not all(answered(c) for c, _ in sent) and time.monotonic() < answer_deadline:
            await asyncio.sleep(0.02)
        delivered = own.delivered()
        want = [c for c, _ in sent if c in delivered]
        receive_deadline = time.monotonic() + 10
        while time.monotonic() < receive_deadline and not all(
                set(want) <= set(r.delivered()) for r in readers[1:]):
            await asyncio.sleep(0.02)
    finally:
        for r in readers:
            await r.stop()

    after_kill = [(c, t) for c, t in sent if t >= t_kill]
    return {
        "sent": len(sent),
        "sent_after_kill": len(after_kill),
        "delivered": want,
        "ids": {c: delivered[c][1]["id"] for c in want},
        "unavailable": sorted(own.unavailable),
        "both": sorted(set(own.unavailable) & set(delivered)),
        "silent": [c for c, _ in sent if c not in delivered and c not in own.unavailable],
        "failover_s": first_delivery - t_kill,
        "first_unavailable_s": (min(own.unavailable.values()) - t_kill) if own.unavailable else None,
        "received": [[f["cid"] for _, f in r.chats if f.get("cid")] for r in readers[1:]],
        "other_errors": own.other_errors,
    }
