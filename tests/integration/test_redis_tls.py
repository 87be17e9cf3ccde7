"""Redis over TLS (issue #16, item 2; README "Redis over TLS"), against
Debian's redis-server with --tls-port and certificates made here with
openssl: a good certificate works; an unknown CA, a wrong server name and
a missing client certificate are refused with one line per attempt naming
OpenSSL's reason, /readyz 503, clients staying connected; skipping the
check needs an explicit flag and is logged; mutual TLS works; bad TLS flags
at start-up exit 2 naming the flag.

The servers keep a plain port too, only for the harness's readiness check:
the gateways use the TLS port."""

import subprocess

import pytest

from gateway_proc import run_gateway
from netutil import free_port
from redis_proc import RedisServer
from test_redis_auth import (PASSWORD, assert_exit_2_naming, assert_secret_kept, chat_across,
                             refused_twice, refusal_lines)
from wsclient import Client


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d, name):
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={name}", "-keyout", f"{name}.key",
            "-out", f"{name}.crt", cwd=d)
    return d / f"{name}.crt"


def make_cert(d, ca, name, cn, ext):
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-subj", f"/CN={cn}", "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)
    (d / f"{name}.ext").write_text(ext + "\n")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
            cwd=d)
    return d / f"{name}.crt", d / f"{name}.key"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    ca = make_ca(d, "ca")
    other_ca = make_ca(d, "other-ca")
    server = make_cert(d, "ca", "server", "localhost",
                       "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
                       "extendedKeyUsage=serverAuth")
    client = make_cert(d, "ca", "client", "gateway", "extendedKeyUsage=clientAuth")
    return {"ca": str(ca), "other_ca": str(other_ca),
            "server": tuple(map(str, server)), "client": tuple(map(str, client))}


def tls_redis(tmp_path, pki, auth_clients="no"):
    port = free_port()
    server = RedisServer(tmp_path / "redis", extra=[
        "--tls-port", port, "--tls-cert-file", pki["server"][0],
        "--tls-key-file", pki["server"][1], "--tls-ca-cert-file", pki["ca"],
        "--tls-auth-clients", auth_clients]).start()
    server.tls_port = port
    return server


@pytest.fixture
def redis_tls(tmp_path, pki):
    server = tls_redis(tmp_path, pki)
    yield server
    server.stop(timeout=5)
    print(f"----- redis-server log tail:\n{server.log_tail()}")


@pytest.fixture
def redis_mtls(tmp_path, pki):
    server = tls_redis(tmp_path, pki, "yes")
    yield server
    server.stop(timeout=5)
    print(f"----- redis-server log tail:\n{server.log_tail()}")


def rediss(server, host="localhost", userinfo=""):
    return ["--redis", f"rediss://{userinfo}{host}:{server.tls_port}"]


async def assert_refused(gw, needle):
    """Two attempts refused, each with one line naming needle; not ready;
    a client stays connected and is told 'unavailable'."""
    alice = await Client.connect(gw.port, "alice")
    lines = await refused_twice(gw, needle)
    assert gw.readyz_status() == 503
    await alice.chat("too early")
    await alice.expect_error("unavailable")
    await alice.assert_alive()
    # One line per attempt: no other Redis line in between, but the start-up ones.
    redis_lines = [line for line in gw.log_text().splitlines()
                   if " redis: " in line and " redis: hiredis " not in line
                   and " redis: TLS to " not in line]
    assert redis_lines == refusal_lines(gw, needle), redis_lines
    return lines


@pytest.mark.timeout(30)
async def test_good_certificate_chat_across_two_gateways(redis_tls, pki, gateways):
    gws = [gateways.start(f"gw{i}", extra=[*rediss(redis_tls), "--redis-tls-ca", pki["ca"]],
                          wait_ready=True) for i in (1, 2)]
    await chat_across(*gws)
    log = gws[0].log_text()
    assert (f"redis: TLS to localhost:{redis_tls.tls_port} (server name localhost, CA "
            f"{pki['ca']}, client certificate no)") in log, log
    assert "over TLS" in log
    # The connections really are the TLS port's: the plain port has none of them.
    clients = redis_tls.command("CLIENT", "LIST")
    assert clients.count(f"laddr=127.0.0.1:{redis_tls.tls_port}") >= 4, clients


@pytest.mark.timeout(30)
async def test_ip_address_checked_against_the_ip_san(redis_tls, pki, gateways):
    gw = gateways.start("gw1", extra=[*rediss(redis_tls, "127.0.0.1"), "--redis-tls-ca",
                                      pki["ca"]], wait_ready=True)
    await chat_across(gw, gw)


@pytest.mark.timeout(30)
async def test_wrong_ca_refused(redis_tls, pki, gateways):
    gw = gateways.start("gw1", extra=[*rediss(redis_tls), "--redis-tls-ca", pki["other_ca"]])
    lines = await assert_refused(gw, "certificate verify failed")
    assert "unable to get local issuer certificate" in lines[0] or \
        "self-signed" in lines[0], lines[0]
    assert "--redis-tls-ca" in lines[0]   # the hint


@pytest.mark.timeout(30)
async def test_system_store_refuses_a_private_ca(redis_tls, gateways):
    gw = gateways.start("gw1", extra=rediss(redis_tls))
    assert "CA system" in gw.log_text()
    await refused_twice(gw, "certificate verify failed")


@pytest.mark.timeout(30)
async def test_server_name_mismatch_refused(redis_tls, pki, gateways):
    gw = gateways.start("gw1", extra=[*rediss(redis_tls, "127.0.0.1"), "--redis-tls-ca",
                                      pki["ca"], "--redis-tls-server-name", "wrong.example"])
    lines = await assert_refused(gw, "certificate verify failed")
    assert "ostname mismatch" in lines[0], lines[0]


@pytest.mark.timeout(30)
async def test_insecure_skip_verify_works_and_warns(redis_tls, pki, gateways):
    gw = gateways.start("gw1", extra=[*rediss(redis_tls, "127.0.0.1"), "--redis-tls-ca",
                                      pki["other_ca"], "--redis-tls-server-name", "wrong.example",
                                      "--redis-tls-insecure-skip-verify", "on"], wait_ready=True)
    await chat_across(gw, gw)
    log = gw.log_text()
    assert "NOT verified" in log and "WITHOUT verifying" in log, log


@pytest.mark.timeout(30)
async def test_client_certificate_required(redis_mtls, pki, gateways):
    gw = gateways.start("gw1", extra=[*rediss(redis_mtls), "--redis-tls-ca", pki["ca"]])
    lines = await assert_refused(gw, "TLS")
    # TLS 1.3: the server's alert, or when the gateway's write meets the
    # closed connection first, the close during set-up.
    for line in lines:
        assert "alert certificate required" in line or "closed during set-up" in line, line
        assert "--redis-tls-cert" in line   # the hint


@pytest.mark.timeout(30)
async def test_client_certificate_given_with_password(redis_mtls, pki, gateways):
    redis_mtls.command("CONFIG", "SET", "requirepass", PASSWORD)
    cert, key = pki["client"]
    gws = [gateways.start(f"gw{i}", extra=[*rediss(redis_mtls), "--redis-tls-ca", pki["ca"],
                                           "--redis-tls-cert", cert, "--redis-tls-key", key],
                          env={"GATEWAY_REDIS_PASSWORD": PASSWORD}, wait_ready=True)
           for i in (1, 2)]
    await chat_across(*gws)
    assert "client certificate yes" in gws[0].log_text()
    for gw in gws:
        assert_secret_kept(gw, PASSWORD)
        assert "PRIVATE KEY" not in gw.log_text()


def test_bad_tls_input_exits_2(tmp_path, pki):
    listen = ["--listen", f"127.0.0.1:{free_port()}"]
    tls = [*listen, "--redis", "rediss://localhost:6390"]
    line = assert_exit_2_naming(run_gateway([*tls, "--redis-tls-ca", str(tmp_path / "nope.crt")]),
                                "--redis-tls-ca")
    assert "nope.crt" in line
    cert, key = pki["client"]
    assert_exit_2_naming(run_gateway([*tls, "--redis-tls-cert", cert]), "--redis-tls-cert")
    assert_exit_2_naming(run_gateway([*tls, "--redis-tls-key", key]), "--redis-tls-key")
    assert_exit_2_naming(run_gateway([*tls, "--redis-tls-cert", cert, "--redis-tls-key",
                                      str(tmp_path / "nope.key")]), "--redis-tls-key")
    # Readable, but not what the flag needs: refused at start the same way.
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    for flags, flag in ((["--redis-tls-ca", str(junk)], "--redis-tls-ca"),
                        (["--redis-tls-cert", str(junk), "--redis-tls-key", key],
                         "--redis-tls-cert"),
                        (["--redis-tls-cert", cert, "--redis-tls-key", str(junk)],
                         "--redis-tls-key"),
                        (["--redis-tls-cert", cert, "--redis-tls-key", pki["server"][1]],
                         "--redis-tls-key")):
        line = assert_exit_2_naming(run_gateway([*tls, *flags]), flag)
        assert "cannot use" in line, line
    plain = [*listen, "--redis", "redis://localhost:6390"]
    line = assert_exit_2_naming(run_gateway([*plain, "--redis-tls-ca", pki["ca"]]),
                                "--redis-tls-ca")
    assert "rediss://" in line
    assert_exit_2_naming(run_gateway([*plain, "--redis-tls-insecure-skip-verify", "on"]),
                         "--redis-tls-insecure-skip-verify")
    assert_exit_2_naming(run_gateway([*listen, "--redis-tls-server-name", "x"]),
                         "--redis-tls-server-name")
    assert_exit_2_naming(run_gateway(listen, env={"GATEWAY_REDIS": "redis://localhost",
                                                  "GATEWAY_REDIS_TLS_CA": pki["ca"]}),
                         "--redis-tls-ca")
