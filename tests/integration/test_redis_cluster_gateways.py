"""Gateways on a real Redis Cluster (3 primaries, 3 replicas of the
machine's redis-server) through redis+cluster://: rooms spread over the
primaries, each subscribed with SSUBSCRIBE on its owner only, once per
gateway; chat, presence, history, since and ordering as on one Redis."""

import pathlib

import pytest

from aio import eventually
from gateway_proc import run_gateway
from msgid import assert_increasing
from redis_cluster_proc import RedisCluster, shard_channels
from test_redis_auth import assert_exit_2_naming
from test_redis_tls import make_cert, pki  # noqa: F401 (pki: a fixture)
from wsclient import Client, announces

KEPT = 5
# Room names that land on every primary of redis-cli's layout (checked
# below), braces and all: the hash tag is the name's CRC16, not the name.
ROOMS = [f"r{i}" for i in range(10)] + ["a{b}c", "}{", "{x}"]


def cluster_url(redis_cluster):
    return f"redis+cluster://{redis_cluster.seeds}"


def start_gateways(gateways, redis_cluster, count=3, extra=()):
    gws = [gateways.start(f"gw{i + 1}", extra=["--redis", cluster_url(redis_cluster), *extra])
           for i in range(count)]
    for gw in gws:
        gw.wait_ready()
    return gws


def seed_node(redis_cluster, gw):
    """The node gw's link goes through (gateway_redis_info's primary): the
    one whose loss restarts the whole link."""
    label = next(k for k in gw.metrics() if k.startswith("gateway_redis_info{"))
    return redis_cluster.node_at(int(label.split('primary="127.0.0.1:')[1].split('"')[0]))


async def test_rooms_spread_over_the_primaries(gateways, redis_cluster):
    gws = start_gateways(gateways, redis_cluster)
    clients = [await Client.connect(gw.port, f"u{i}") for i, gw in enumerate(gws)]
    # Two members on the first gateway: still one subscription there.
    extra = await Client.connect(gws[0].port, "extra")
    for room in ROOMS:
        for c in clients + [extra]:
            await c.join(room)
    for room in ROOMS:
        await clients[0].chat(f"hello {room}", room=room)
        for c in clients[1:] + [extra]:
            f = await c.recv_chat(f"hello {room}")
            assert f["room"] == room
    per_node = {n.port: shard_channels(n) for n in redis_cluster.primaries()}
    # Every room on exactly one primary, every primary with rooms, one
    # subscription per gateway.
    assert all(per_node.values()), per_node
    channels = [ch for chans in per_node.values() for ch in chans]
    assert len(channels) == len(set(channels)) == len(ROOMS)
    assert {n for chans in per_node.values() for n in chans.values()} == {3}
    # The mode is cluster; the server named is one of the seeds.
    labels = [k for k in gws[0].metrics() if k.startswith("gateway_redis_info{")]
    assert len(labels) == 1 and labels[0].startswith('gateway_redis_info{mode="cluster",'), labels
    assert any(f'primary="127.0.0.1:{n.port}"' in labels[0] for n in redis_cluster.nodes), labels
    for node in redis_cluster.primaries():
        # Classic pub/sub holds the broadcast channel only.
        assert node.command("PUBSUB", "CHANNELS", "chat:room:*") == []
        for ch in shard_channels(node):
            assert redis_cluster.owner_of(ch) is node


async def test_presence_history_since_and_order(gateways, redis_cluster):
    gws = start_gateways(gateways, redis_cluster, extra=["--history", str(KEPT), "--rate-limit",
                                                          "0"])
    room = "h{1}"
    a = await Client.connect(gws[0].port, "alice")
    b = await Client.connect(gws[1].port, "bob")
    await a.join(room)
    assert (await b.join(room))["members"] == 2
    assert await a.presence(room) == ["alice", "bob"]
    await a.recv_until("system", where=announces("bob", "joined", room))
    sent = []
    for i in range(1, 9):
        await a.chat(f"m{i}", room=room)
        sent.append(await b.recv_chat(f"m{i}"))
    assert_increasing([m["id"] for m in sent])
    summary = lambda msgs: [(m["id"], m["content"]) for m in msgs]  # noqa: E731
    c = await Client.connect(gws[2].port, "carol")
    joined = await c.join(room, since=sent[5]["id"])
    assert (summary(joined["history"]), joined["truncated"]) == (summary(sent[6:]), False)
    d = await Client.connect(gws[2].port, "dave")
    joined = await d.join(room, since=sent[1]["id"])
    assert (summary(joined["history"]), joined["truncated"]) == (summary(sent[-KEPT:]), True)
    assert await b.presence(room) == ["alice", "bob", "carol", "dave"]
    await d.leave(room)
    await b.close()
    assert await c.presence(room) == ["alice", "carol"]
    # Global chat and the count go over the broadcast channel.
    await c.chat("to all")
    assert (await a.recv_chat("to all"))["sender"] == "carol"


def test_bad_cluster_flags_exit_2():
    for args, flag in (
            (["--redis", "redis+cluster://127.0.0.1:7000", "--redis-prefix", "a{b}:"],
             "--redis-prefix"),
            (["--redis", "redis+cluster://127.0.0.1:7000/1"], "--redis"),
            (["--redis", "redis+cluster://127.0.0.1:7000,"], "--redis"),
            # Not offered under Redis Cluster (README): refused, not half
            # working. (The server API is: test_redis_cluster_api.py.)
            (["--redis", "redis+cluster://127.0.0.1:7000", "--events-stream", "on"],
             "--events-stream"),
            (["--redis", "redis+sentinel+cluster://127.0.0.1:7000/m"], "--redis")):
        result = run_gateway(["--listen", "127.0.0.1:0", *args])
        assert_exit_2_naming(result, flag)


async def test_cluster_url_on_one_redis_says_so(gateways, redis_server):
    gw = gateways.start("gw1", extra=["--redis", f"redis+cluster://127.0.0.1:{redis_server.port}"])
    async def log():
        return gw.log_text()

    await eventually(log, lambda text: "redis+cluster:// needs the nodes of a Redis Cluster" in
                     text and "cluster support disabled" in text, 10, "the refusal logged")
    assert gw.readyz_status() == 503
    alice = await Client.connect(gw.port, "alice")
    await alice.chat("too early")
    await alice.expect_error("unavailable")


def room_keys(redis_cluster):
    """The presence keys (entries and names) and room sets on all primaries."""
    return sorted(k for n in redis_cluster.primaries() for k in n.command("KEYS", "chat:p*") +
                  n.command("KEYS", "chat:gwrooms:*"))


@pytest.mark.timeout(60)
async def test_dead_gateway_is_cleaned_up_room_by_room(gateways, redis_cluster):
    """A gateway in rooms on every primary is SIGKILLed: once its heartbeat
    lapsed, the survivor takes its rooms out of its set on the {global}
    node and withdraws it from each room on the room's own node."""
    for node in redis_cluster.primaries():
        node.command("FLUSHALL")
    gw1, gw2 = start_gateways(gateways, redis_cluster, count=2)
    survivor = await Client.connect(gw1.port, "survivor")
    await survivor.join(ROOMS[0])
    keys_before = room_keys(redis_cluster)
    doomed = await Client.connect(gw2.port, "doomed")
    for room in ROOMS:
        await doomed.join(room)
    assert await survivor.presence(ROOMS[0]) == ["doomed", "survivor"]
    assert len(room_keys(redis_cluster)) == len(keys_before) + 2 * (len(ROOMS) - 1) + 1
    gw2.kill()

    async def keys():
        return room_keys(redis_cluster)

    await eventually(keys, lambda k: k == keys_before, 40, "gw2's presence and room set gone")
    assert await survivor.presence(ROOMS[0]) == ["survivor"]
    assert gw1.metrics()["gateway_dead_gateways_reaped_total"] == 1


async def test_acl_user_on_every_node(gateways, redis_cluster):
    """USER:PASSWORD of the URL logs in on every connection: the seed's and
    each primary's two. ACL users are per node: each has it."""
    for node in redis_cluster.nodes:
        if node.running():
            node.command("ACL", "SETUSER", "cgw", "on", ">s3cret", "~*", "&*", "+@all")
    seeds = redis_cluster.seeds
    good = gateways.start("gw1", extra=["--redis", f"redis+cluster://cgw:s3cret@{seeds}"])
    gw2 = gateways.start("gw2", extra=["--redis", f"redis+cluster://cgw:s3cret@{seeds}"])
    bad = gateways.start("gw3", extra=["--redis", f"redis+cluster://cgw:wrong@{seeds}"])
    good.wait_ready()
    gw2.wait_ready()
    a, b = await Client.connect(good.port, "alice"), await Client.connect(gw2.port, "bob")
    for c in (a, b):
        await c.join(ROOMS[1])
    await a.chat("logged in", room=ROOMS[1])
    assert (await b.recv_chat("logged in"))["sender"] == "alice"

    async def log():
        return bad.log_text()

    await eventually(log, lambda text: "AUTH as user 'cgw' (password from the --redis URL) "
                     "refused" in text, 10, "the refusal logged")
    assert bad.readyz_status() == 503


@pytest.mark.timeout(60)
async def test_rediss_cluster(gateways, tmp_path, pki):
    """rediss+cluster://: TLS to the seed and to every primary, each node's
    certificate checked against the seeds' host; the nodes answer CLUSTER
    SLOTS with their TLS ports to a TLS client."""
    # The nodes' certificate also serves as the client's of the cluster
    # bus and of replication, over TLS too.
    node = make_cert(pathlib.Path(pki["ca"]).parent, "ca", "node", "localhost",
                     "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                     "extendedKeyUsage=serverAuth,clientAuth")
    cluster = RedisCluster(tmp_path / "tls-cluster", tls=(*map(str, node), pki["ca"])).start()
    try:
        seeds = ",".join(f"127.0.0.1:{p}" for p in cluster.tls_ports)
        flags = ["--redis", f"rediss+cluster://{seeds}", "--redis-tls-ca", pki["ca"]]
        gw1, gw2 = gateways.start("gw1", extra=flags), gateways.start("gw2", extra=flags)
        gw1.wait_ready()
        gw2.wait_ready()
        a, b = await Client.connect(gw1.port, "alice"), await Client.connect(gw2.port, "bob")
        for room in ROOMS:
            await a.join(room)
            await b.join(room)
        for room in ROOMS:
            await a.chat(f"over TLS {room}", room=room)
            assert (await b.recv_chat(f"over TLS {room}"))["room"] == room
        assert all(shard_channels(n) for n in cluster.primaries())
        assert " over TLS" in gw1.log_text()
    finally:
        cluster.stop()
