"""Bounded polling inside async tests."""

import asyncio


async def eventually(probe, ok, timeout, what, interval=0.1):
    """Await probe() until ok(value) holds; fail after timeout seconds showing
    the last value seen, so the message says what was wrong. Returns the value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = await probe()
        if ok(value):
            return value
        if loop.time() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; "
                                 f"last value {value!r}")
        await asyncio.sleep(interval)
