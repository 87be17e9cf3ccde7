"""Async helpers shared by the container tests: bounded scenarios, room
members spread through the load balancer, and the gap-free check."""

import asyncio
import collections

from member import Member
from native_cluster import run_async  # noqa: F401  (re-exported for the tests)
from wsclient import Client

from stack import LB_PORT


async def spread_members(prefix, room, count, reconnect_gate=None):
    """count members connected through the load balancer, one after the other
    (least connections counts each before the next arrives)."""
    members = []
    for i in range(count):
        members.append(await Member(LB_PORT, f"{prefix}{i}", room, reconnect_gate).connect())
    return members


async def writer(port, name, room):
    client = await Client.connect(port, name)
    await client.join(room)
    return client


async def say_all(client, room, contents, pause=0.02):
    for content in contents:
        await client.chat(content, room=room)
        await asyncio.sleep(pause)


async def settle(readers, timeout):
    """Let the members read until done or timeout, then stop them; the gap
    check afterwards names what is missing."""
    await asyncio.wait(readers, timeout=timeout)
    for task in readers:
        if task.done():
            task.result()
        else:
            task.cancel()


def assert_gap_free(members, reference):
    """Every member has the reference's ids, each once, in its order."""
    for m in members:
        dup = [i for i, n in collections.Counter(m.ids).items() if n > 1]
        assert m.ids == reference, (
            f"{m.name} (gateways {m.gateways}, closes {m.close_codes}): missing "
            f"{[i for i in reference if i not in m.ids]}, twice {dup}, rejoins {m.rejoins}")


async def close_all(members):
    await asyncio.gather(*(m.close() for m in members), return_exceptions=True)
