"""deploy/cluster.sh itself: status, stop, a taken port, a gateway that
cannot start, and the foreground mode stopped with Ctrl-C."""

import os
import pathlib
import re
import signal
import socket
import subprocess
import threading

from native_cluster import CLUSTER_SH, Cluster

COMPONENTS = {"lb", "gw1", "gw2", "gw3", "redis"}


def alive(pid):
    return pathlib.Path(f"/proc/{pid}").exists() and \
        pathlib.Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"


def assert_all_gone(pids):
    assert pids, "no pid files were written"
    left = {name: pid for name, pid in pids.items() if alive(pid)}
    assert not left, f"still running: {left}"


def test_status_and_stop(start_cluster):
    cluster = start_cluster("nginx")
    status = cluster.status()
    assert status.returncode == 0, status.stdout + status.stderr
    for name in COMPONENTS:
        assert re.search(rf"^\s+{name}\s+ready ", status.stdout, re.M), status.stdout
    pids = cluster.pids()
    assert set(pids) == COMPONENTS

    stopped = cluster.stop()
    assert stopped.returncode == 0, stopped.stderr
    assert_all_gone(pids)
    assert cluster.pids() == {}
    assert cluster.status().returncode == 1


def test_taken_port_is_named_and_nothing_is_left_running(tmp_path):
    cluster = Cluster(tmp_path / "cluster", "nginx")
    cluster.choose_ports()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", cluster.gateway_ports["gw2"]))
        squatter.listen()
        result = cluster.run("start")
    assert result.returncode == 1
    assert f"port {cluster.gateway_ports['gw2']} is in use" in result.stderr
    assert cluster.pids() == {}


def test_gateway_that_cannot_start_fails_the_start_and_is_cleaned_up(tmp_path):
    cluster = Cluster(tmp_path / "cluster", "nginx")
    cluster.choose_ports()
    env = cluster.env()
    env["GATEWAY_BIN"] = "/bin/false"
    result = subprocess.run([str(CLUSTER_SH), "start"], env=env, capture_output=True, text=True,
                            timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode == 1
    assert "exited while starting" in result.stderr
    assert cluster.pids() == {}, "the start left processes behind"


def test_foreground_run_stops_everything_on_ctrl_c(tmp_path):
    cluster = Cluster(tmp_path / "cluster", "haproxy")
    cluster.choose_ports()
    proc = subprocess.Popen(
        [str(CLUSTER_SH)], env=cluster.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, stdin=subprocess.DEVNULL,
        # A shell that started us in the background may have left SIGINT
        # ignored, and bash cannot trap a signal ignored on entry.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    output = []
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            output.append(line)
            if "Ctrl-C" in line:
                break
        ready.set()  # also when cluster.sh exited without getting ready
        output.extend(proc.stdout)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(60) and proc.poll() is None, "never ready:\n" + "".join(output)
        pids = cluster.pids()
        assert set(pids) == COMPONENTS
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 130, "".join(output)
        assert_all_gone(pids)
        assert cluster.pids() == {}
    finally:
        if proc.poll() is None:
            proc.kill()
            cluster.stop()
        reader.join(5)
