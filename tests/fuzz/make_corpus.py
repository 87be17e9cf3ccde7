#!/usr/bin/python3
"""Writes the seed corpus (corpus/<harness>/<seed>) from the lists below.
The inputs' formats are described at the top of each harness. Run it after
changing a seed; the files are committed, so the fuzz run needs no Python."""
import base64
import hashlib
import hmac
import json
import os
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_frame settings byte: bit 0 deferring bus, bits 1-2 history
# (0, 1, 3, 100), bits 3-4 limits (64, 512, 4096, 1m), bit 5 announce.
SYNC = bytes([0 | 2 << 1 | 3 << 3 | 32])
SYNC_NO_HISTORY = bytes([0 | 0 << 1 | 3 << 3])
DEFER = bytes([1 | 2 << 1 | 3 << 3 | 32])
DEFER_SMALL = bytes([1 | 3 << 1 | 0 << 3 | 32])  # 64-byte held limit
DEFER_QUIET = bytes([1 | 1 << 1 | 1 << 3])


def frame(client, obj):
    """A record: client letter and a JSON text frame."""
    text = obj if isinstance(obj, (bytes, str)) else json.dumps(obj, ensure_ascii=False)
    return client.encode() + (text.encode() if isinstance(text, str) else text)


def join(c, room, since=None):
    o = {"type": "join_room", "room": room}
    if since is not None:
        o["since"] = since
    return frame(c, o)


def chat(c, content, room=None):
    o = {"type": "chat", "content": content}
    if room is not None:
        o["room"] = room
    return frame(c, o)


def records(settings, *recs):
    return settings + b"\n".join(recs)


ROOM64 = "r" * 64
FRAME_SEEDS = {
    "every_type": records(
        SYNC,
        join("a", "lobby"), join("b", "lobby"), chat("a", "hello", "lobby"),
        chat("b", "hi all"), frame("a", {"type": "presence", "room": "lobby"}),
        frame("a", {"type": "echo", "content": "ping?"}), frame("b", {"type": "ping"}),
        frame("b", {"type": "leave_room", "room": "lobby"}), b"P",
        frame("a", {"type": "leave_room", "room": "lobby"}), b"A", b"B"),
    "errors": records(
        SYNC,
        b"a{", b"a[]", b"a\"chat\"", b"a{}", b"a{\"type\":1}", b"a{\"type\":\"nope\"}",
        frame("a", {"type": "join_room"}), frame("a", {"type": "join_room", "room": ""}),
        frame("a", {"type": "join_room", "room": 5}),
        frame("a", {"type": "join_room", "room": ROOM64 + "x"}),
        frame("a", {"type": "chat"}), frame("a", {"type": "chat", "content": ""}),
        frame("a", {"type": "echo", "content": 3}),
        frame("a", {"type": "chat", "content": "x", "room": "not-joined"}),
        frame("a", {"type": "leave_room", "room": "not-joined"}),
        b'a{"type":"chat","type":"echo","content":"dup"}',
        join("a", "r", "1"), join("a", "r", "-1"), join("a", "r", "1-"), join("a", "r", 5),
        join("a", "r", "99999999999999999999-0"), join("a", "r", "1-2-3")),
    "too_many_rooms": records(
        SYNC, *[join("a", "room%d" % i) for i in range(10)],
        *[chat("a", "m%d" % i, "room%d" % i) for i in range(10)]),
    "since": records(
        SYNC,
        join("a", "s"), *[chat("a", "m%d" % i, "s") for i in range(5)],
        join("b", "s", None), join("c", "s", "0-0"),
        join("d", "s", "18446744073709551615-18446744073709551615"),
        b'a{"type":"join_room","room":"s","since":null}', join("a", "s", "1-0")),
    "utf8_rooms": records(
        SYNC,
        join("a", "caf\u00e9"), join("a", "\u6f22\u5b57"), join("a", "\U0001f600"),
        join("a", ROOM64), join("a", "\u00e9" * 32),
        b'a{"type":"join_room","room":"\xc0\xaf"}',
        b'a{"type":"join_room","room":"\xed\xa0\x80"}',
        b'a{"type":"join_room","room":"\xf4\x90\x80\x80"}',
        b'a{"type":"join_room","room":"\\u0080"}',
        b'a{"type":"join_room","room":"\\u007f"}',
        b'a{"type":"join_room","room":"\\u0000x"}',
        b'a{"type":"join_room","room":"\\ud83d\\ude00"}',
        b'a{"type":"join_room","room":"\\ud800"}',
        b'a{"type":"echo","content":"nul\\u0000inside"}',
        b'a{"type":"echo","content":"\xff\xfe"}',
        chat("a", "\u2028\u2029\U0010ffff", "caf\u00e9")),
    "names": records(
        SYNC,
        b"n\x00Zo\xc3\xab", join("a", "x"), b"n\x01" + b"N" * 32, join("b", "x"),
        b"n\x02" + b"M" * 33, b"n\x03\x7f", b"n\x03alice", join("d", "x"),
        frame("a", {"type": "presence", "room": "x"}), b"D",
        frame("a", {"type": "presence", "room": "x"})),
    "deferred_join": records(
        DEFER,
        join("a", "d"), b"S", b"J", join("b", "d"), chat("a", "while b joins", "d"),
        chat("a", "again", "d"), b"J", chat("b", "joined", "d"),
        join("b", "d", "0-0"), chat("a", "during rejoin", "d"), b"J",
        join("c", "d"), b"P", b"c" + json.dumps({"type": "ping"}).encode(), b"P", b"J"),
    "deferred_late_history": records(
        DEFER,
        join("a", "l"), b"S", b"J", join("b", "l"), chat("a", "held and in history", "l"),
        b"K", chat("a", "after", "l"), join("b", "l", "0-0"), chat("a", "again", "l"), b"K"),
    "deferred_orphan": records(
        DEFER,
        join("a", "o"), b"S", b"J", join("b", "o"), b"B", b"J",
        join("c", "p"), frame("c", {"type": "leave_room", "room": "p"}), b"P", b"S", b"J"),
    "deferred_overflow": records(
        DEFER_SMALL,
        join("a", "f"), b"S", b"J", join("b", "f"),
        *[chat("a", "x" * 20, "f") for i in range(6)], b"J"),
    "deferred_down": records(
        DEFER,
        join("a", "k"), b"S", b"J", b"X", join("b", "k"), chat("a", "lost", "k"),
        frame("a", {"type": "presence", "room": "k"}), join("a", "k"), b"X",
        join("b", "k"), b"J", chat("b", "back", "k")),
    "deferred_subscribe_fails": records(
        DEFER,
        join("a", "q"), join("b", "q"), b"s", join("c", "q"), b"s", b"S", b"J", b"J"),
    "waiting_requests": records(
        DEFER_QUIET,
        join("a", "w"), frame("a", {"type": "ping"}), chat("a", "queued", "w"),
        frame("a", {"type": "leave_room", "room": "w"}), join("a", "w"), b"S", b"J", b"J"),
    "no_history": records(
        SYNC_NO_HISTORY,
        join("a", "h"), chat("a", "gone", "h"), join("b", "h", "0-0"), chat("b", "x", "h")),
}

CONFIG_SEEDS = {
    "defaults": b"",
    "listen_redis": b"--listen\n127.0.0.1:8081\n--redis\nredis://127.0.0.1:6379\n--id\ngw1",
    "ipv6": b"--listen=[::1]:0\n--redis=redis://[::1]/",
    "equals_forms": b"--history=0\n--max-rooms=1\n--rate-limit=0\n--rate-burst=0",
    "durations": b"--ping-interval\n1.5s\n--pong-timeout\n2500ms\n--shutdown-timeout\n0"
                 b"\n--handshake-timeout\n86400s",
    "sizes": b"--max-message-bytes\n64k\n--send-queue-limit\n1M\n--max-header-bytes\n65535",
    "origins": b"--allowed-origins\n https://a.example , ,https://b.example,",
    "tls": b"--tls-cert\n/c.pem\n--tls-key\n/k.pem\n--jwt-secret\ns3cret",
    "bools_levels": b"--announce-connections\noff\n--log-level\ndebug",
    "env": b"GATEWAY_LISTEN=0.0.0.0:1\nGATEWAY_HISTORY=5\nGATEWAY_REDIS=\n--history\n7",
    "env_bad": b"GATEWAY_PING_INTERVAL=abc",
    "errors": b"--listen\nnoport\n--nope\n-x\npositional",
    "help": b"--help",
    "missing_value": b"--redis",
    "ping_vs_pong": b"--ping-interval\n60s\n--pong-timeout\n60s",
    "long_id": b"--id\n" + b"g" * 65,
    "nul_separated": b"--listen\x00localhost:80\x00--id\x00caf\xc3\xa9",
    "redis_sentinel": b"--redis\nrediss+sentinel://gw:p%40ss@10.0.0.1,[::1]:26380,h:1/mymaster/3"
                      b"\nGATEWAY_REDIS_SENTINEL_PASSWORD=s\n--redis-sentinel-password-file\n/pw"
                      b"\nredis+sentinel://h,,h/m\nredis+sentinel://h/bad name",
    "redis_credentials": b"--redis\nredis://gate%40way:p%40ss%3Aword@[::1]:6380/3\n"
                         b"GATEWAY_REDIS_PASSWORD=x\n--redis-password-file\n/dev/null\n",
    "redis_password_sources": b"GATEWAY_REDIS=redis://gateway@127.0.0.1/0\n"
                              b"GATEWAY_REDIS_PASSWORD=secret\n--redis-password-file\n/etc/hostname\n",
    "redis_cluster": b"--redis\nrediss+cluster://gw:p%40ss@10.0.0.1:7000,[::1]:7001,h\n"
                     b"--redis-prefix\nchat:\nredis+cluster://h,,h\nredis+cluster://h:7000/1\n"
                     b"--events-stream\non\n--api-listen\n127.0.0.1:1",
    "values": b"0\n18446744073709551615\n999999999999999999\n1.\n.5\n1e3\n-1\n+1\n0x10"
              b"\n1.5ms\n1k\n1m\n1g\n1048576m\nredis://h\nredis://h:0\nredis://h/0\nh:65536",
}

SECRET = b"fuzz-secret"
NOW = 1700000000


def b64(raw):
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


def token(header, claims, secret=SECRET):
    signed = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(claims).encode())
    sig = b64(hmac.new(secret, signed, hashlib.sha256).digest())
    return signed + b"." + sig


HS = {"alg": "HS256", "typ": "JWT"}
LATER = NOW + 3600
AUTH_SEEDS = {
    "valid_name": b"T" + token(HS, {"name": "alice", "exp": LATER}),
    "valid_sub": b"T" + token(HS, {"sub": "bob", "exp": LATER, "nbf": NOW - 1}),
    "valid_utf8": b"T" + token(HS, {"name": "Zo\u00eb \U0001f600", "exp": LATER + 0.5}),
    "expired": b"T" + token(HS, {"name": "alice", "exp": NOW}),
    "not_yet": b"T" + token(HS, {"name": "alice", "exp": LATER, "nbf": NOW + 60}),
    "no_exp": b"T" + token(HS, {"name": "alice"}),
    "alg_none": b"T" + b64(b'{"alg":"none"}') + b"." + b64(b'{"name":"a","exp":2e9}') + b".",
    "alg_hs512": b"T" + token({"alg": "HS512"}, {"name": "alice", "exp": LATER}),
    "bad_signature": b"T" + token(HS, {"name": "alice", "exp": LATER}, b"other"),
    "two_parts": b"Tabc.def",
    "four_parts": b"Ta.b.c.d",
    "empty": b"T",
    "bad_base64": b"T" + token(HS, {"name": "alice", "exp": LATER})[:-1] + b"=",
    "mint_valid": b'J{"alg":"HS256"}\n{"name":"carol","exp":1800000000}',
    "mint_long_name": b'J{"alg":"HS256"}\n{"name":"' + b"n" * 33 + b'","exp":1800000000}',
    "mint_control": b'J{"alg":"HS256"}\n{"sub":"a\\u0001b","exp":1800000000}',
    "mint_types": b'J{"alg":"HS256"}\n{"name":5,"sub":"x","exp":"1800000000","nbf":null}',
    "mint_dupes": b'J{"alg":"HS256","alg":"none"}\n{"name":"d","exp":1800000000}',
    "mint_not_object": b'J["HS256"]\n{"name":"d","exp":1800000000}',
    "sign_bad_base64": b"S" + b64(b'{"alg":"HS256"}') + b".e30=",
    "sign_padding_bits": b"S" + b64(b'{"alg":"HS256"}') + b".e31",
    "mint_big_numbers": b'J{"alg":"HS256"}\n{"name":"e","exp":1e400,"nbf":-1e400}',
}


def write(harness, seeds):
    d = os.path.join(HERE, "corpus", harness)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


write("fuzz_frame", FRAME_SEEDS)
write("fuzz_config", CONFIG_SEEDS)
write("fuzz_auth", AUTH_SEEDS)
