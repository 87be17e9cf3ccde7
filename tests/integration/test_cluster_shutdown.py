"""SIGTERM to one gateway of three: its clients get 1001, the rest go on."""

import asyncio

from aio import eventually
from wsclient import Client, connect_many


async def test_one_gateway_shuts_down_others_go_on(cluster):
    gw1, gw2, gw3 = cluster.gws
    a = await Client.connect(gw1.port, "alice")
    c = await Client.connect(gw3.port, "carol")
    leaving = await connect_many(gw2.port, ["b1", "b2", "b3"])
    for x in [a, c, *leaving]:
        await x.join("s")

    assert await asyncio.to_thread(gw2.stop, 5) == 0
    codes = await asyncio.gather(*(x.expect_closed(5) for x in leaving))
    assert codes == [1001] * 3

    await a.chat("still talking", room="s")
    await c.recv_chat("still talking")
    await c.chat("global still")
    await a.recv_chat("global still")
    await a.recv_until("client_count", where=lambda f: f["count"] == 2)
    await eventually(lambda: c.presence("s"), lambda u: u == ["alice", "carol"], 5,
                     "the stopped gateway's users gone from presence")
    for gw in (gw1, gw3):
        assert gw.readyz_status() == 200
