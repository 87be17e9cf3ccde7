"""The native twin of the compose topology, through each load balancer:
clients spread over all three gateways and chat in one room; a gateway that
stops sends its clients away with 1001 and they recover through the load
balancer with `since`, without a gap."""

import asyncio
import collections
import itertools
import socket

import pytest

from aio import eventually
from member import Member
from msgid import assert_increasing
from native_cluster import GATEWAYS, healthcheck, run_async
from netutil import http_get

CLIENTS = 30
ROOM = "deploy"
LOAD_BALANCERS = ["nginx", "haproxy"]
# Failover: messages before gw2 stops, during its shutdown, while its clients
# are away, and after they are back.
BEFORE, DURING, AWAY, AFTER = 10, 10, 10, 5
TOTAL = BEFORE + DURING + AWAY + AFTER


async def join_all(lb_port, reconnect_gate=None):
    members = [Member(lb_port, f"user{i}", ROOM, reconnect_gate) for i in range(CLIENTS)]
    # One after the other: the load balancer counts each connection before
    # the next arrives, so least-connections spreads them evenly.
    for member in members:
        await member.connect()
    return members


async def close_all(members):
    await asyncio.gather(*(m.close() for m in members), return_exceptions=True)


async def settle(readers, timeout=10):
    """Let the members read until they have every message or timeout passes,
    then stop them: the assertions afterwards name what is missing, which a
    timeout could not."""
    await asyncio.wait(readers, timeout=timeout)
    for task in readers:
        if task.done():
            task.result()  # a reader's own failure (an error frame, no reconnect)
        else:
            task.cancel()


def gap_report(member, reference):
    missing = [i for i in reference.ids if i not in member.ids]
    extra = [i for i, n in collections.Counter(member.ids).items() if n > 1 or
             i not in reference.ids]
    return (f"{member.name} (via {member.gateways}) differs after reconnecting: "
            f"missing {missing}, duplicate or unknown {extra}; rejoins (since, history) "
            f"{member.rejoins}; room order {reference.ids}")


def now(read):
    """A probe for aio.eventually that reads state without awaiting anything."""
    async def probe():
        return read()
    return probe


def spread(members):
    return collections.Counter(m.gateways[-1] for m in members)


@pytest.mark.parametrize("lb", LOAD_BALANCERS)
def test_http_and_health_through_load_balancer(start_cluster, lb):
    cluster = start_cluster(lb)
    status, headers, body = http_get(cluster.lb_port, "/")
    assert status == 200 and b"<" in body, (status, body[:200])
    for path in ("/healthz", "/readyz", "/app.js", "/view/dom.js"):
        assert http_get(cluster.lb_port, path)[0] == 200, path
    # /metrics and anything not public stay on the gateways' own ports, also
    # spelled so that only the gateway would decode it to /metrics.
    for path in ("/metrics", "/metrics/", "/%6detrics", "//metrics", "/view/../metrics",
                 "/README.md"):
        assert http_get(cluster.lb_port, path)[0] == 403, path
    assert http_get(cluster.gateway_ports["gw1"], "/metrics")[0] == 200
    # The image's HEALTHCHECK script, against every gateway.
    for name, port in cluster.gateway_ports.items():
        assert healthcheck(port).returncode == 0, name


def upgrade_status(port, origin):
    """The status a WebSocket upgrade from origin gets, read from the raw
    status line (the gateway refuses with an HTTP/1.0 line, which the
    websockets client will not parse)."""
    request = (f"GET /ws?username=browser HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
               f"Origin: {origin}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request.encode())
        status_line = sock.makefile("rb").readline().decode()
    return int(status_line.split()[1])


@pytest.mark.parametrize("lb", LOAD_BALANCERS)
def test_page_origin_is_the_load_balancers(start_cluster, lb):
    """The gateway accepts an upgrade from its own origin: behind the load
    balancer that is the load balancer's host and port, so the Host header
    must reach the gateway unchanged."""
    cluster = start_cluster(lb)
    assert upgrade_status(cluster.lb_port, f"http://127.0.0.1:{cluster.lb_port}") == 101
    assert upgrade_status(cluster.lb_port, "http://elsewhere.example") == 403


@pytest.mark.parametrize("lb", LOAD_BALANCERS)
def test_clients_land_on_all_gateways_and_chat_in_one_room(start_cluster, lb):
    cluster = start_cluster(lb)

    async def scenario():
        members = await join_all(cluster.lb_port)
        try:
            assert set(spread(members)) == set(GATEWAYS), spread(members)
            readers = [asyncio.create_task(m.follow(CLIENTS)) for m in members]
            for member in members:
                await member.say(f"from {member.name}")
            await settle(readers)
            return members
        finally:
            await close_all(members)

    members = run_async(scenario(), 30)
    reference = members[0]
    assert sorted(reference.contents) == sorted(f"from user{i}" for i in range(CLIENTS))
    assert_increasing(reference.ids)
    for member in members:
        assert member.ids == reference.ids, f"{member.name} saw another order"


@pytest.mark.parametrize("lb", LOAD_BALANCERS)
def test_stopped_gateway_clients_recover_through_load_balancer(start_cluster, lb):
    cluster = start_cluster(lb)
    counter = itertools.count()
    gate = asyncio.Event()

    async def chat(senders, count, pause=0.0):
        for sender in itertools.islice(itertools.cycle(senders), count):
            await sender.say(f"msg{next(counter)}")
            await asyncio.sleep(pause)

    async def scenario():
        members = await join_all(cluster.lb_port, gate)
        try:
            movers = [m for m in members if m.gateways[-1] == "gw2"]
            stayers = [m for m in members if m.gateways[-1] != "gw2"]
            assert movers and stayers, spread(members)
            readers = [asyncio.create_task(m.follow(TOTAL)) for m in members]
            await chat(stayers, BEFORE)
            # The room keeps talking while gw2 shuts down...
            stopped, _ = await asyncio.gather(asyncio.to_thread(cluster.stop, "gw2"),
                                              chat(stayers, DURING, pause=0.05))
            assert stopped.returncode == 0, stopped.stderr
            await eventually(now(lambda: [m.close_codes for m in movers]), all, 10,
                             "gw2's clients to be closed")
            # ...and while its clients are away: they need history for these.
            await chat(stayers, AWAY)
            gate.set()
            await eventually(now(lambda: [m.gateways[1:] for m in movers]), all, 15,
                             "gw2's clients to reconnect")
            await chat(stayers, AFTER)
            await settle(readers)
            return movers, stayers
        finally:
            await close_all(members)

    movers, stayers = run_async(scenario(), 60)
    reference = stayers[0]
    assert sorted(reference.contents) == sorted(f"msg{i}" for i in range(TOTAL))
    assert_increasing(reference.ids)
    for member in stayers:
        assert member.close_codes == [], f"{member.name} was disconnected"
        assert member.ids == reference.ids, f"{member.name} saw another order"
    for member in movers:
        assert set(member.close_codes) == {1001}, f"{member.name}: close codes {member.close_codes}"
        assert member.gateways[-1] in {"gw1", "gw3"}, f"{member.name}: {member.gateways}"
        assert member.recovered >= AWAY, f"{member.name} got {member.recovered} from history"
        assert member.ids == reference.ids, gap_report(member, reference)
