"""Slots moving under the gateways, step by step, on a real Redis Cluster:
every command a gateway sends follows MOVED and ASK, the plain ones too
(this gateway's room set, the presence entries a gateway registers again,
a room's system frames), not only the Lua scripts; and a command of several
keys answered TRYAGAIN while a slot's keys are half moved is sent again.

Each move is split into its steps, with traffic in between: the slot
opened (CLUSTER SETSLOT IMPORTING on the new owner, MIGRATING on the old),
its keys MIGRATEd, then closed (SETSLOT NODE). While it is open, a key that
left the old owner is answered ASK there; once closed, a gateway whose map
is still the old one is answered MOVED. Afterwards presence is exact on the
new owner (Redis's hashes and the presence answer), each gateway's room set
on the {global} node lists exactly its rooms, and the members that stayed
got every chat once, in order, and every join and leave notice once."""

import asyncio
import json

import pytest
import websockets.exceptions

from aio import eventually
from redis_cluster_proc import (close_slot, migrate_keys, move_slot, open_slot, room_key,
                               shard_channels)
from redis_proc import redis_asking
from test_cluster_resilience import assert_exactly_once_in_order, send_chat
from test_redis_cluster_gateways import seed_node, start_gateways
from wsclient import Client

GATEWAYS_KEY = "chat:gateways{global}"
# The announcer lets a room's notices out once a second, merged over the
# gateways: events this far apart are in different frames, and a batch
# held back meanwhile has gone out after this long.
ANNOUNCE_SETTLE = 2.5


def room_set(gw_id):
    return f"chat:gwrooms:{{global}}{gw_id}"


def slot_of(redis_cluster, key):
    return redis_cluster.primaries()[0].command("CLUSTER", "KEYSLOT", key)


def pairs(reply):
    return dict(zip(reply[::2], reply[1::2]))


def flush(redis_cluster):
    for node in redis_cluster.primaries():
        node.command("FLUSHALL")


class Watcher:
    """A member that only listens: every frame it gets, kept."""

    def __init__(self, client):
        self.client = client
        self.frames = []
        self.task = None

    async def _listen(self):
        try:
            while True:
                self.frames.append(json.loads(await self.client.ws.recv()))
        except websockets.exceptions.ConnectionClosed:
            pass

    def chats(self, room):
        return [f for f in self.frames if f.get("type") == "chat" and f.get("room") == room]

    def notices(self, room, event):
        """(how many events, the names given) of the room's notices of event."""
        frames = [f for f in self.frames if f.get("type") == "system" and f.get("room") == room
                  and f.get("event") == event]
        return sum(f["count"] for f in frames), sorted(n for f in frames for n in f["names"])


async def watch(*clients):
    """Watchers of clients, from now on: the notices of what came before have
    gone out (ANNOUNCE_SETTLE), and what arrived meanwhile is read away."""
    await asyncio.sleep(ANNOUNCE_SETTLE)
    watchers = []
    for c in clients:
        while True:
            try:
                await asyncio.wait_for(c.ws.recv(), 0.3)
            except asyncio.TimeoutError:
                break
        w = Watcher(c)
        w.task = asyncio.create_task(w._listen())
        watchers.append(w)
    return watchers


async def assert_notices(watcher, room, joined, left):
    """watcher got exactly one notice of each join (names in joined) and
    leave (names in left) of room."""
    want = {"joined": (len(joined), sorted(joined)), "left": (len(left), sorted(left))}

    async def got():
        return {e: watcher.notices(room, e) for e in want}

    await eventually(got, lambda g: all(g[e][0] >= want[e][0] for e in want), 15,
                     f"{watcher.client.username}'s notices of {room}")
    await asyncio.sleep(ANNOUNCE_SETTLE)  # nothing more comes
    assert await got() == want, f"{watcher.client.username}: notices of {room}"


async def assert_chats(watcher, room, expected):
    async def got():
        return watcher.chats(room)

    await eventually(got, lambda g: len(g) >= len(expected), 15,
                     f"{watcher.client.username}'s chats in {room}")
    assert_exactly_once_in_order(watcher.client.username, watcher.chats(room), expected)


async def chat_once(sender, room, content):
    """A chat the gateway must take the first time (no `unavailable`)."""
    await sender.chat(content, room=room)
    return await sender.recv_until("chat", 10, where=lambda f: f.get("content") == content)


def presence_on(node, room):
    """(entries, names) of room's presence hashes on node (which may be
    importing the room's slot)."""
    return tuple(pairs(redis_asking(node.port, "HGETALL", room_key(kind, room)))
                 for kind in ("presence", "pnames"))


def expected_presence(members):
    """members: {gateway id: [names]} -> what presence_on reads."""
    return ({f"{gw}\t{n}": "1" for gw, names in members.items() for n in names},
            {n: "1" for names in members.values() for n in names})


def assert_no_lost_commands(*gws):
    """Nothing a gateway sent failed (a MOVED, ASK or TRYAGAIN not
    followed, a script's write refused mid-way...): each is logged."""
    for gw in gws:
        lost = [line for line in gw.log_text().splitlines()
                if "redis: " in line and " failed: " in line]
        assert not lost, f"{gw.name}: {lost}"


async def reconnected(gws, before):
    """Every gateway of gws reconnected since the reconnect counts before,
    and is up."""
    def now():
        return [gw.metrics() for gw in gws]

    await eventually(lambda: asyncio.to_thread(now),
                     lambda ms: all(m["gateway_redis_reconnects_total"] > b and
                                    m["gateway_redis_up"] == 1 for m, b in zip(ms, before)),
                     20, "the gateways reconnected")


def room_slot_move(redis_cluster, room):
    """room's slot, the primary that owns it and another to move it to."""
    slot = slot_of(redis_cluster, room_key("room", room))
    src = redis_cluster.owner_of_slot(slot)
    return slot, src, next(n for n in redis_cluster.primaries() if n is not src)


async def room_to_move(gateways, redis_cluster, room):
    """Two gateways and room, whose slot is to move from primary src to dst:
    members w1 (on gw1) and w2 and a sender s (on gw2), the room's stream
    made with a first chat, and watchers of w1 and w2 from then on."""
    flush(redis_cluster)
    gw1, gw2 = start_gateways(gateways, redis_cluster, count=2, extra=["--rate-limit", "0"])
    slot, src, dst = room_slot_move(redis_cluster, room)
    w1, w2 = await Client.connect(gw1.port, "w1"), await Client.connect(gw2.port, "w2")
    sender = await Client.connect(gw2.port, "s")
    for c in (w1, w2, sender):
        await c.join(room)
    await send_chat(sender, "c0", [], room=room)
    return gw1, gw2, slot, src, dst, sender, await watch(w1, w2)


@pytest.mark.timeout(120)
async def test_room_slot_moved_step_by_step(gateways, redis_cluster):
    """A room's slot moves with members joining and leaving at each step,
    and the gateways connecting again while its keys are on the new owner
    but the slot is not yet: they register their members there (HSET and
    HINCRBY answered ASK). A chat sent while the slot is open waits out
    TRYAGAIN and goes once it is closed."""
    room = "moving"
    gw1, gw2, slot, src, dst, sender, watchers = await room_to_move(gateways, redis_cluster, room)

    open_slot(slot, src, dst)
    p1 = await Client.connect(gw1.port, "p1")
    await p1.join(room)  # on the old owner, which still has the keys
    migrate_keys(slot, src, dst)
    p2 = await Client.connect(gw2.port, "p2")
    await p2.join(room)  # ASK: the keys are on the new owner
    await p1.leave(room)
    # Notices are best effort: let them out before the outage below.
    await asyncio.sleep(ANNOUNCE_SETTLE)
    before = [gw.metrics()["gateway_redis_reconnects_total"] for gw in (gw1, gw2)]
    # The seed's subscribers: a lost primary alone would not restart the link.
    seed = seed_node(redis_cluster, gw1)
    assert seed is seed_node(redis_cluster, gw2)
    assert seed.command("CLIENT", "KILL", "TYPE", "pubsub") >= 2
    await reconnected([gw1, gw2], before)
    # Registered again from scratch, each entry answered ASK by the old owner.
    await eventually(lambda: asyncio.to_thread(presence_on, dst, room),
                     lambda p: p == expected_presence({"gw1": ["w1"], "gw2": ["w2", "s", "p2"]}),
                     10, "presence registered again on the new owner")
    p3 = await Client.connect(gw1.port, "p3")
    await p3.join(room)
    # The chat script's keys are half there (TRYAGAIN) until the slot closes.
    chat = asyncio.create_task(chat_once(sender, room, "c1"))
    await asyncio.sleep(0.2)
    await asyncio.to_thread(close_slot, redis_cluster, slot, src, dst)
    await chat
    await send_chat(sender, "c2", [], room=room)

    members = {"gw1": ["w1", "p3"], "gw2": ["w2", "s", "p2"]}
    assert presence_on(dst, room) == expected_presence(members)
    assert await sender.presence(room) == sorted(n for ns in members.values() for n in ns)
    home = redis_cluster.owner_of(GATEWAYS_KEY)
    assert [home.command("SMEMBERS", room_set(gw)) for gw in ("gw1", "gw2")] == [[room], [room]]
    for w in watchers:
        await assert_chats(w, room, ["c1", "c2"])
        await assert_notices(w, room, joined=["p1", "p2", "p3"], left=["p1"])
    assert_no_lost_commands(gw1, gw2)


@pytest.mark.timeout(120)
async def test_room_slot_moved_behind_a_gateways_back(gateways, redis_cluster):
    """gw1 sleeps (SIGSTOP) while a room's slot moves and its heartbeat
    lapses, so that gw2 withdraws it from the room: it wakes with the old
    map, learns it was reaped and registers its members again, on the old
    owner, which answers MOVED, before it reads the new map."""
    room = "moved"
    gw1, gw2, slot, src, dst, sender, watchers = await room_to_move(gateways, redis_cluster, room)

    with gw1.paused():
        await asyncio.to_thread(move_slot, redis_cluster, slot, src, dst)
        redis_cluster.owner_of(GATEWAYS_KEY).command("ZADD", GATEWAYS_KEY, 0, "gw1")
        # Notices are in no stream: one published before gw2 subscribed on
        # the new owner would be lost to w2.
        await eventually(lambda: asyncio.to_thread(shard_channels, dst),
                         lambda chans: chans.get(room_key("room", room)) == 1, 10,
                         "gw2 subscribed on the new owner")
        p2 = await Client.connect(gw2.port, "p2")
        await p2.join(room)
        await send_chat(sender, "c1", [], room=room)
        await p2.leave(room)
        # gw2 reaps gw1 (its heartbeat runs every 5 s), and gw1's is due
        # the moment it wakes.
        await eventually(lambda: asyncio.to_thread(presence_on, dst, room),
                         lambda p: "gw1\tw1" not in p[0], 10, "gw1 withdrawn by gw2")
        await asyncio.sleep(5.5)
    await eventually(lambda: asyncio.to_thread(presence_on, dst, room),
                     lambda p: "gw1\tw1" in p[0], 10, "gw1 registered again")
    p3 = await Client.connect(gw1.port, "p3")
    await p3.join(room)
    await send_chat(sender, "c2", [], room=room)

    members = {"gw1": ["w1", "p3"], "gw2": ["w2", "s"]}
    assert presence_on(dst, room) == expected_presence(members)
    assert await sender.presence(room) == sorted(n for ns in members.values() for n in ns)
    home = redis_cluster.owner_of(GATEWAYS_KEY)
    assert [home.command("SMEMBERS", room_set(gw)) for gw in ("gw1", "gw2")] == [[room], [room]]
    for w in watchers:
        await assert_chats(w, room, ["c1", "c2"])  # gw1 replays c1 from the stream
    # Notices are not in the stream: w1's gateway, asleep, missed p2's.
    await assert_notices(watchers[1], room, joined=["p2", "p3"], left=["p2"])
    joined, names = watchers[0].notices(room, "joined")
    assert joined == len(names) and set(names) <= {"p2", "p3"}, "w1 got a notice twice"
    assert_no_lost_commands(gw1, gw2)


@pytest.mark.timeout(120)
async def test_global_slot_moved_step_by_step(gateways, redis_cluster):
    """The {global} tag's slot (the gateways' room sets, counts and
    heartbeats) moves twice: first step by step, the room sets migrated
    ahead of the rest, so that each SADD and SREM of a join or leave is
    answered ASK; then while gw1 sleeps, so that it wakes with the old map
    and its next ones are answered MOVED."""
    flush(redis_cluster)
    gw1, gw2 = start_gateways(gateways, redis_cluster, count=2, extra=["--rate-limit", "0"])
    slot = slot_of(redis_cluster, GATEWAYS_KEY)
    src = redis_cluster.owner_of_slot(slot)
    dst, third = [n for n in redis_cluster.primaries() if n is not src][:2]
    a, b = await Client.connect(gw1.port, "a"), await Client.connect(gw2.port, "b")
    await a.join("gx")

    open_slot(slot, src, dst)
    sets = [k for k in src.command("CLUSTER", "GETKEYSINSLOT", slot, 1000)
            if k.startswith("chat:gwrooms:")]
    assert sets == [room_set("gw1")]
    migrate_keys(slot, src, dst, sets)
    await a.join("gy")
    await b.join("gx")
    await b.leave("gx")
    await a.leave("gy")
    await b.join("gy")
    migrate_keys(slot, src, dst)
    await asyncio.to_thread(close_slot, redis_cluster, slot, src, dst)
    assert [dst.command("SMEMBERS", room_set(gw)) for gw in ("gw1", "gw2")] == [["gx"], ["gy"]]

    with gw1.paused():
        await asyncio.to_thread(move_slot, redis_cluster, slot, dst, third)
        await a.send_json({"type": "join_room", "room": "gz"})
        await a.send_json({"type": "leave_room", "room": "gx"})
    await a.recv_until("left", 10, where=lambda f: f.get("room") == "gx")
    await b.join("gz")
    await b.leave("gy")
    assert [third.command("SMEMBERS", room_set(gw)) for gw in ("gw1", "gw2")] == [["gz"], ["gz"]]
    assert await a.presence("gz") == ["a", "b"]
    # The heartbeats went on: both gateways are alive on the new owner.
    assert sorted(third.command("ZRANGE", GATEWAYS_KEY, 0, -1)) == ["gw1", "gw2"]
    assert_no_lost_commands(gw1, gw2)


@pytest.mark.timeout(60)
async def test_new_room_on_a_moved_slot(gateways, redis_cluster):
    """The first member of a room whose slot moved since the gateways read
    the map: the gateway subscribes on the new owner (a read of the room's
    stream on the old one is answered MOVED first; an SSUBSCRIBE would be,
    and hiredis would close the connection), and the link stays up."""
    flush(redis_cluster)
    gw1, gw2 = start_gateways(gateways, redis_cluster, count=2)
    room = "fresh"
    slot, src, dst = room_slot_move(redis_cluster, room)
    a, b = await Client.connect(gw1.port, "a"), await Client.connect(gw2.port, "b")
    await asyncio.to_thread(move_slot, redis_cluster, slot, src, dst)
    await a.join(room)
    await b.join(room)
    await a.chat("hello", room=room)
    assert (await b.recv_chat("hello"))["sender"] == "a"
    assert shard_channels(dst).get(room_key("room", room)) == 2
    assert [gw.metrics()["gateway_redis_reconnects_total"] for gw in (gw1, gw2)] == [0, 0]
    assert_no_lost_commands(gw1, gw2)


@pytest.mark.timeout(60)
async def test_tryagain_for_too_long(gateways, redis_cluster):
    """A chat answered TRYAGAIN longer than the gateway waits (its room's
    slot stays open with the keys moved) is refused `unavailable` after
    about a second, one line logged; one still waiting when the link is
    lost is refused then. Once the slot is closed chat goes again."""
    flush(redis_cluster)
    gw1, = start_gateways(gateways, redis_cluster, count=1)
    room = "stuck"
    slot, src, dst = room_slot_move(redis_cluster, room)
    a = await Client.connect(gw1.port, "a")
    await a.join(room)
    await send_chat(a, "c0", [], room=room)
    open_slot(slot, src, dst)
    migrate_keys(slot, src, dst)
    await a.chat("c1", room=room)
    await a.expect_error("unavailable", timeout=10)
    assert gw1.log_text().count("redis: script chat failed: TRYAGAIN") == 1
    before = gw1.metrics()["gateway_redis_reconnects_total"]
    await a.chat("c2", room=room)
    await asyncio.sleep(0.3)
    seed_node(redis_cluster, gw1).command("CLIENT", "KILL", "TYPE", "pubsub")
    await a.expect_error("unavailable", timeout=10)
    await reconnected([gw1], [before])
    await asyncio.to_thread(close_slot, redis_cluster, slot, src, dst)
    await send_chat(a, "c3", [], room=room)
    # The refused chats are in no history.
    b = await Client.connect(gw1.port, "b")
    assert [m["content"] for m in (await b.join(room))["history"]] == ["c0", "c3"]


@pytest.mark.timeout(60)
async def test_a_senders_chats_keep_their_order_through_a_move(gateways, redis_cluster):
    """A chat answered TRYAGAIN waits to be sent again; the sender's next
    chat, sent once the slot has closed (the old owner answers it MOVED, and
    the new one would take it at once), waits behind it instead of
    overtaking it: every member and the history see the sender's order."""
    flush(redis_cluster)
    gw1, = start_gateways(gateways, redis_cluster, count=1)
    room = "inorder"
    slot, src, dst = room_slot_move(redis_cluster, room)
    a, b = await Client.connect(gw1.port, "a"), await Client.connect(gw1.port, "b")
    await a.join(room)
    await b.join(room)
    await send_chat(a, "c0", [], room=room)
    open_slot(slot, src, dst)
    migrate_keys(slot, src, dst)
    await a.chat("c1", room=room)
    await asyncio.sleep(0.03)  # answered TRYAGAIN: waiting for its next try
    dst_id = dst.command("CLUSTER", "MYID")
    dst.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    src.command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
    await a.chat("c2", room=room)
    got = [(await b.recv_chat(timeout=10))["content"] for _ in range(3)]
    assert got == ["c0", "c1", "c2"]
    c = await Client.connect(gw1.port, "c")
    assert [m["content"] for m in (await c.join(room))["history"]] == ["c0", "c1", "c2"]
    await asyncio.to_thread(close_slot, redis_cluster, slot, src, dst)
    assert_no_lost_commands(gw1)
