"""More gateways behind the load balancer without editing a file:
`up -d --scale gateway=N`. HAProxy finds the replicas through Docker's DNS
(server-template, resolvers) and drops removed ones by itself."""

import asyncio
import collections

from member import Member
from rooms import assert_gap_free, close_all, run_async, settle, spread_members
from stack import GATEWAY_PORTS, LB_PORT, wait_for
from wsclient import Client

ROOM = "scaling"


async def landing(count):
    """The gateways count new connections through the load balancer land on."""
    clients = [await Client.connect(LB_PORT, f"probe{i}") for i in range(count)]
    seen = collections.Counter(c.welcome["gateway"] for c in clients)
    await asyncio.gather(*(c.close() for c in clients))
    return seen


def wait_lb_spreads_over(gateways, timeout=20):
    """New connections land on exactly these gateways (HAProxy re-resolves
    every second and checks /readyz every 2 s)."""
    return wait_for(lambda: set(seen := run_async(landing(3 * len(gateways)), 30)) == gateways
                    and seen, timeout, f"connections on exactly {sorted(gateways)}", interval=1)


def test_scale_up_then_down_with_clients_recovering_gap_free(cluster):
    cluster.up("--scale", "gateway=3")
    wait_lb_spreads_over(set(cluster.gateway_containers()))
    cluster.up("--scale", "gateway=5")
    five = set(cluster.gateway_containers())
    assert len(five) == 8, five  # gw1..gw3 and five replicas
    seen = wait_lb_spreads_over(five)
    assert max(seen.values()) - min(seen.values()) <= 1, f"least connections: {seen}"

    before, after = [f"before {i}" for i in range(10)], [f"after {i}" for i in range(10)]

    async def scenario():
        author = await Member(GATEWAY_PORTS["gateway1"], "author", ROOM).connect()
        members = await spread_members("m", ROOM, 16)
        assert len({m.gateways[0] for m in members}) == 8
        total = len(before) + len(after)
        readers = [asyncio.create_task(m.follow(total)) for m in [author, *members]]
        for content in before:
            await author.say(content)
        # Compose removes the highest-numbered replicas; their gateways
        # close their clients with 1001, who come back through HAProxy.
        await asyncio.to_thread(cluster.compose, "up", "-d", "--scale", "gateway=2", timeout=120)
        for content in after:
            await author.say(content)
            await asyncio.sleep(0.05)
        await settle(readers, 30)
        moved = [m for m in members if len(m.gateways) > 1]
        assert moved and all(1001 in m.close_codes for m in moved), \
            [(m.name, m.gateways, m.close_codes) for m in members]
        assert_gap_free(members, author.ids)
        assert author.contents == before + after
        await close_all([author, *members])
        return {m.gateways[-1] for m in members}

    last = run_async(scenario(), 90)
    remaining = set(cluster.gateway_containers())
    assert len(remaining) == 5 and last <= remaining
    wait_lb_spreads_over(remaining)
