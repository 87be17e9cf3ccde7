"""Redis Sentinel (issue #16, item 3; README "Redis with Sentinel"): real
redis-server processes, a primary and a replica, three sentinels (quorum 2,
down-after 1 s) and gateways with --redis redis+sentinel://...

- chat works through the primary the sentinels name; /metrics says which;
- the primary SIGKILLed: chats in the gap are answered `unavailable`
  (counted, none silently lost), the gateways move to the new primary by
  themselves (the +switch-master watch, or asking at their next attempt),
  members miss nothing, a client that was away catches up with join_room +
  since;
- SENTINEL FAILOVER with the old primary up: +switch-master alone moves
  the gateways, at once;
- AUTH on the data nodes and on the sentinels (their own requirepass);
- rediss+sentinel://: TLS to the sentinels and to the data nodes;
- a sentinel answer that names a replica (stale), an unknown master name,
  no sentinel up: one line per attempt, /readyz 503, retried with backoff;
- bad input at start-up: exit 2 with one line naming the flag."""

import asyncio
import json

import pytest

from aio import eventually
from failover import measure_failover
from gateway_proc import NO_RATE_LIMIT, run_gateway
from netutil import free_port
from redis_proc import RedisServer
from sentinel_proc import MASTER, SentinelSetup
from test_redis_auth import assert_exit_2_naming, assert_secret_kept
from test_redis_tls import pki  # noqa: F401 - the module's certificates, a fixture here too
from wsclient import Client

ROOM = "ha"
DATA_PASSWORD = "data p@ss"
SENTINEL_PASSWORD = "sentinel:secret"


@pytest.fixture
def sentinels(tmp_path):
    setup = SentinelSetup(tmp_path / "redis").start()
    yield setup
    setup.stop_all()
    print(setup.log_tails())


@pytest.fixture
def locked_sentinels(tmp_path):
    """Data nodes with requirepass DATA_PASSWORD, sentinels with requirepass
    SENTINEL_PASSWORD."""
    setup = SentinelSetup(tmp_path / "redis", data_password=DATA_PASSWORD,
                          sentinel_password=SENTINEL_PASSWORD).start()
    yield setup
    setup.stop_all()
    print(setup.log_tails())


def info(gw):
    """gateway_redis_info's labels, and the failover count."""
    m = gw.metrics()
    labels = [k for k in m if k.startswith("gateway_redis_info{")]
    assert len(labels) == 1, labels
    return labels[0], m["gateway_redis_failovers_total"]


def info_label(port, tls="off"):
    return f'gateway_redis_info{{mode="sentinel",primary="127.0.0.1:{port}",tls="{tls}"}}'


async def readyz(gw):
    return await asyncio.to_thread(gw.readyz_status)


def lines_with(gw, *needles):
    return [line for line in gw.log_text().splitlines() if all(n in line for n in needles)]


async def lines_eventually(gw, count, *needles, timeout=10):
    async def probe():
        return lines_with(gw, *needles)
    return await eventually(probe, lambda lines: len(lines) >= count, timeout,
                            f"{count} log lines with {needles}")


async def members(gws, names):
    clients = [await Client.connect(gw.port, name) for gw, name in zip(gws, names)]
    for c in clients:
        await c.join(ROOM)
    return clients


@pytest.mark.timeout(120)
async def test_failover_is_followed_and_nothing_is_silently_lost(sentinels, gateways):
    gws = [gateways.start(f"gw{i}", extra=["--redis", sentinels.url(), *NO_RATE_LIMIT],
                          wait_ready=True) for i in (1, 2, 3)]
    old = sentinels.primary_port()
    for gw in gws:
        assert info(gw) == (info_label(old), 0)
        assert lines_with(gw, f"connected to 127.0.0.1:{old}, the primary of '{MASTER}' as "
                              "sentinel 127.0.0.1:")
        assert lines_with(gw, "watching sentinel 127.0.0.1:", f"for failovers of '{MASTER}'")
    alice, bob, carol, dave = await members([gws[0], gws[1], gws[2], gws[2]],
                                            ["alice", "bob", "carol", "dave"])
    await alice.chat("before", room=ROOM)
    seen = [await c.recv_chat("before") for c in (alice, bob, carol, dave)]
    # dave goes away before the failover; he comes back with since.
    since = seen[3]["id"]
    await dave.close()

    primary = sentinels.primary

    def kill():
        primary.kill()   # SIGKILL by PID

    run = await measure_failover(alice, [bob, carol], ROOM, kill)
    print("failover:", json.dumps({k: run[k] for k in (
        "failover_s", "first_unavailable_s", "sent", "sent_after_kill")}),
        "unavailable:", len(run["unavailable"]), "delivered:", len(run["delivered"]))

    # Every chat was answered: delivered or `unavailable`, never silence.
    assert run["silent"] == [], run
    assert run["other_errors"] == [], run
    assert run["both"] == [], run
    assert run["unavailable"], "no chat fell into the gap: the test measured nothing"
    # Members on the other gateways got exactly what was delivered, in order.
    for received in run["received"]:
        assert received == run["delivered"], run
    new = sentinels.wait_failover(old, timeout=5)
    assert new != old
    for gw in gws:
        assert await readyz(gw) == 200
        assert info(gw) == (info_label(new), 1)
        assert gw.metrics()["gateway_redis_reconnects_total"] == 1
        # By +switch-master, or by asking at its next attempt when a sentinel
        # knew before the watched one said so.
        assert lines_with(gw, f"connected to 127.0.0.1:{new}",
                          f"(failover followed: the primary was 127.0.0.1:{old})")
    # /metrics counted each unavailable answer.
    assert gws[0].metrics()["gateway_bus_publish_failures_total"] == len(run["unavailable"])

    # dave, back, asks for what he missed: exactly the delivered chats, none
    # of the refused ones, from the new primary's history.
    dave = await Client.connect(gws[2].port, "dave")
    joined = await dave.join(ROOM, since=since)
    assert [m["content"] for m in joined["history"]] == run["delivered"], joined
    assert joined["truncated"] is False
    # And the room goes on.
    await bob.chat("after", room=ROOM)
    for c in (alice, carol, dave):
        await c.recv_chat("after")


@pytest.mark.timeout(60)
async def test_switch_master_moves_a_live_link(sentinels, gateways):
    """SENTINEL FAILOVER: the old primary stays up and keeps the gateways'
    connections; only +switch-master tells them to leave it, at once."""
    gws = [gateways.start(f"gw{i}", extra=["--redis", sentinels.url()], wait_ready=True)
           for i in (1, 2)]
    alice, bob = await members(gws, ["alice", "bob"])
    old = sentinels.primary_port()
    assert sentinels.sentinels[1].command("SENTINEL", "FAILOVER", MASTER) == "OK"
    new = await asyncio.to_thread(sentinels.wait_failover, old)
    for gw in gws:
        await eventually(lambda gw=gw: asyncio.to_thread(info, gw),
                         lambda i: i == (info_label(new), 1), 15, f"{gw.name} on the new primary")
        assert lines_with(gw, "failover: sentinel 127.0.0.1:", f"the primary of '{MASTER}' moved "
                              f"from 127.0.0.1:{old} to 127.0.0.1:{new}; leaving the old primary")
        assert lines_with(gw, f"lost (the primary moved to 127.0.0.1:{new})")
    await alice.chat("on the new primary", room=ROOM)
    await bob.recv_chat("on the new primary")


@pytest.mark.timeout(90)
async def test_auth_on_data_nodes_and_sentinels(locked_sentinels, gateways, tmp_path):
    """The URL's password is the data nodes'; the sentinels' own comes from
    a file or GATEWAY_REDIS_SENTINEL_PASSWORD. Both kept out of the log; a
    failover keeps working with both."""
    setup = locked_sentinels
    pwfile = tmp_path / "sentinel-password"
    pwfile.write_text(SENTINEL_PASSWORD + "\n")
    url = setup.url(userinfo="default:data%20p%40ss@")
    gw1 = gateways.start("gw1", extra=["--redis", url, "--redis-sentinel-password-file",
                                       str(pwfile)], wait_ready=True)
    gw2 = gateways.start("gw2", extra=["--redis", setup.url()],
                         env={"GATEWAY_REDIS_PASSWORD": DATA_PASSWORD,
                              "GATEWAY_REDIS_SENTINEL_PASSWORD": SENTINEL_PASSWORD},
                         wait_ready=True)
    alice, bob = await members([gw1, gw2], ["alice", "bob"])
    await alice.chat("locked", room=ROOM)
    await bob.recv_chat("locked")

    old = setup.primary_port()
    setup.primary.kill()
    new = await asyncio.to_thread(setup.wait_failover, old)
    for gw in (gw1, gw2):
        await eventually(lambda gw=gw: readyz(gw), lambda s: s == 200, 15, f"{gw.name} ready")
        assert info(gw) == (info_label(new), 1)
    await bob.chat("still locked", room=ROOM)
    await alice.recv_chat("still locked")
    for gw in (gw1, gw2):
        assert_secret_kept(gw, SENTINEL_PASSWORD)
        assert_secret_kept(gw, DATA_PASSWORD, in_cmdline=gw is gw1)


@pytest.mark.timeout(40)
async def test_wrong_or_missing_sentinel_password(locked_sentinels, gateways):
    setup = locked_sentinels
    missing = gateways.start("gw1", extra=["--redis", setup.url()],
                             env={"GATEWAY_REDIS_PASSWORD": DATA_PASSWORD})
    wrong = gateways.start("gw2", extra=["--redis", setup.url()],
                           env={"GATEWAY_REDIS_PASSWORD": DATA_PASSWORD,
                                "GATEWAY_REDIS_SENTINEL_PASSWORD": "not-" + SENTINEL_PASSWORD})
    lines = await lines_eventually(missing, 2, "cannot connect: no sentinel named the primary")
    assert "NOAUTH" in lines[0] and "--redis-sentinel-password-file" in lines[0], lines
    lines = await lines_eventually(wrong, 2, "cannot connect: no sentinel named the primary")
    assert lines[0].count("AUTH (password from GATEWAY_REDIS_SENTINEL_PASSWORD) refused: "
                          "WRONGPASS") == 3, lines
    for gw in (missing, wrong):
        assert await readyz(gw) == 503
        alice = await Client.connect(gw.port, "alice")
        await alice.chat("nobody home")
        await alice.expect_error("unavailable")
        assert_secret_kept(gw, SENTINEL_PASSWORD)


@pytest.mark.timeout(90)
async def test_tls_to_sentinels_and_data_nodes(tmp_path, pki, gateways):  # noqa: F811
    """rediss+sentinel://: the sentinels and the nodes (TLS ports only for
    the gateways; tls-replication among themselves); the certificate must
    hold the address the sentinels give (here IP 127.0.0.1); a failover is
    followed over TLS too. A gateway with the wrong CA says so per attempt."""
    setup = SentinelSetup(tmp_path / "redis", tls=(pki["ca"], *pki["server"])).start()
    try:
        url = setup.url()
        assert url.startswith("rediss+sentinel://")
        gws = [gateways.start(f"gw{i}", extra=["--redis", url, "--redis-tls-ca", pki["ca"]],
                              wait_ready=True) for i in (1, 2)]
        wrong = gateways.start("wrong", extra=["--redis", url, "--redis-tls-ca",
                                               pki["other_ca"]])
        old = setup.primary_port()
        for gw in gws:
            assert info(gw) == (info_label(old, tls="on"), 0)
            assert lines_with(gw, f"TLS to the sentinels and to the primary of '{MASTER}'")
            assert lines_with(gw, f"connected to 127.0.0.1:{old} over TLS, the primary of "
                                  f"'{MASTER}'")
        alice, bob = await members(gws, ["alice", "bob"])
        await alice.chat("sealed", room=ROOM)
        await bob.recv_chat("sealed")
        lines = await lines_eventually(wrong, 2, "cannot connect: no sentinel named the primary")
        assert lines[0].count("certificate verify failed") == 3, lines
        assert await readyz(wrong) == 503

        setup.primary.kill()
        new = await asyncio.to_thread(setup.wait_failover, old)
        for gw in gws:
            await eventually(lambda gw=gw: readyz(gw), lambda s: s == 200, 15, f"{gw.name} ready")
            assert info(gw) == (info_label(new, tls="on"), 1)
        await bob.chat("still sealed", room=ROOM)
        await alice.recv_chat("still sealed")
    finally:
        setup.stop_all()
        print(setup.log_tails())


class FakeSentinel:
    """A sentinel that names whatever port it is told: to show what the
    gateway does with a stale answer. It answers AUTH, PING and SENTINEL
    get-master-addr-by-name, and takes SUBSCRIBE without ever publishing."""

    def __init__(self, port):
        self.answer_port = port
        self.server = None
        self.port = None
        self.asked = 0

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _serve(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                args = []
                for _ in range(int(line[1:])):
                    n = int((await reader.readline())[1:])
                    args.append((await reader.readexactly(n + 2))[:-2].decode())
                cmd = args[0].upper()
                if cmd == "SENTINEL":
                    self.asked += 1
                    port = str(self.answer_port).encode()
                    writer.write(b"*2\r\n$9\r\n127.0.0.1\r\n$%d\r\n%s\r\n" % (len(port), port))
                elif cmd == "SUBSCRIBE":
                    writer.write(b"*3\r\n$9\r\nsubscribe\r\n$14\r\n+switch-master\r\n:1\r\n")
                else:
                    writer.write(b"+OK\r\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()

    async def stop(self):
        self.server.close()
        await self.server.wait_closed()


@pytest.mark.timeout(40)
async def test_stale_answer_naming_a_replica_is_retried(sentinels, gateways):
    replica = next(n for n in sentinels.nodes if n.port != sentinels.primary_port())
    fake = await FakeSentinel(replica.port).start()
    try:
        gw = gateways.start("gw1", extra=["--redis", f"redis+sentinel://127.0.0.1:{fake.port}/"
                                                     f"{MASTER}"])
        lines = await lines_eventually(gw, 2, f"cannot connect to 127.0.0.1:{replica.port}")
        assert "it is a replica (ROLE: slave of 127.0.0.1:" in lines[0], lines
        assert "the sentinel's answer is stale, asking again" in lines[0], lines
        assert await readyz(gw) == 503
        alice = await Client.connect(gw.port, "alice")
        await alice.chat("to a replica?")
        await alice.expect_error("unavailable")
        await asyncio.sleep(3)
        # Backoff: 100 ms doubling to 3 s, with jitter.
        attempts = len(lines_with(gw, f"cannot connect to 127.0.0.1:{replica.port}"))
        assert 3 <= attempts <= 12, gw.log_text()
        # The sentinel has it right now: the gateway follows at its next attempt.
        fake.answer_port = sentinels.primary_port()
        await eventually(lambda: readyz(gw), lambda s: s == 200, 10, "ready on the primary")
        await alice.join(ROOM)
        await alice.chat("to the primary", room=ROOM)
        await alice.recv_chat("to the primary")
    finally:
        await fake.stop()


@pytest.mark.timeout(40)
async def test_unknown_master_name(sentinels, gateways):
    gw = gateways.start("gw1", extra=["--redis", sentinels.url(master="nosuch")])
    lines = await lines_eventually(gw, 2, "cannot connect: no sentinel named the primary of "
                                          "'nosuch'")
    assert lines[0].count("knows no master of that name") == 3, lines
    assert await readyz(gw) == 503
    alice = await Client.connect(gw.port, "alice")
    await alice.chat("hello?")
    await alice.expect_error("unavailable")
    # Every Redis line is one attempt's (but the two said once at start and
    # the watch's).
    redis_lines = [line for line in gw.log_text().splitlines() if " redis: " in line]
    attempts = lines_with(gw, "cannot connect")
    assert len(redis_lines) == len(attempts) + 3, redis_lines


@pytest.mark.timeout(40)
async def test_no_sentinel_up(gateways, tmp_path):
    """Nothing listens where the sentinels should be: one line per attempt
    naming each, then the gateway finds them once they are there."""
    ports = [free_port(), free_port()]
    gw = gateways.start("gw1", extra=["--redis", "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d/%s"
                                      % (ports[0], ports[1], MASTER)])
    alice = await Client.connect(gw.port, "alice")
    await asyncio.sleep(4)
    lines = lines_with(gw, "cannot connect: no sentinel named the primary")
    assert 2 <= len(lines) <= 10, gw.log_text()
    assert all(f"127.0.0.1:{p}: Connection refused" in lines[0] for p in ports), lines
    assert await readyz(gw) == 503
    await alice.chat("anyone?")
    await alice.expect_error("unavailable")
    assert "gateway_redis_info{mode=\"sentinel\",primary=\"\",tls=\"off\"}" in gw.metrics()


@pytest.mark.timeout(60)
async def test_sentinels_down_leave_the_link_alone(sentinels, gateways):
    """The sentinels are asked before connecting, not needed after: with all
    of them stopped, chat goes on; each watch lost is said once (retries on
    sentinels that are down are not)."""
    gw = gateways.start("gw1", extra=["--redis", sentinels.url()], wait_ready=True)
    alice, bob = await members([gw, gw], ["alice", "bob"])
    for s in sentinels.sentinels:
        await asyncio.to_thread(s.stop)
    await lines_eventually(gw, 1, "lost the watch for failovers on sentinel")
    await asyncio.sleep(1.5)
    assert await readyz(gw) == 200
    await alice.chat("no sentinel needed", room=ROOM)
    await bob.recv_chat("no sentinel needed")
    watched = lines_with(gw, "watching sentinel 127.0.0.1:")
    assert len(lines_with(gw, "lost the watch")) == len(watched), gw.log_text()
    # Back: the watch comes back by itself.
    for s in sentinels.sentinels:
        await asyncio.to_thread(s.restart)
    await lines_eventually(gw, len(watched) + 1, "watching sentinel 127.0.0.1:", timeout=15)


BAD_URLS = {
    "no sentinel": "redis+sentinel:///mymaster",
    "no master name": "redis+sentinel://127.0.0.1:26379",
    "empty master name": "redis+sentinel://127.0.0.1:26379/",
    "bad master name": "redis+sentinel://127.0.0.1:26379/my%20master",
    "empty sentinel": "redis+sentinel://127.0.0.1:26379,,127.0.0.1:26380/mymaster",
    "port 0": "redis+sentinel://127.0.0.1:0/mymaster",
    "port 99999": "redis+sentinel://127.0.0.1:26379,127.0.0.1:99999/mymaster",
    "sentinel twice": "redis+sentinel://127.0.0.1:26379,127.0.0.1/mymaster",
    "database x": "redis+sentinel://127.0.0.1:26379/mymaster/x",
    "bad scheme": "sentinel://127.0.0.1:26379/mymaster",
    "empty password": "redis+sentinel://u:@127.0.0.1:26379/mymaster",
    "user without password": "redis+sentinel://secret@127.0.0.1:26379/mymaster",
}


@pytest.mark.parametrize("value", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_malformed_sentinel_url_exits_2(value):
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    assert_exit_2_naming(run_gateway([*listen, "--redis", value]), "--redis")
    assert_exit_2_naming(run_gateway(listen, env={"GATEWAY_REDIS": value}), "--redis")


def test_bad_sentinel_password_input_exits_2(tmp_path):
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    url = ["--redis", "redis+sentinel://127.0.0.1:26379/mymaster"]
    line = assert_exit_2_naming(
        run_gateway([*listen, *url, "--redis-sentinel-password-file", str(tmp_path / "missing")]),
        "--redis-sentinel-password-file")
    assert "missing" in line and "No such file" in line
    empty = tmp_path / "empty"
    empty.write_text("\n")
    assert_exit_2_naming(run_gateway([*listen, *url, "--redis-sentinel-password-file",
                                      str(empty)]), "--redis-sentinel-password-file")
    pw = tmp_path / "pw"
    pw.write_text("secret-file")
    line = assert_exit_2_naming(
        run_gateway([*listen, *url, "--redis-sentinel-password-file", str(pw)],
                    env={"GATEWAY_REDIS_SENTINEL_PASSWORD": "secret-env"}),
        "--redis-sentinel-password-file")
    assert "GATEWAY_REDIS_SENTINEL_PASSWORD" in line
    # Without redis+sentinel:// a sentinel password would be silently unused.
    assert_exit_2_naming(run_gateway([*listen, "--redis", "redis://127.0.0.1",
                                      "--redis-sentinel-password-file", str(pw)]),
                         "--redis-sentinel-password-file")
    assert_exit_2_naming(run_gateway(listen, env={"GATEWAY_REDIS_SENTINEL_PASSWORD": "secret"}),
                         "--redis-sentinel-password-file")


def test_help_names_the_sentinel_form():
    out = run_gateway(["--help"]).stdout
    assert "redis[s]+sentinel://" in out and "--redis-sentinel-password-file" in out
    assert "GATEWAY_REDIS_SENTINEL_PASSWORD" in out


@pytest.mark.timeout(30)
async def test_single_redis_reports_its_mode(redis_server, gateways):
    gw = gateways.start("gw1", redis_port=redis_server.port, wait_ready=True)
    label = f'gateway_redis_info{{mode="single",primary="127.0.0.1:{redis_server.port}",tls="off"}}'
    assert gw.metrics()[label] == 1


async def test_no_redis_reports_none(shared_gateway):
    assert shared_gateway.metrics()['gateway_redis_info{mode="none",primary="",tls="off"}'] == 1


@pytest.mark.timeout(40)
async def test_a_primary_turned_replica_is_left(redis_server, tmp_path, gateways):
    """READONLY from a server that was the primary (a failover nobody
    announced, or a DNS name that moved): the link is dropped and sought
    again, not kept refusing every write."""
    other = RedisServer(tmp_path / "other").start()
    try:
        gw = gateways.start("gw1", redis_port=redis_server.port, wait_ready=True)
        alice = await Client.connect(gw.port, "alice")
        await alice.join(ROOM)
        redis_server.command("REPLICAOF", "127.0.0.1", other.port)
        await alice.chat("to a replica", room=ROOM)
        await alice.expect_error("unavailable")
        await lines_eventually(gw, 1, "lost (the server is a read-only replica now (READONLY))")
        # Its ROLE keeps it from being taken again while it is a replica.
        lines = await lines_eventually(gw, 2, f"cannot connect to 127.0.0.1:{redis_server.port} "
                                              f"(it is a replica (ROLE: slave of 127.0.0.1:"
                                              f"{other.port}), not the primary)")
        assert await readyz(gw) == 503
        assert len(lines) <= 6, lines   # with backoff, not in a tight loop
        redis_server.command("REPLICAOF", "NO", "ONE")
        await eventually(lambda: readyz(gw), lambda s: s == 200, 10, "ready again")
        await alice.chat("to the primary again", room=ROOM)
        await alice.recv_chat("to the primary again")
    finally:
        other.stop(timeout=5)
