"""The Lua scripts are called by SHA1 (EVALSHA); when Redis forgot them
(SCRIPT FLUSH, or a restart that kept the data) a call falls back to EVAL,
which caches the script again, and nothing is lost."""

from wsclient import Client


async def test_calls_survive_a_script_flush(make_cluster):
    cluster = make_cluster(count=2)
    a = await Client.connect(cluster.ports[0], "alice")
    b = await Client.connect(cluster.ports[1], "bob")
    await a.join("r")
    assert cluster.redis.command("SCRIPT", "FLUSH") == "OK"
    assert (await b.join("r"))["members"] == 2   # room.lua
    await b.chat("after the flush", room="r")     # chat.lua
    for c in (a, b):
        assert (await c.recv_chat("after the flush"))["sender"] == "bob"
    assert await a.presence("r") == ["alice", "bob"]
    assert "script cache was flushed" in cluster.gws[1].log_text()
