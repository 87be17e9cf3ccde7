"""The server API (--api-listen): two gateways sharing one real Redis, real
WebSocket clients, requests as a backend makes them (http.client). Any
gateway answers for the whole cluster. The tests of two gateways
(api_cluster) run on a Redis Cluster too (3 primaries, 3 replicas,
redis+cluster://); test_redis_cluster_api.py has what is the cluster's own."""

import os
import socket
import time

import pytest

from aio import eventually
from apiclient import KEY, api_flags, start_with_api
from gateway_proc import run_gateway
from msgid import id_key
from netutil import metrics
from wsclient import Client, announces


@pytest.fixture(params=["redis", "redis-cluster"])
def api_cluster(request, tmp_path):
    """gw1 and gw2 on one Redis, or on a Redis Cluster emptied first, each
    with its API: [(gateway, Api), ...]."""
    # Redis is set up first so it is torn down last, after the gateways.
    if request.param == "redis":
        port, url = request.getfixturevalue("redis_server").port, None
    else:
        rc = request.getfixturevalue("redis_cluster")
        for node in rc.primaries():
            node.command("FLUSHALL")
        port, url = None, f"redis+cluster://{rc.seeds}"
    gateways = request.getfixturevalue("gateways")
    return [start_with_api(gateways, tmp_path, f"gw{i}", port, redis_url=url) for i in (1, 2)]


def api_count(gw, endpoint, status):
    return metrics(gw.port).get(
        f'gateway_api_requests_total{{endpoint="{endpoint}",status="{status}"}}', 0)


async def test_publish_reaches_members_on_every_gateway_in_order(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    alice = await Client.connect(gw1.port, "alice")
    bob = await Client.connect(gw2.port, "bob")
    await alice.join("r")
    await bob.join("r")
    await alice.chat("from alice 1", "r")
    # Published once alice has it back: it is before the API's in any case.
    first = await alice.recv_chat("from alice 1")
    sent = api2.ok("POST", "/api/publish", {"room": "r", "sender": "bot", "content": "from bot"})
    await alice.chat("from alice 2", "r")
    seen = {}
    for c in (alice, bob):
        frames = [first] if c is alice else []
        frames += [await c.recv_chat() for _ in range(3 - len(frames))]
        assert [f["content"] for f in frames] == ["from alice 1", "from bot", "from alice 2"]
        bot = frames[1]
        assert bot["id"] == sent["id"] and bot["sender"] == "bot" and bot["room"] == "r"
        assert id_key(frames[0]["id"]) < id_key(bot["id"]) < id_key(frames[2]["id"])
        seen[c.username] = [f["id"] for f in frames]
    assert seen["alice"] == seen["bob"]
    assert sent["duplicate"] is False


async def test_idempotency_key_delivers_once(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    alice = await Client.connect(gw1.port, "alice")
    await alice.join("r")
    body = {"room": "r", "sender": "bot", "content": "once", "idempotency_key": "order-17"}
    first = api1.ok("POST", "/api/publish", body)
    again = api2.ok("POST", "/api/publish", body)   # a retry through another gateway
    assert again == {"id": first["id"], "duplicate": True}
    frame = await alice.recv_chat("once")
    assert frame["id"] == first["id"]
    await alice.chat("after", "r")
    assert (await alice.recv_chat())["content"] == "after"   # "once" came once


async def test_broadcast_reaches_every_client(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    a = await Client.connect(gw1.port, "a")
    b = await Client.connect(gw2.port, "b")
    sent = api1.ok("POST", "/api/broadcast", {"sender": "System bot", "content": "maintenance"})
    for c in (a, b):
        frame = await c.recv_chat("maintenance")
        assert frame["id"] == sent["id"] and "room" not in frame


async def test_presence_rooms_and_history_answer_for_the_cluster(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    alice = await Client.connect(gw1.port, "alice")
    bob = await Client.connect(gw2.port, "bob")
    carol = await Client.connect(gw2.port, "carol")
    await alice.join("r")
    await bob.join("r")
    await carol.join("other")
    def listing(api):
        return sorted((r["room"], r["members"]) for r in api.ok("GET", "/api/rooms")["rooms"])
    # Under Redis Cluster a join adds the room to its gateway's set on
    # another node than the room's, not waited for before "joined".
    await eventually(lambda: _async(listing(api1)), lambda got: got == [("other", 1), ("r", 2)],
                     5, "both rooms listed")
    for api in (api1, api2):
        assert api.ok("POST", "/api/presence", {"room": "r"}) == {"room": "r",
                                                                  "users": ["alice", "bob"]}
        assert listing(api) == [("other", 1), ("r", 2)]
    assert api1.ok("POST", "/api/presence", {"room": "empty"}) == {"room": "empty", "users": []}

    ids = []
    for i in range(5):
        await alice.chat(f"m{i}", "r")
        ids.append((await alice.recv_chat(f"m{i}"))["id"])
    hist = api2.ok("POST", "/api/history", {"room": "r"})
    assert [m["id"] for m in hist["messages"]] == ids and hist["truncated"] is False
    assert hist["messages"][0]["type"] == "chat" and hist["messages"][0]["sender"] == "alice"
    newest = api1.ok("POST", "/api/history", {"room": "r", "limit": 2})
    assert [m["id"] for m in newest["messages"]] == ids[-2:]
    page = api1.ok("POST", "/api/history", {"room": "r", "since": ids[1], "limit": 2})
    assert [m["id"] for m in page["messages"]] == ids[2:4]
    assert api1.ok("POST", "/api/history", {"room": "nothing"})["messages"] == []


async def test_history_truncated_as_clients_get_it(redis_server, gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port, ["--history", "3"])
    alice = await Client.connect(gw.port, "alice")
    await alice.join("r")
    ids = []
    for i in range(6):
        await alice.chat(f"m{i}", "r")
        ids.append((await alice.recv_chat(f"m{i}"))["id"])
    hist = api.ok("POST", "/api/history", {"room": "r", "since": ids[0]})
    assert hist["truncated"] is True and [m["id"] for m in hist["messages"]] == ids[3:]
    joined = await alice.join("r", since=ids[0])
    assert joined["truncated"] is True


async def test_disconnect_closes_every_connection_of_the_name(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    m1 = await Client.connect(gw1.port, "mallory")
    m2 = await Client.connect(gw2.port, "mallory")
    other = await Client.connect(gw2.port, "olivia")
    assert api1.ok("POST", "/api/disconnect",
                   {"user": "mallory", "code": 4003, "reason": "banned"}) == {}
    for c in (m1, m2):
        assert await c.expect_closed() == 4003
        assert c.ws.close_reason == "banned"
    # Everything olivia gets until mallory's departure: no control frame
    # (the gateways' own) among it.
    seen = []
    while not announces("mallory", "disconnected")(frame := await other.recv_json()):
        seen.append(frame["type"])
    assert "control" not in seen, seen
    await other.assert_alive()


async def test_disconnect_defaults_to_1008(api_cluster):
    (gw1, api1), _ = api_cluster
    m = await Client.connect(gw1.port, "mallory")
    api1.ok("POST", "/api/disconnect", {"user": "mallory"})
    assert await m.expect_closed() == 1008
    assert m.ws.close_reason == "disconnected by the server"


async def test_unsubscribe_removes_a_user_from_a_room_everywhere(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    m1 = await Client.connect(gw1.port, "mallory")
    m2 = await Client.connect(gw2.port, "mallory")
    watcher = await Client.connect(gw1.port, "watcher")
    for c in (m1, m2, watcher):
        await c.join("r")
    await m1.join("keep")
    assert api2.ok("POST", "/api/unsubscribe", {"user": "mallory", "room": "r"}) == {}
    for c in (m1, m2):
        await c.recv_until("left", where=lambda f: f["room"] == "r")
    await watcher.recv_until("system", where=announces("mallory", "left", "r"))
    await eventually(lambda: _async(api1.ok("POST", "/api/presence", {"room": "r"})["users"]),
                     lambda users: users == ["watcher"], 5, "presence without mallory")
    await m1.chat("still here", "keep")
    assert (await m1.recv_chat())["content"] == "still here"
    # Not in the room any more: a chat there is refused like any other.
    await m2.chat("hello?", "r")
    await m2.expect_error("not_in_room")


async def _async(value):
    return value


async def test_cluster_info(api_cluster):
    (gw1, api1), (gw2, api2) = api_cluster
    await Client.connect(gw1.port, "a")
    await Client.connect(gw2.port, "b")
    await Client.connect(gw2.port, "c")

    async def info():
        return api2.ok("GET", "/api/info")
    got = await eventually(info, lambda i: i["connections"] == 3, 5, "3 connections in info")
    assert got["gateway"] == "gw2" and got["local_connections"] == 2
    assert got["redis"] == {"configured": True, "up": True} and got["gateways_alive"] == 2
    assert sorted((g["id"], g["alive"], g["connections"]) for g in got["gateways"]) == [
        ("gw1", True, 1), ("gw2", True, 2)]


def test_key_is_required(api_cluster):
    (gw1, api1), _ = api_cluster
    for key in ("", "wrong", KEY + "x", KEY[:-1], KEY.upper()):
        status, body, _ = api1.request("GET", "/api/info", key=key or "")
        assert status == 401 and body["error"] == "unauthorized", (key, status, body)
    status, _, _ = api1.request("GET", "/api/info", key="",
                                headers={"Authorization": f"Basic {KEY}"})
    assert status == 401
    # Without the key not even unknown paths are told apart.
    assert api1.request("GET", "/nope", key="")[0] == 401
    assert api_count(gw1, "info", 401) == 6 and api_count(gw1, "other", 401) == 1


def test_bad_input(api_cluster):
    (gw1, api1), _ = api_cluster
    cases = [
        ("POST", "/api/publish", b"{not json", "bad_json"),
        ("POST", "/api/publish", b"[1,2]", "bad_json"),
        ("POST", "/api/publish", b"", "bad_json"),
        ("POST", "/api/publish", b'{"room":"","sender":"b","content":"x"}', "bad_room"),
        ("POST", "/api/publish", b'{"room":"r","sender":"b\\u0001","content":"x"}', "bad_sender"),
        ("POST", "/api/publish", b'{"room":"r","sender":"b","content":""}', "bad_content"),
        ("POST", "/api/publish", b'{"room":"r","sender":"b","content":5}', "bad_content"),
        ("POST", "/api/publish", b'{"room":"r","sender":"b","content":"x","idempotency_key":"\\u00e9"}',
         "bad_idempotency_key"),
        ("POST", "/api/publish", b'{"room":"r","room":"s","sender":"b","content":"x"}', "bad_json"),
        ("POST", "/api/broadcast", b'{"content":"x"}', "bad_sender"),
        ("POST", "/api/presence", b'{"room":7}', "bad_room"),
        ("POST", "/api/history", b'{"room":"r","since":"yesterday"}', "bad_since"),
        ("POST", "/api/history", b'{"room":"r","limit":0}', "bad_limit"),
        ("POST", "/api/history", b'{"room":"r","limit":"5"}', "bad_limit"),
        ("POST", "/api/disconnect", b'{"user":"u","code":1006}', "bad_code"),
        ("POST", "/api/disconnect", b'{"user":"u","reason":"' + b"x" * 124 + b'"}', "bad_reason"),
        ("POST", "/api/disconnect", b'{}', "bad_user"),
        ("POST", "/api/unsubscribe", b'{"user":"u"}', "bad_room"),
    ]
    for method, path, raw, code in cases:
        status, body, payload = api1.request(method, path, raw=raw)
        assert status == 400 and body["error"] == code, (path, raw, status, payload)
        assert payload.count(b"\n") == 1 and body["reason"], payload   # one line
    assert api1.request("GET", "/api/nothing")[0] == 404
    assert api1.request("GET", "/")[0] == 404
    status, body, _ = api1.request("GET", "/api/publish")
    assert status == 405 and body["error"] == "method_not_allowed"
    assert api1.request("POST", "/api/info", {})[0] == 405
    assert api1.request("DELETE", "/api/rooms")[0] == 405
    assert api_count(gw1, "publish", 400) == 9
    assert api_count(gw1, "other", 404) == 2


def test_body_over_the_limit_is_413(redis_server, gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port,
                             ["--api-max-body-bytes", "1k"])
    status, doc, _ = api.request("POST", "/api/publish", raw=b"{" + b" " * 2000 + b"}")
    assert status == 413 and doc["error"] == "too_large"
    assert api_count(gw, "publish", 413) == 1
    # Far over the limit, libevent refuses it while it arrives.
    status, _, _ = api.request("POST", "/api/publish", raw=b"{" + b" " * 5000 + b"}")
    assert status == 413
    ok = api.ok("POST", "/api/publish", {"room": "r", "sender": "s", "content": "x" * 900})
    assert ok["duplicate"] is False


async def test_connection_limit_leaves_the_chat_listener_alone(redis_server, gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port,
                             ["--api-max-connections", "2"])
    idle = [socket.create_connection(("127.0.0.1", api.port)) for _ in range(2)]
    try:
        time.sleep(0.3)
        # The third waits in the listen queue: no answer while two are open.
        with pytest.raises(TimeoutError):
            api.request("GET", "/api/info", timeout=1.0)
        alice = await Client.connect(gw.port, "alice")   # the chat listener serves
        await alice.assert_alive()
        assert gw.http("/healthz")[0] == 200
    finally:
        for s in idle:
            s.close()
    # Once they are gone the API serves again.
    status, _, _ = api.request("GET", "/api/info", timeout=5.0)
    assert status == 200


async def test_single_node_api(gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "solo")
    alice = await Client.connect(gw.port, "alice")
    await alice.join("r")
    sent = api.ok("POST", "/api/publish", {"room": "r", "sender": "bot", "content": "hi",
                                          "idempotency_key": "k"})
    assert (await alice.recv_chat("hi"))["id"] == sent["id"]
    assert api.ok("POST", "/api/publish", {"room": "r", "sender": "bot", "content": "hi",
                                           "idempotency_key": "k"})["duplicate"] is True
    assert api.ok("POST", "/api/presence", {"room": "r"})["users"] == ["alice"]
    assert api.ok("GET", "/api/rooms")["rooms"] == [{"room": "r", "members": 1}]
    assert [m["id"] for m in api.ok("POST", "/api/history", {"room": "r"})["messages"]] == [
        sent["id"]]
    info = api.ok("GET", "/api/info")
    assert info["redis"] == {"configured": False, "up": True} and info["local_connections"] == 1
    api.ok("POST", "/api/unsubscribe", {"user": "alice", "room": "r"})
    await alice.recv_until("left")
    api.ok("POST", "/api/disconnect", {"user": "alice", "code": 4000, "reason": "bye"})
    assert await alice.expect_closed() == 4000


async def test_redis_down_answers_503(redis_server, gateways, tmp_path):
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port)
    redis_server.stop()
    await eventually(lambda: _async(gw.readyz_status()), lambda s: s == 503, 10, "/readyz 503")
    for path, body in (("/api/publish", {"room": "r", "sender": "s", "content": "x"}),
                       ("/api/presence", {"room": "r"}), ("/api/history", {"room": "r"}),
                       ("/api/disconnect", {"user": "u"})):
        status, answer, _ = api.request("POST", path, body)
        assert status == 503 and answer["error"] == "unavailable", (path, status, answer)
    assert api.request("GET", "/api/rooms")[0] == 503
    info = api.ok("GET", "/api/info")
    assert info["redis"] == {"configured": True, "up": False}


@pytest.mark.parametrize("flags, message", [
    (["--api-listen", "127.0.0.1:1"], "--api-key-file"),
    (["--api-key-file", "/dev/null"], "--api-listen"),
    (["--api-listen", "nonsense"], None),
    (["--api-listen", "127.0.0.1:8080"], "other than --listen"),
])
def test_flags_exit_2(flags, message, tmp_path):
    key_flags, _ = api_flags(tmp_path)
    argv = flags if message and "--api-key-file" in message + " ".join(flags) else [
        *flags, *key_flags[2:]]
    result = run_gateway(["--listen", "127.0.0.1:8080", *argv])
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and "--api" in result.stderr, result.stderr
    if message:
        assert message in result.stderr


def test_short_or_missing_key_file_exits_2(tmp_path):
    short = tmp_path / "short"
    short.write_text("tooshort\n")
    for path in (short, tmp_path / "missing"):
        result = run_gateway(["--api-listen", "127.0.0.1:1", "--api-key-file", str(path)])
        assert result.returncode == 2 and "--api-key-file" in result.stderr, result


def test_api_port_taken_exits_1(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        flags, _ = api_flags(tmp_path, port=s.getsockname()[1])
        result = run_gateway(["--listen", "127.0.0.1:0", *flags])
    assert result.returncode == 1 and "api: cannot listen" in result.stderr, result


def test_closed_api_connections_are_released(redis_server, gateways, tmp_path):
    """The limit counts connections evhttp has let go as gone, and their
    sockets are closed: after many short ones, and idle ones dropped before
    a request, the gateway holds the descriptors it held before."""
    gw, api = start_with_api(gateways, tmp_path, "gw1", redis_server.port,
                             ["--api-max-connections", "3"])
    fd_dir = f"/proc/{gw.process.pid}/fd"

    def fds():
        return len(os.listdir(fd_dir))
    api.ok("GET", "/api/info")
    time.sleep(0.3)
    before = fds()
    for i in range(40):
        api.ok("POST", "/api/presence", {"room": f"r{i}"})
    for _ in range(10):
        socket.create_connection(("127.0.0.1", api.port)).close()
    deadline = time.monotonic() + 5
    while fds() != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert fds() == before
    assert api.ok("GET", "/api/rooms") == {"rooms": []}
