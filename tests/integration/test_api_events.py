"""The event stream for backends (--events-stream on): chat, join, leave,
connect and disconnect events of two gateways in one Redis stream, read with
the example consumer of docs/api/events_consumer.py (redis-py, consumer
group, acknowledged), which gets again what it had not acknowledged when it
stopped."""

import importlib.util
import json
import pathlib

import pytest
import redis

from apiclient import start_with_api
from aio import eventually
from gateway_proc import run_gateway
from wsclient import Client

REPO = pathlib.Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("events_consumer",
                                               REPO / "docs" / "api" / "events_consumer.py")
events_consumer = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(events_consumer)

STREAM = "chat:events"


def read_all(r, consumer="c1"):
    """What the consumer gets until the stream has nothing new: [(id, fields)]."""
    got = []
    state = {"idle": 0}

    def handle(entry_id, fields):
        got.append((entry_id, fields))

    def stop():
        state["idle"] += 1
        return state["idle"] > 3
    events_consumer.consume(r, STREAM, handle, consumer, block_ms=100, stop=stop)
    return got


@pytest.fixture
def events_cluster(redis_server, gateways, tmp_path):
    flags = ["--events-stream", "on"]
    gws = [start_with_api(gateways, tmp_path, f"gw{i}", redis_server.port, flags) for i in (1, 2)]
    return gws, redis.Redis(port=redis_server.port, decode_responses=True)


async def test_events_of_the_cluster_in_one_stream(events_cluster):
    ((gw1, api1), (gw2, _)), r = events_cluster
    alice = await Client.connect(gw1.port, "alice")
    await alice.join("r")
    bob = await Client.connect(gw2.port, "bob")
    await bob.join("r")
    await alice.chat("hello", "r")
    chat_id = (await bob.recv_chat("hello"))["id"]
    sent = api1.ok("POST", "/api/publish", {"room": "r", "sender": "bot", "content": "beep"})
    await alice.chat("to all")
    await bob.recv_chat("to all")
    await bob.leave("r")
    await bob.close()

    async def stream_len():
        return r.xlen(STREAM)
    await eventually(stream_len, lambda n: n >= 9, 5, "9 events")
    events = [fields for _, fields in read_all(r)]
    shapes = [(e["type"], e.get("room"), e.get("user")) for e in events]
    assert shapes == [
        ("connect", None, "alice"), ("join", "r", "alice"),
        ("connect", None, "bob"), ("join", "r", "bob"),
        ("chat", "r", None), ("chat", "r", None), ("chat", "", None),
        ("leave", "r", "bob"), ("disconnect", None, "bob")], shapes
    assert [e["gateway"] for e in events if "user" in e] == ["gw1", "gw1", "gw2", "gw2", "gw2",
                                                             "gw2"]
    chats = [e for e in events if e["type"] == "chat"]
    assert [c["id"] for c in chats[:2]] == [chat_id, sent["id"]]
    frame = json.loads(chats[0]["data"])
    assert frame == {"type": "chat", "id": chat_id, "room": "r", "sender": "alice",
                     "content": "hello", "timestamp": frame["timestamp"]}
    assert json.loads(chats[1]["data"])["sender"] == "bot"
    assert "room" not in json.loads(chats[2]["data"])
    # All acknowledged: nothing pending for the group.
    assert r.xpending(STREAM, events_consumer.GROUP)["pending"] == 0


async def test_a_restarted_consumer_gets_what_it_had_not_acknowledged(events_cluster):
    ((gw1, api1), _), r = events_cluster
    for i in range(5):
        api1.ok("POST", "/api/publish", {"room": "r", "sender": "bot", "content": f"m{i}"})
    handled = []

    class Crash(Exception):
        pass

    def crashing(entry_id, fields):
        handled.append(json.loads(fields["data"])["content"])
        if len(handled) == 3:
            raise Crash()   # the backend dies before acknowledging m2
    with pytest.raises(Crash):
        events_consumer.consume(r, STREAM, crashing, "c1", block_ms=100)
    again = [json.loads(f["data"])["content"] for _, f in read_all(r, "c1")]
    assert handled == ["m0", "m1", "m2"] and again == ["m2", "m3", "m4"]


async def test_no_stream_unless_asked(redis_server, gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port)
    alice = await Client.connect(gw.port, "alice")
    await alice.join("r")
    await alice.chat("x", "r")
    await alice.recv_chat("x")
    r = redis.Redis(port=redis_server.port, decode_responses=True)
    assert not r.exists(STREAM)


def test_events_stream_needs_redis():
    result = run_gateway(["--listen", "127.0.0.1:0", "--events-stream", "on"])
    assert result.returncode == 2 and "--events-stream" in result.stderr, result
