"""Room history in `joined`, and join_room with `since` (single node, --history 5)."""

import pytest

from msgid import assert_increasing
from wsclient import Client

KEPT = 5


@pytest.fixture
def small_history_gateway(gateways):
    return gateways.start("hist", extra=["--history", str(KEPT)])


async def post(client, room, contents):
    """Send chats one by one; returns the delivered frames (with their ids)."""
    frames = []
    for text in contents:
        await client.chat(text, room=room)
        frames.append(await client.recv_chat(text))
    return frames


def summary(messages):
    return [(m["id"], m["content"]) for m in messages]


async def test_history_is_recent_oldest_first(small_history_gateway):
    port = small_history_gateway.port
    a = await Client.connect(port, "alice")
    await a.join("h")
    sent = await post(a, "h", [f"m{i}" for i in range(1, 9)])
    joined = await (await Client.connect(port, "bob")).join("h")
    assert summary(joined["history"]) == summary(sent[-KEPT:])
    assert joined["truncated"] is False
    for m in joined["history"]:
        assert (m["room"], m["sender"]) == ("h", "alice")
        assert isinstance(m["timestamp"], int)
    assert_increasing([m["id"] for m in joined["history"]])


async def test_history_default_keeps_everything_recent(gateway):
    a = await Client.connect(gateway.port, "alice")
    await a.join("h")
    sent = await post(a, "h", ["one", "two", "three"])
    joined = await (await Client.connect(gateway.port, "bob")).join("h")
    assert summary(joined["history"]) == summary(sent)


async def test_since_gives_exactly_the_missed_messages(small_history_gateway):
    port = small_history_gateway.port
    a = await Client.connect(port, "alice")
    await a.join("h")
    sent = await post(a, "h", [f"m{i}" for i in range(1, 9)])
    b = await Client.connect(port, "bob")
    joined = await b.join("h", since=sent[4]["id"])         # saw m5
    assert summary(joined["history"]) == summary(sent[5:])   # m6..m8
    assert joined["truncated"] is False
    # Already a member: joined again, with since applied.
    again = await b.join("h", since=sent[-1]["id"])
    assert (again["history"], again["truncated"]) == ([], False)


async def test_since_older_than_history_is_truncated(small_history_gateway):
    port = small_history_gateway.port
    a = await Client.connect(port, "alice")
    await a.join("h")
    sent = await post(a, "h", [f"m{i}" for i in range(1, 9)])
    joined = await (await Client.connect(port, "bob")).join("h", since=sent[0]["id"])
    # m2 and m3 are gone: what is kept comes back, flagged as truncated.
    assert summary(joined["history"]) == summary(sent[-KEPT:])
    assert joined["truncated"] is True


@pytest.mark.parametrize("since", ["abc", "", "1-2-3", "-5", "12-x", {"id": "1-1"}, ["1-1"]],
                         ids=repr)
async def test_bad_since(shared_gateway, since):
    c = await Client.connect(shared_gateway.port, "s")
    await c.send_json({"type": "join_room", "room": "bs", "since": since})
    await c.expect_error("bad_since")
    await c.assert_alive()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cluster_mode", [False, True], ids=["single", "redis"])
async def test_history_larger_than_the_send_queue_limit(gateways, redis_server, cluster_mode):
    """100 messages of 60 KB make a `joined` of about 6 MB, over the 1 MB
    send-queue limit: the joiner gets it whole, not a slow-consumer close."""
    extra = ["--rate-limit", "0"]
    # Ready first: a join before the bus is up is rightly answered `unavailable`.
    gw = gateways.start("big", redis_port=redis_server.port if cluster_mode else None,
                        extra=extra, wait_ready=True)
    a = await Client.connect(gw.port, "alice")
    await a.join("big")
    body = "x" * 60_000
    for i in range(100):
        await a.chat(f"{i} {body}", room="big")
        await a.recv_chat()
    b = await Client.connect(gw.port, "bob")
    joined = await b.join("big")
    assert len(joined["history"]) == 100
    assert [m["content"].split()[0] for m in joined["history"]] == [str(i) for i in range(100)]
    await a.chat("after", room="big")
    assert (await b.recv_chat("after"))["content"] == "after"
