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
