"""Every bad input gets an `error` frame with the right code, and the
connection stays open (checked with ping/pong afterwards).

PROTOCOL.md does not say which code a binary frame or an object without a
(string) `type` gets; those cases accept bad_json or unknown_type."""

import json

import pytest

from wsclient import Client

EITHER = ("bad_json", "unknown_type")

NOT_JSON_OBJECTS = {
    "binary frame": b'{"type":"ping"}',
    "not json": "hello",
    "truncated json": '{"type":"ping"',
    "empty text": "",
    "array": '[{"type":"ping"}]',
    "number": "42",
    "string": '"ping"',
    "null": "null",
    "lone surrogate escape": '{"type":"echo","content":"\\ud800"}',
}
CODES = {"binary frame": EITHER, "lone surrogate escape": ("bad_json", "bad_content")}

BAD_ROOMS = {
    "empty": "",
    "65 bytes": "r" * 65,
    "66 bytes Japanese": "部" * 22,
    "control char": "a\u0001b",
    "newline": "a\nb",
    "DEL": "room\u007f",
    "number": 5,
    "list": ["r"],
    "object": {"r": 1},
    "bool": True,
}

BAD_CONTENTS = {"empty": "", "number": 5, "null": None, "list": ["x"], "object": {"x": 1}}


def cases():
    for name, payload in NOT_JSON_OBJECTS.items():
        yield name, payload, CODES.get(name, ("bad_json",))
    yield "missing type", {"content": "x"}, EITHER
    yield "non-string type", {"type": 5}, EITHER
    yield "unknown type", {"type": "dance"}, ("unknown_type",)
    yield "chat missing content", {"type": "chat"}, ("bad_content",)
    for name, content in BAD_CONTENTS.items():
        yield f"chat content {name}", {"type": "chat", "content": content}, ("bad_content",)
    yield "echo missing content", {"type": "echo"}, ("bad_content",)
    yield "echo content number", {"type": "echo", "content": 5}, ("bad_content",)
    for t in ("join_room", "leave_room", "presence"):
        yield f"{t} missing room", {"type": t}, ("bad_room",)
        for name, room in BAD_ROOMS.items():
            yield f"{t} room {name}", {"type": t, "room": room}, ("bad_room",)
    for name, room in BAD_ROOMS.items():
        yield f"chat room {name}", {"type": "chat", "room": room, "content": "x"}, ("bad_room",)


CASES = list(cases())


@pytest.mark.parametrize("payload,codes", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_bad_input_gets_error_and_connection_stays(shared_gateway, payload, codes):
    c = await Client.connect(shared_gateway.port, "bad")
    await c.send_raw(json.dumps(payload) if isinstance(payload, dict) else payload)
    err = await c.expect_error(None)
    assert err["code"] in codes, f"sent {payload!r}: expected {codes}, got {err}"
    await c.assert_alive()
    await c.close()
