"""The hiredis patch for sharded pub/sub (deploy/hiredis-patches/0001-*),
on its own against a real standalone redis-server (SSUBSCRIBE works there
too): hiredis_sharded_check, built beside the gateway, subscribes a channel
and the shard channel of the same name on one async connection, and each
message must reach its own callback; unpatched hiredis 1.2.0 aborts on the
first smessage."""

import pathlib
import subprocess

import pytest

from gateway_proc import gateway_bin


def check_bin():
    return pathlib.Path(gateway_bin()).parent / "hiredis_sharded_check"


@pytest.mark.parametrize("resp", ["2", "3"])
def test_smessage_reaches_its_callback(redis_server, resp):
    run = subprocess.run([str(check_bin()), str(redis_server.port), resp],
                         capture_output=True, text=True, timeout=15)
    assert run.returncode == 0, f"rc {run.returncode}: {run.stdout}{run.stderr}"
    assert run.stdout.strip() == "ok"
    # The check's subscriptions ended with its connections.
    assert redis_server.command("PUBSUB", "SHARDNUMSUB", "x") == ["x", 0]
