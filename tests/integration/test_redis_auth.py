"""Redis with a password or an ACL user (issue #16, item 1; README "Redis
with a password or an ACL user"): the password from the URL,
GATEWAY_REDIS_PASSWORD or --redis-password-file, never in the log (nor in
the process list but for the URL); an ACL user with exactly the README's
line runs a whole cluster; wrong credentials keep the gateway up, not
ready, logging one line per attempt, until Redis lets it in; bad input at
start-up exits 2 with one line naming the flag."""

import asyncio
import pathlib
import re
import shlex
import socket

import pytest

from aio import eventually
from gateway_proc import REPO, run_gateway
from netutil import free_port
from redis_proc import RedisServer, _read_reply
from wsclient import Client

ROOM = "locked"
# Percent-encoded in URLs: p%40ss%3Aword%20%25x
PASSWORD = "p@ss:word %x"
PASSWORD_IN_URL = "p%40ss%3Aword%20%25x"


def redis_as(port, auth, *args):
    """One command on a fresh connection after AUTH *auth (() for none)."""
    def encode(cmd):
        out = [b"*%d\r\n" % len(cmd)]
        for a in cmd:
            data = str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        return b"".join(out)

    with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
        with s.makefile("rb") as f:
            if auth:
                s.sendall(encode(("AUTH", *auth)))
                _read_reply(f)
            s.sendall(encode(args))
            return _read_reply(f)


def readme_acl_rules():
    """The ACL rules of README's `user gateway ...` line, without `user gateway`."""
    lines = [line for line in (REPO / "README.md").read_text().splitlines()
             if line.startswith("user gateway ")]
    assert len(lines) == 1, f"README must hold one 'user gateway ...' line, found {lines}"
    return shlex.split(lines[0])[2:]


@pytest.fixture
def locked_redis(tmp_path):
    """A redis-server whose default user needs PASSWORD (set once it runs, so
    that the helper's readiness check can still PING)."""
    server = RedisServer(tmp_path / "redis").start()
    server.command("CONFIG", "SET", "requirepass", PASSWORD)
    server.auth = ("default", PASSWORD)
    yield server
    server.stop(timeout=5)
    print(f"----- redis-server (port {server.port}) log tail:\n{server.log_tail()}")


def url(port, userinfo="", db=""):
    return f"redis://{userinfo}127.0.0.1:{port}{db}"


def cmdline(gw):
    return pathlib.Path(f"/proc/{gw.process.pid}/cmdline").read_bytes().replace(b"\0", b" ")


def assert_secret_kept(gw, secret, in_cmdline=False):
    # The first line is the harness's record of the command line.
    text = "\n".join(line for line in gw.log_text().splitlines() if not line.startswith("$ "))
    for form in {secret, PASSWORD_IN_URL}:
        assert form not in text, f"the password is in {gw.name}'s log:\n{text}"
    if not in_cmdline:
        assert secret.encode() not in cmdline(gw)


async def chat_across(gw_a, gw_b, room=ROOM):
    alice = await Client.connect(gw_a.port, "alice")
    bob = await Client.connect(gw_b.port, "bob")
    for c in (alice, bob):
        await c.join(room)
    await alice.chat("hello", room=room)
    await bob.recv_chat("hello")
    await alice.recv_chat("hello")
    return alice, bob


async def test_password_in_url_percent_decoded(locked_redis, gateways):
    gw = gateways.start("gw1", extra=["--redis", url(locked_redis.port, f":{PASSWORD_IN_URL}@")],
                        wait_ready=True)
    await chat_across(gw, gw)
    assert_secret_kept(gw, PASSWORD, in_cmdline=True)


async def test_password_from_environment(locked_redis, gateways):
    gws = [gateways.start(f"gw{i}", locked_redis.port, env={"GATEWAY_REDIS_PASSWORD": PASSWORD},
                          wait_ready=True) for i in (1, 2)]
    await chat_across(*gws)
    for gw in gws:
        assert_secret_kept(gw, PASSWORD)


async def test_password_from_file(locked_redis, gateways, tmp_path):
    secret = tmp_path / "redis-password"
    secret.write_text(PASSWORD + "\n")
    gws = [gateways.start(f"gw{i}", locked_redis.port,
                          extra=["--redis-password-file", str(secret)], wait_ready=True)
           for i in (1, 2)]
    await chat_across(*gws)
    for gw in gws:
        assert_secret_kept(gw, PASSWORD)


@pytest.mark.timeout(40)
async def test_acl_user_with_the_readme_rights_runs_the_cluster(locked_redis, gateways, tmp_path):
    """Exactly README's ACL line: joins, chat across gateways, presence,
    counts, history and since, a flushed script cache, leaving, and a clean
    shutdown (which withdraws presence and counts); Redis denies
    nothing (ACL LOG stays empty) and the connections are the gateway
    user's."""
    secret = "gw-" + PASSWORD
    rules = [r.replace(">PASSWORD", ">" + secret) for r in readme_acl_rules()]
    auth = locked_redis.auth
    assert redis_as(locked_redis.port, auth, "ACL", "SETUSER", "gateway", *rules) == "OK"
    redis_as(locked_redis.port, auth, "ACL", "LOG", "RESET")
    pwfile = tmp_path / "gw-password"
    pwfile.write_text(secret)
    gws = [gateways.start(f"gw{i}", extra=["--redis", url(locked_redis.port, "gateway@"),
                                           "--redis-password-file", str(pwfile)],
                          wait_ready=True) for i in (1, 2)]
    alice, bob = await chat_across(*gws)
    sent = [(await alice.chat(f"m{i}", room=ROOM), await bob.recv_chat(f"m{i}"))[1]
            for i in range(3)]
    assert sorted(await bob.presence(ROOM)) == ["alice", "bob"]
    carol = await Client.connect(gws[1].port, "carol")
    joined = await carol.join(ROOM, since=sent[0]["id"])
    assert [m["content"] for m in joined["history"]] == ["m1", "m2"]
    assert joined["truncated"] is False
    # A flushed script cache: the chat goes through EVAL, which loads it again.
    redis_as(locked_redis.port, auth, "SCRIPT", "FLUSH")
    await alice.chat("to everyone")
    await carol.recv_chat("to everyone")
    await bob.leave(ROOM)
    await eventually(lambda: alice.presence(ROOM),
                     lambda users: sorted(users) == ["alice", "carol"], 5, "presence without bob")
    await alice.close()
    await carol.recv_until("client_count", where=lambda f: f["count"] == 2)
    clients = redis_as(locked_redis.port, auth, "CLIENT", "LIST")
    users = re.findall(r"user=(\S+)", clients)
    assert users.count("gateway") >= 4, clients   # two connections per gateway
    for gw in gws:
        assert gw.stop(timeout=5) == 0
    denied = redis_as(locked_redis.port, auth, "ACL", "LOG")
    assert denied == [], f"Redis denied the gateway user something: {denied}"
    assert redis_as(locked_redis.port, auth, "KEYS", "*") and all(
        k.startswith("chat:") for k in redis_as(locked_redis.port, auth, "KEYS", "*"))


def refusal_lines(gw, needle):
    return [line for line in gw.log_text().splitlines()
            if "cannot connect" in line and needle in line]


async def refused_twice(gw, needle):
    """Waits for two refusals whose line holds needle; returns the lines."""
    async def probe():
        return refusal_lines(gw, needle)
    return await eventually(probe, lambda lines: len(lines) >= 2, 10, f"two '{needle}' lines")


@pytest.mark.timeout(40)
async def test_wrong_password_retries_until_fixed_on_the_redis_side(locked_redis, gateways):
    wrong = "not-the-" + PASSWORD
    gw = gateways.start("gw1", locked_redis.port, env={"GATEWAY_REDIS_PASSWORD": wrong})
    alice = await Client.connect(gw.port, "alice")
    await asyncio.sleep(4)
    lines = refusal_lines(gw, "WRONGPASS")
    # Backoff: 100 ms doubling to 3 s (with jitter) is 3 to 8 attempts in 4 s.
    assert 2 <= len(lines) <= 10, gw.log_text()
    assert all("AUTH as user 'default' (password from GATEWAY_REDIS_PASSWORD) refused" in line
               for line in lines), lines
    # One line per attempt: nothing else about Redis in between (but the
    # library's version, said once at start).
    redis_lines = [line for line in gw.log_text().splitlines()
                   if " redis: " in line and " redis: hiredis " not in line]
    assert redis_lines == lines, redis_lines
    assert gw.readyz_status() == 503
    await alice.chat("too early")
    await alice.expect_error("unavailable")
    assert_secret_kept(gw, wrong)

    # Fixed where it is wrong: Redis takes the gateway's password now.
    redis_as(locked_redis.port, locked_redis.auth, "CONFIG", "SET", "requirepass", wrong)
    gw.wait_ready(timeout=10)
    await alice.assert_alive()
    await alice.join(ROOM)
    await alice.chat("now", room=ROOM)
    await alice.recv_chat("now")
    assert "connected to 127.0.0.1" in gw.log_text()


@pytest.mark.timeout(30)
async def test_acl_user_fixed_by_acl_setuser(locked_redis, gateways):
    """A user Redis does not know yet: refused (WRONGPASS) until ACL SETUSER
    creates it with README's rules."""
    gw = gateways.start("gw1", extra=["--redis", url(locked_redis.port, "gateway:later@")])
    lines = await refused_twice(gw, "WRONGPASS")
    assert "AUTH as user 'gateway' (password from the --redis URL) refused" in lines[0]
    rules = [r.replace(">PASSWORD", ">later") for r in readme_acl_rules()]
    redis_as(locked_redis.port, locked_redis.auth, "ACL", "SETUSER", "gateway", *rules)
    gw.wait_ready(timeout=10)
    await chat_across(gw, gw)


@pytest.mark.timeout(30)
async def test_no_password_names_the_problem(locked_redis, gateways):
    gw = gateways.start("gw1", locked_redis.port)
    lines = await refused_twice(gw, "NOAUTH")
    assert "Redis wants a password" in lines[0]
    assert gw.readyz_status() == 503


@pytest.mark.timeout(30)
async def test_database_number(redis_server, gateways):
    gw = gateways.start("gw1", extra=["--redis", url(redis_server.port, db="/3")],
                        wait_ready=True)
    await chat_across(gw, gw)
    assert redis_as(redis_server.port, (), "KEYS", "*") == []
    with socket.create_connection(("127.0.0.1", redis_server.port), timeout=2.0) as s:
        s.sendall(b"*2\r\n$6\r\nSELECT\r\n$1\r\n3\r\n*2\r\n$4\r\nKEYS\r\n$1\r\n*\r\n")
        with s.makefile("rb") as f:
            _read_reply(f)
            keys = _read_reply(f)
    assert any(k.startswith("chat:history:") for k in keys), keys


@pytest.mark.timeout(30)
async def test_acl_user_with_a_database_needs_select(locked_redis, gateways):
    """README: add +select to the ACL line when the URL names a database.
    Without it the refusal names NOPERM; with it the gateway gets in."""
    rules = [r.replace(">PASSWORD", ">pw") for r in readme_acl_rules()]
    redis_as(locked_redis.port, locked_redis.auth, "ACL", "SETUSER", "gateway", *rules)
    gw = gateways.start("gw1", extra=["--redis", url(locked_redis.port, "gateway:pw@", "/2")])
    lines = await refused_twice(gw, "SELECT 2 refused: NOPERM")
    assert "lacks a right the gateway needs" in lines[0]
    redis_as(locked_redis.port, locked_redis.auth, "ACL", "SETUSER", "gateway", "+select")
    gw.wait_ready(timeout=10)
    await chat_across(gw, gw)


@pytest.mark.timeout(30)
async def test_database_out_of_range_is_logged_and_retried(redis_server, gateways):
    gw = gateways.start("gw1", extra=["--redis", url(redis_server.port, db="/99")])
    lines = await refused_twice(gw, "SELECT 99 refused")
    assert "DB index is out of range" in lines[0]
    assert gw.readyz_status() == 503


BAD_URLS = {
    "empty user and password": "redis://:@127.0.0.1",
    "bad percent escape": "redis://u:p%zzsecret@127.0.0.1",
    "short percent escape": "redis://u:secret%4@127.0.0.1",
    "port 0": "redis://127.0.0.1:0",
    "port 99999": "redis://127.0.0.1:99999",
    "database x": "redis://127.0.0.1/x",
    # A password put where the user goes is not echoed either.
    "user without password": "redis://secret@127.0.0.1",
}


def assert_exit_2_naming(result, flag):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0], result.stderr
    assert "secret" not in result.stderr, result.stderr
    return lines[0]


@pytest.mark.parametrize("value", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_malformed_url_exits_2(value):
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    assert_exit_2_naming(run_gateway([*listen, "--redis", value]), "--redis")
    assert_exit_2_naming(run_gateway(listen, env={"GATEWAY_REDIS": value}), "--redis")


def test_unreadable_password_file_exits_2(tmp_path):
    listen = ["--listen", f"127.0.0.1:{free_port()}", "--redis", "redis://127.0.0.1"]
    line = assert_exit_2_naming(
        run_gateway([*listen, "--redis-password-file", str(tmp_path / "missing")]),
        "--redis-password-file")
    assert "missing" in line
    assert_exit_2_naming(run_gateway([*listen, "--redis-password-file", str(tmp_path)]),
                         "--redis-password-file")
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_exit_2_naming(run_gateway([*listen, "--redis-password-file", str(empty)]),
                         "--redis-password-file")


def test_two_password_sources_exit_2(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("secret-file")
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    line = assert_exit_2_naming(
        run_gateway([*listen, "--redis", "redis://127.0.0.1", "--redis-password-file", str(pw)],
                    env={"GATEWAY_REDIS_PASSWORD": "secret-env"}), "--redis-password-file")
    assert "GATEWAY_REDIS_PASSWORD" in line
    assert_exit_2_naming(run_gateway([*listen, "--redis", "redis://:secret-url@127.0.0.1"],
                                     env={"GATEWAY_REDIS_PASSWORD": "secret-env"}), "--redis")


async def test_percent_encoded_user_and_password(locked_redis, gateways):
    """Both parts of the credentials are decoded: user 'gw@one:x' and
    PASSWORD, both with characters a URL must encode."""
    rules = [r.replace(">PASSWORD", ">" + PASSWORD) for r in readme_acl_rules()]
    redis_as(locked_redis.port, locked_redis.auth, "ACL", "SETUSER", "gw@one:x", *rules)
    gw = gateways.start("gw1", extra=["--redis", url(locked_redis.port,
                                                     f"gw%40one%3ax:{PASSWORD_IN_URL}@")],
                        wait_ready=True)
    await chat_across(gw, gw)
    assert "as user 'gw@one:x'" in gw.log_text()
    users = re.findall(r"user=(\S+)", redis_as(locked_redis.port, locked_redis.auth,
                                               "CLIENT", "LIST"))
    assert users.count("gw@one:x") == 2, users
