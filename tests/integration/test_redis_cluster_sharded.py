"""Sharded pub/sub on a real Redis Cluster (3 primaries, 3 replicas of the
machine's redis-server), with the gateway's patched hiredis: what the
cluster mode of the Redis bus builds on. A subscription lives on the node
that owns the channel's slot only; when the slot moves, Redis ends it with
a sunsubscribe that the patched hiredis hands to the channel's callback
(instead of aborting); a script that appends to a room's stream and
publishes with SPUBLISH works when its keys and channel share a hash tag."""

import subprocess

import pytest

from redis_cluster_proc import move_slot
from test_redis_sharded_pubsub import check_bin


def shard_subscribers(cluster, channel):
    """{port: PUBSUB SHARDNUMSUB of channel} on every primary."""
    return {n.port: n.command("PUBSUB", "SHARDNUMSUB", channel)[1] for n in cluster.primaries()}


def test_smessage_on_the_owner(redis_cluster):
    owner = redis_cluster.owner_of("x")
    run = subprocess.run([str(check_bin()), str(owner.port)], capture_output=True, text=True,
                         timeout=15)
    assert run.returncode == 0, f"rc {run.returncode}: {run.stdout}{run.stderr}"
    assert set(shard_subscribers(redis_cluster, "x").values()) == {0}


def test_slot_move_ends_the_subscription(redis_cluster):
    channel = "chat:room:{moving}r"
    owner = redis_cluster.owner_of(channel)
    held = subprocess.Popen([str(check_bin()), str(owner.port), "hold", channel],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert held.stdout.readline().strip() == "subscribed"
        # On the owner only: the channel's slot decides where it lives.
        assert shard_subscribers(redis_cluster, channel) == {
            n.port: int(n is owner) for n in redis_cluster.primaries()}
        assert owner.command("SPUBLISH", channel, "before") == 1
        assert held.stdout.readline().strip() == "smessage before"
        slot = owner.command("CLUSTER", "KEYSLOT", channel)
        dst = next(n for n in redis_cluster.primaries() if n is not owner)
        move_slot(redis_cluster, slot, owner, dst)
        out, err = held.communicate(timeout=30)
    finally:
        if held.poll() is None:
            held.kill()
            held.wait()
    assert held.returncode == 0, f"rc {held.returncode}: {out}{err}"
    assert set(shard_subscribers(redis_cluster, channel).values()) == {0}
    # Publishing goes to the new owner now; the old one redirects.
    assert dst.command("SPUBLISH", channel, "after") == 0
    with pytest.raises(RuntimeError, match="MOVED"):
        owner.command("SPUBLISH", channel, "after")


# chat.lua's shape: append to the room's stream and publish, atomically.
APPEND_AND_PUBLISH = ("local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[2]) "
                      "redis.call('SPUBLISH', ARGV[1], id) return id")


def test_script_spublishes_within_its_slot(redis_cluster):
    tag = "{t1}"
    owner = redis_cluster.owner_of(tag)
    stream, channel = f"chat:history:{tag}a{{b}}c", f"chat:room:{tag}a{{b}}c"
    msg_id = owner.command("EVAL", APPEND_AND_PUBLISH, 1, stream, channel, "hello")
    assert owner.command("XRANGE", stream, "-", "+")[0][0] == msg_id
    # A channel of another slot is refused, and only when the script gets
    # there: Redis does not roll the XADD back. Hence the channel carries
    # the keys' tag.
    other = "chat:room:{t2}x"
    assert owner.command("CLUSTER", "KEYSLOT", other) != owner.command("CLUSTER", "KEYSLOT",
                                                                       stream)
    with pytest.raises(RuntimeError, match="non local key|CROSSSLOT"):
        owner.command("EVAL", APPEND_AND_PUBLISH, 1, stream, other, "hello")
    assert owner.command("XLEN", stream) == 2
