"""Command line and environment: bad values exit 2 with one line naming the
flag, --help exits 0, every flag has a GATEWAY_* twin and the flag wins."""

import asyncio
import json

import pytest

from gateway_proc import run_gateway
from netutil import free_port
from rawws import HandshakeRefused, RawClient
from wsclient import Client

README_FLAGS = ["--listen", "--redis", "--redis-password-file", "--redis-prefix", "--id",
                "--client-dir",
                "--max-message-bytes", "--ping-interval", "--pong-timeout",
                "--send-queue-limit", "--allowed-origins", "--history",
                "--shutdown-timeout", "--io-uring", "--log-level"]

BAD_FLAGS = [
    ("--listen", "nonsense"),
    ("--listen", "127.0.0.1:99999"),
    ("--history", "-1"),
    ("--history", "many"),
    ("--max-message-bytes", "abc"),
    ("--max-message-bytes", "0"),
    ("--ping-interval", "soon"),
    ("--pong-timeout", "-3s"),
    ("--send-queue-limit", "lots"),
    ("--shutdown-timeout", "1h"),
    ("--log-level", "chatty"),
    ("--redis", "http://127.0.0.1:6379"),
]


def listen_flag():
    """A free port, so a gateway that wrongly accepts a bad value binds no fixed port."""
    return ["--listen", f"127.0.0.1:{free_port()}"]


def assert_one_line_naming(result, name):
    assert result.returncode == 2, f"exit {result.returncode}; stderr {result.stderr!r}"
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {result.stderr!r}"
    assert name in lines[0], f"{name!r} not named in {lines[0]!r}"


@pytest.mark.parametrize("flag,value", BAD_FLAGS, ids=[f"{f}={v}" for f, v in BAD_FLAGS])
def test_bad_flag_value_exits_2(flag, value):
    listen = listen_flag() if flag != "--listen" else []
    assert_one_line_naming(run_gateway([*listen, flag, value]), flag)


def test_unknown_flag_exits_2():
    assert_one_line_naming(run_gateway([*listen_flag(), "--frobnicate", "1"]), "--frobnicate")


def test_missing_flag_value_exits_2():
    assert_one_line_naming(run_gateway([*listen_flag(), "--history"]), "--history")


@pytest.mark.parametrize("var,value", [("GATEWAY_HISTORY", "-1"),
                                       ("GATEWAY_MAX_MESSAGE_BYTES", "abc"),
                                       ("GATEWAY_LISTEN", "nonsense")])
def test_bad_environment_value_exits_2(var, value):
    result = run_gateway([] if var == "GATEWAY_LISTEN" else listen_flag(), env={var: value})
    flag = "--" + var[len("GATEWAY_"):].lower().replace("_", "-")
    assert result.returncode == 2, result
    line = result.stderr.strip()
    assert "\n" not in line and (var in line or flag in line), \
        f"expected one line naming {var} or {flag}: {result.stderr!r}"


def test_help_exits_0_and_lists_every_flag():
    result = run_gateway(["--help"])
    assert result.returncode == 0, result
    text = result.stdout + result.stderr
    missing = [f for f in README_FLAGS if f not in text]
    assert not missing, f"--help does not mention {missing}:\n{text}"


async def test_env_twins(gateways):
    gw = gateways.start(None, listen_via_env=True,
                        env={"GATEWAY_ID": "from-env", "GATEWAY_HISTORY": "2"})
    c = await Client.connect(gw.port, "a")
    assert c.welcome["gateway"] == "from-env"
    await c.join("r")
    for text in ("1", "2", "3"):
        await c.chat(text, room="r")
        await c.recv_chat(text)
    joined = await (await Client.connect(gw.port, "b")).join("r")
    assert [m["content"] for m in joined["history"]] == ["2", "3"]


async def test_flag_wins_over_env(gateways):
    gw = gateways.start("from-flag", env={"GATEWAY_ID": "from-env",
                                          "GATEWAY_LISTEN": "127.0.0.1:1"})
    c = await Client.connect(gw.port, "a")
    assert c.welcome["gateway"] == "from-flag"


async def test_default_id_is_host_port(gateways):
    gw = gateways.start(None)
    c = await Client.connect(gw.port, "a")
    assert c.welcome["gateway"].endswith(f":{gw.port}"), c.welcome


async def test_more_env_twins(gateways, tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("env-site")
    gw = gateways.start("envs", env={"GATEWAY_CLIENT_DIR": str(site),
                                     "GATEWAY_MAX_MESSAGE_BYTES": "1k",
                                     "GATEWAY_ALLOWED_ORIGINS": "https://env.example",
                                     "GATEWAY_LOG_LEVEL": "debug"})
    assert gw.http("/")[2] == b"env-site"
    (await asyncio.to_thread(RawClient.connect, gw.port, username="o",
                             headers={"Origin": "https://env.example"})).close()
    with pytest.raises(HandshakeRefused):
        await asyncio.to_thread(RawClient.connect, gw.port, username="o",
                                headers={"Origin": "https://other.example"})
    c = await Client.connect(gw.port, "big")
    await c.send_raw(json.dumps({"type": "echo", "content": "x" * 1100}))
    assert await c.expect_closed() == 1009
