"""Room chat, global chat and history across three gateways on one Redis."""

from msgid import id_key
from wsclient import Client, announces

KEPT = 5


async def one_per_gateway(cluster, names):
    return [await Client.connect(port, name) for port, name in zip(cluster.ports, names)]


async def test_welcome_names_each_gateway(cluster):
    clients = await one_per_gateway(cluster, ["a", "b", "c"])
    assert [c.welcome["gateway"] for c in clients] == ["gw1", "gw2", "gw3"]


async def test_room_chat_across_gateways(cluster):
    a, b, c = await one_per_gateway(cluster, ["alice", "bob", "carol"])
    outsider = await Client.connect(cluster.ports[2], "zed")
    for x, expected_members in ((a, 1), (b, 2), (c, 3)):
        assert (await x.join("r"))["members"] == expected_members
    await a.recv_until("system", where=announces("carol", "joined", "r"))
    for sender in (a, b, c):
        text = f"hello from {sender.username}"
        await sender.chat(text, room="r")
        frames = [await x.recv_chat(text) for x in (a, b, c)]
        assert all(f == frames[0] for f in frames), frames
        assert (frames[0]["room"], frames[0]["sender"]) == ("r", sender.username)
        id_key(frames[0]["id"])
    await a.chat("global marker")
    assert (await outsider.recv_chat())["content"] == "global marker"


async def test_global_chat_across_gateways(cluster):
    clients = await one_per_gateway(cluster, ["alice", "bob", "carol"])
    await clients[1].chat("to everyone")
    for x in clients:
        f = await x.recv_chat("to everyone")
        assert "room" not in f and f["sender"] == "bob"


async def test_connect_announcements_across_gateways(cluster):
    watcher = await Client.connect(cluster.ports[0], "watcher")
    bob = await Client.connect(cluster.ports[1], "bob")
    await watcher.recv_until("system", where=announces("bob", "connected"))
    await bob.close()
    await watcher.recv_until("system", where=announces("bob", "disconnected"))


async def test_not_in_room_across_gateways(cluster):
    a, b = await one_per_gateway(cluster, ["alice", "bob"])
    await a.join("r")
    await b.chat("x", room="r")
    await b.expect_error("not_in_room")


async def test_history_and_since_across_gateways(make_cluster):
    cluster = make_cluster(extra=["--history", str(KEPT)])
    a = await Client.connect(cluster.ports[0], "alice")
    await a.join("h")
    sent = []
    for i in range(1, 9):
        await a.chat(f"m{i}", room="h")
        sent.append(await a.recv_chat(f"m{i}"))
    summary = lambda msgs: [(m["id"], m["content"]) for m in msgs]  # noqa: E731

    b = await Client.connect(cluster.ports[1], "bob")
    joined = await b.join("h")
    assert summary(joined["history"]) == summary(sent[-KEPT:])
    assert joined["truncated"] is False

    c = await Client.connect(cluster.ports[2], "carol")
    joined = await c.join("h", since=sent[5]["id"])
    assert (summary(joined["history"]), joined["truncated"]) == (summary(sent[6:]), False)

    d = await Client.connect(cluster.ports[2], "dave")
    joined = await d.join("h", since=sent[1]["id"])
    assert (summary(joined["history"]), joined["truncated"]) == (summary(sent[-KEPT:]), True)
