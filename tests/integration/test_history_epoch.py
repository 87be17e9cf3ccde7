"""History that says when it was lost (issue 16, item 4). Redis restarted
empty, or a failover to a replica that had not got the newest writes, leaves
rooms' histories without messages clients saw, and ids continue from what is
left. Clients whose `since` belongs to the lost history get `truncated: true`
and a `system` frame, members online on a gateway that replays after the
reconnect get the `system` frame, and nothing sent after is hidden."""

import asyncio

import pytest

from aio import eventually
from netutil import wait_until
from redis_proc import RedisServer, redis_command
from redis_proxy import RedisProxy
from test_history import post
from wsclient import Client

BACK_WITHIN = 15
FUTURE = "99999999999999-0"


def is_lost_notice(frame, room="r"):
    return frame.get("room") == room and "were lost" in frame.get("content", "")


async def expect_lost_notice(client, room="r"):
    return await client.recv_until("system", where=lambda f: is_lost_notice(f, room))


async def expect_no_lost_notice(client, room="r", seconds=0.5):
    await client.expect_silence("system", seconds,
                                allowed=lambda f: not is_lost_notice(f, room))


def ids(msgs):
    return [m["id"] for m in msgs]


def idkey(msg_id):
    """Ids compare as numbers, part by part."""
    ms, seq = msg_id.split("-")
    return int(ms), int(seq)


async def all_ready(gws):
    return all([await asyncio.to_thread(gw.readyz_status) == 200 for gw in gws])


@pytest.mark.timeout(60)
async def test_redis_restarted_empty(make_cluster):
    cluster = make_cluster(2)
    a = await Client.connect(cluster.ports[0], "alice")
    b = await Client.connect(cluster.ports[1], "bob")
    await a.join("r")
    await b.join("r")
    sent = await post(a, "r", ["m1", "m2", "m3"])
    for m in sent:
        await b.recv_chat(m["content"])

    await asyncio.to_thread(cluster.redis.stop)
    await asyncio.to_thread(cluster.redis.restart)   # no persistence: empty
    await eventually(lambda: all_ready(cluster.gws), bool, BACK_WITHIN, "gateways back")
    # Members online are told by their gateway's replay.
    await expect_lost_notice(a)
    await expect_lost_notice(b)
    for gw in cluster.gws:
        assert gw.metrics()["gateway_redis_history_lost_total"] == 1

    [n1] = await post(a, "r", ["n1"])
    assert (await b.recv_chat("n1"))["id"] == n1["id"]

    # A client coming back with an id of the history before the restart.
    c = await Client.connect(cluster.ports[0], "carol")
    joined = await c.join("r", since=sent[1]["id"])
    assert (ids(joined["history"]), joined["truncated"]) == ([n1["id"]], True)
    await expect_lost_notice(c)
    # One with an id of the new history is not told anything.
    d = await Client.connect(cluster.ports[1], "dave")
    joined = await d.join("r", since=n1["id"])
    assert (joined["history"], joined["truncated"]) == ([], False)
    await expect_no_lost_notice(d)
    # Nothing is hidden after that.
    await b.chat("n2", room="r")
    for client in (a, c, d):
        await client.recv_chat("n2")


@pytest.mark.parametrize("bus", ["redis", "in-process"])
async def test_since_newer_than_anything(bus, gateways, tmp_path):
    if bus == "redis":
        redis = RedisServer(tmp_path / "redis").start()
        gw = gateways.start("gw1", redis.port, wait_ready=True)
    else:
        redis = None
        gw = gateways.start("gw1")
    try:
        a = await Client.connect(gw.port, "alice")
        await a.join("r")
        [m1] = await post(a, "r", ["m1"])
        b = await Client.connect(gw.port, "bob")
        joined = await b.join("r", since=FUTURE)
        assert (joined["history"], joined["truncated"]) == ([], True)
        await expect_lost_notice(b)
        if redis:
            # A room whose stream has nothing at all (the in-process bus
            # numbers all rooms together: m1 is not newer than its newest).
            joined = await b.join("empty", since=m1["id"])
            assert (joined["history"], joined["truncated"]) == ([], True)
            await expect_lost_notice(b, "empty")
        # What comes next is not hidden behind the since.
        await a.chat("m2", room="r")
        assert (await b.recv_chat("m2"))["id"] > m1["id"]
        # An honest since is not told anything.
        c = await Client.connect(gw.port, "carol")
        joined = await c.join("r", since=m1["id"])
        assert (joined["truncated"], len(joined["history"])) == (False, 1)
        await expect_no_lost_notice(c)
    finally:
        for g in gateways.started:
            g.stop(timeout=5)
        if redis:
            redis.stop(timeout=5)


def replica_in_sync(replica, key, length):
    info = redis_command(replica.port, "INFO", "replication")
    return "master_link_status:up" in info and redis_command(replica.port, "XLEN", key) == length


@pytest.mark.timeout(90)
async def test_failover_that_loses_writes(gateways, tmp_path):
    """A primary and its replica. The replica stops replicating (as a
    partitioned replica does), the primary takes two more messages, dies,
    and the replica becomes the primary behind the address the gateways
    use (the proxy): its history ends two messages earlier. The primary's
    ids for those two are an hour ahead (as with a clock an hour fast):
    the replica's clock would give the next message a lower id."""
    primary = RedisServer(tmp_path / "primary").start()
    replica = RedisServer(tmp_path / "replica",
                          ["--replicaof", "127.0.0.1", str(primary.port)]).start()
    proxy = RedisProxy(primary.port).start()
    try:
        gws = [gateways.start(f"gw{i}", proxy.port, wait_ready=True) for i in (1, 2)]
        a = await Client.connect(gws[0].port, "alice")
        b = await Client.connect(gws[1].port, "bob")
        await a.join("r")
        await b.join("r")
        sent = await post(a, "r", ["m1", "m2", "m3"])
        await asyncio.to_thread(wait_until, lambda: replica_in_sync(replica, "chat:history:r", 3),
                                10, what="the replica to have m1..m3")
        assert redis_command(replica.port, "REPLICAOF", "NO", "ONE") == "OK"
        ahead = f"{int(sent[2]['id'].split('-')[0]) + 3_600_000}-0"
        assert primary.command("XSETID", "chat:history:r", ahead) == "OK"
        sent += await post(a, "r", ["m4", "m5"])     # the primary alone has them
        assert idkey(sent[3]["id"]) > idkey(ahead)
        for m in sent:
            await b.recv_chat(m["content"])

        proxy.retarget(replica.port)
        primary.kill()
        proxy.drop_all()
        await eventually(lambda: all_ready(gws), bool, BACK_WITHIN, "gateways on the replica")
        await expect_lost_notice(a)
        await expect_lost_notice(b)

        # Ids do not go back below what the members saw, whatever the new
        # primary's clock says.
        [n1] = await post(a, "r", ["n1"])
        assert idkey(n1["id"]) > idkey(sent[4]["id"])
        await b.recv_chat("n1")
        c = await Client.connect(gws[1].port, "carol")
        # m4 is gone; the history continues after m3, what carol shares with it.
        joined = await c.join("r", since=sent[3]["id"])
        assert (ids(joined["history"]), joined["truncated"]) == ([n1["id"]], True)
        await expect_lost_notice(c)
        joined = await c.join("r", since=sent[4]["id"])
        assert (ids(joined["history"]), joined["truncated"]) == ([n1["id"]], True)
        await expect_lost_notice(c)
        # m2 is in the surviving history: nothing to say (m4 and m5 were not
        # seen by this client, and the replica never had them).
        d = await Client.connect(gws[0].port, "dave")
        joined = await d.join("r", since=sent[1]["id"])
        assert (ids(joined["history"]), joined["truncated"]) == \
            ([sent[2]["id"], n1["id"]], False)
        await expect_no_lost_notice(d)
    finally:
        for g in gateways.started:
            g.stop(timeout=5)
        proxy.close()
        replica.stop(timeout=5)
        primary.stop(timeout=5)
