"""Message ids are "<milliseconds>-<sequence>" strings (README, Redis stream
ids): they compare numerically part by part, never as strings."""

import re

_ID = re.compile(r"^(\d+)-(\d+)$")


def id_key(msg_id):
    """"1700000000000-12" -> (1700000000000, 12); fails on anything else."""
    m = _ID.match(msg_id) if isinstance(msg_id, str) else None
    assert m, f"message id {msg_id!r} is not a '<ms>-<seq>' string"
    return int(m.group(1)), int(m.group(2))


def assert_increasing(ids):
    keys = [id_key(i) for i in ids]
    for a, b, ia, ib in zip(keys, keys[1:], ids, ids[1:]):
        assert a < b, f"ids not increasing: {ia} then {ib}"
