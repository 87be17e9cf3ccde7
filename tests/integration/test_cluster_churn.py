"""Fast join/leave churn on one gateway (its room subscription comes and goes
hundreds of times) must leave every subscription correct afterwards."""

import asyncio

import pytest

from gateway_proc import NO_RATE_LIMIT
from msgid import assert_increasing
from wsclient import Client

ROUNDS = 300


@pytest.mark.timeout(40)
async def test_join_leave_churn(make_cluster):
    cluster = make_cluster(extra=NO_RATE_LIMIT)
    steady = await Client.connect(cluster.ports[1], "steady")   # on gw2
    churner = await Client.connect(cluster.ports[0], "churner")  # the only member on gw1
    await steady.join("c")

    async def steady_talks():
        for i in range(50):
            await steady.chat(f"during {i}", room="c")
            await asyncio.sleep(0.01)

    async def churn():
        for _ in range(ROUNDS):   # sent back to back, not waiting for answers
            await churner.send_json({"type": "join_room", "room": "c"})
            await churner.send_json({"type": "leave_room", "room": "c"})
        await churner.send_json({"type": "join_room", "room": "c"})
        answers = []
        try:
            while len(answers) < 2 * ROUNDS + 1:
                frame = await churner.recv_json(5)
                if frame["type"] in ("joined", "left", "error"):
                    answers.append(frame["type"] if frame["type"] != "error" else frame)
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; got {answers.count('joined')} joined and {answers.count('left')} left "
                f"of {ROUNDS + 1} and {ROUNDS}; first answers {answers[:6]}") from None
        assert answers == ["joined", "left"] * ROUNDS + ["joined"]

    async def steady_hears():
        return [await steady.recv_until("chat", 10, where=lambda f: f["sender"] == "steady")
                for _ in range(50)]

    hears = asyncio.create_task(steady_hears())
    await asyncio.gather(steady_talks(), churn())
    during = await hears
    assert [f["content"] for f in during] == [f"during {i}" for i in range(50)]
    assert_increasing([f["id"] for f in during])

    # After the churn both directions work, in order, and membership is right.
    for i in range(20):
        await steady.chat(f"after {i}", room="c")
    got = [await churner.recv_until("chat", 5, where=lambda f: f["content"].startswith("after"))
           for _ in range(20)]
    assert [f["content"] for f in got] == [f"after {i}" for i in range(20)]
    await churner.chat("churner back", room="c")
    await steady.recv_chat("churner back")
    assert await steady.presence("c") == ["churner", "steady"]
