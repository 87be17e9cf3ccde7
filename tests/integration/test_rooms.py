"""join_room / leave_room / presence on a single node."""

from aio import eventually
from gateway_proc import NO_RATE_LIMIT
from wsclient import Client, announces


async def test_join_answers_joined_and_announces(gateway):
    a = await Client.connect(gateway.port, "alice")
    joined = await a.join("lobby")
    assert (joined["room"], joined["members"], joined["history"], joined["truncated"]) == \
        ("lobby", 1, [], False), joined
    b = await Client.connect(gateway.port, "bob")
    assert (await b.join("lobby"))["members"] == 2
    sys_frame = await a.recv_until("system", where=announces("bob", "joined", "lobby"))
    assert sys_frame["sender"] == "System"
    assert isinstance(sys_frame["timestamp"], int)


async def test_leave_answers_left_and_announces(gateway):
    a = await Client.connect(gateway.port, "alice")
    b = await Client.connect(gateway.port, "bob")
    await a.join("lobby")
    await b.join("lobby")
    assert await b.leave("lobby") == {"type": "left", "room": "lobby"}
    await a.recv_until("system", where=announces("bob", "left", "lobby"))
    # bob is out: he no longer gets the room's messages, and may not post.
    await a.chat("after", room="lobby")
    await a.recv_chat("after")
    await b.chat("mine", room="lobby")
    await b.expect_error("not_in_room")
    await b.expect_silence("chat", 0.3)


async def test_rejoin_answers_joined_without_system_frame(gateway):
    a = await Client.connect(gateway.port, "alice")
    b = await Client.connect(gateway.port, "bob")
    await a.join("lobby")
    await b.join("lobby")
    await a.recv_until("system", where=announces("bob", "joined", "lobby"))
    again = await b.join("lobby")
    assert again["members"] == 2
    await b.chat("marker", room="lobby")
    seen = []
    while not seen or seen[-1].get("type") != "chat":
        seen.append(await a.recv_json())
    assert seen[-1]["content"] == "marker"
    assert not [f for f in seen if f.get("type") == "system" and f.get("room") == "lobby"], \
        f"a second join announced a system frame: {seen}"


async def test_leave_room_not_joined(gateway):
    a = await Client.connect(gateway.port, "alice")
    await a.send_json({"type": "leave_room", "room": "nowhere"})
    await a.expect_error("not_in_room")
    await a.assert_alive()


async def test_presence(gateway):
    a = await Client.connect(gateway.port, "carol")
    b = await Client.connect(gateway.port, "alice")
    c = await Client.connect(gateway.port, "alice")   # same name twice: listed once
    outsider = await Client.connect(gateway.port, "zed")
    for x in (a, b, c):
        await x.join("r1")
    assert await outsider.presence("r1") == ["alice", "carol"]
    assert await outsider.presence("unknown-room") == []
    await a.leave("r1")
    assert await outsider.presence("r1") == ["alice"]


async def test_presence_after_disconnect(gateway):
    a = await Client.connect(gateway.port, "alice")
    b = await Client.connect(gateway.port, "bob")
    await a.join("r1")
    await b.join("r1")
    await b.close()
    await eventually(lambda: a.presence("r1"), lambda users: users == ["alice"], 5,
                     "bob gone from presence")
    assert (await (await Client.connect(gateway.port, "c")).join("r1"))["members"] == 2


async def test_japanese_room_name(gateway):
    a = await Client.connect(gateway.port, "alice")
    room = "日本語の部屋"
    assert (await a.join(room))["room"] == room
    await a.chat("こんにちは", room=room)
    msg = await a.recv_chat("こんにちは")
    assert msg["room"] == room


async def test_room_name_64_bytes_is_fine(gateway):
    a = await Client.connect(gateway.port, "alice")
    await a.join("r" * 64)
    await a.join("部" * 21)   # 63 bytes


async def test_back_to_back_join_leave_answers_each(gateways):
    gw = gateways.start("burst", extra=NO_RATE_LIMIT)
    a = await Client.connect(gw.port, "alice")
    for _ in range(50):   # not waiting for answers in between
        await a.send_json({"type": "join_room", "room": "j"})
        await a.send_json({"type": "leave_room", "room": "j"})
    answers = []
    while len(answers) < 100:
        frame = await a.recv_json()
        if frame["type"] in ("joined", "left", "error"):
            answers.append(frame["type"] if frame["type"] != "error" else frame)
    assert answers == ["joined", "left"] * 50
    assert await a.presence("j") == []
