"""The documented topology in containers: Redis, three gateways on
8081-8083, HAProxy on 8080, all healthy within 60 s of the images being
built; clients on every published port chat in one room with cluster-wide
presence and counts; what the public load balancer refuses; io_uring under
the compose file's security settings; the runtime image's user and the
figures deploy/README.md quotes."""

import asyncio
import json
import pathlib
import re
import time
import urllib.request

import pytest

from rooms import run_async
from stack import GATEWAY_PORTS, LB_PORT, http_status, run, wait_for
from wsclient import Client

HERE = pathlib.Path(__file__).resolve().parent
# Paths a browser or a probe needs through the load balancer, and paths only
# the monitoring network gets (on the gateways' own ports). /%6detrics is
# /metrics to the gateway: the load balancer must not decode its way past.
PUBLIC = ["/", "/index.html", "/app.js", "/view/dom.js", "/style.css", "/favicon.svg",
          "/healthz", "/readyz"]
PRIVATE = ["/metrics", "/metrics/", "/%6detrics", "/METRICS", "//metrics", "/README.md",
           "/package.json", "/admin", "/view/../metrics"]


def gateway_metrics(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return {m.group(1): float(m.group(2)) for m in
                re.finditer(r"^(\w+) (\S+)$", resp.read().decode(), re.M)}


def test_clients_on_every_port_share_rooms_presence_and_counts(cluster):
    ports = {"lb": LB_PORT, **{f"gw{i + 1}": p for i, p in enumerate(GATEWAY_PORTS.values())}}

    async def scenario():
        clients = {name: await Client.connect(port, f"user-{name}")
                   for name, port in ports.items()}
        names = sorted(c.username for c in clients.values())
        for c in clients.values():
            await c.join("everyone")
        for c in clients.values():
            await c.chat(f"hello from {c.username}", room="everyone")
        for c in clients.values():
            got = {(await c.recv_chat(timeout=5))["content"] for _ in ports}
            assert got == {f"hello from {n}" for n in names}, (c.username, got)
        for c in clients.values():
            assert sorted(await c.presence("everyone")) == names
        # Counts seen so far were skipped while reading chat: one more
        # client, and every gateway's clients learn the cluster's total.
        extra = await Client.connect(LB_PORT, "one-more")
        for c in clients.values():
            await c.recv_until("client_count", timeout=5,
                               where=lambda f: f["count"] == len(ports) + 1)
        await asyncio.gather(extra.close(), *(c.close() for c in clients.values()))

    run_async(scenario(), 30)


def test_metrics_on_each_gateway_port_and_never_through_the_load_balancer(cluster):
    for port in GATEWAY_PORTS.values():
        assert http_status(f"http://127.0.0.1:{port}/metrics") == 200, port
    statuses = {path: http_status(f"http://127.0.0.1:{LB_PORT}{path}") for path in PUBLIC}
    assert statuses == {path: 200 for path in PUBLIC}
    statuses = {path: http_status(f"http://127.0.0.1:{LB_PORT}{path}") for path in PRIVATE}
    assert statuses == {path: 403 for path in PRIVATE}


def test_nginx_profile_refuses_the_same_paths(cluster):
    """The alternative load balancer (`--profile nginx`, port 8090)."""
    cluster.compose("--profile", "nginx", "up", "-d", "nginx", timeout=120)
    try:
        wait_for(lambda: http_status("http://127.0.0.1:8090/readyz") == 200, 30, "nginx up")
        assert {p: http_status(f"http://127.0.0.1:8090{p}") for p in PUBLIC} == \
            {p: 200 for p in PUBLIC}
        assert {p: http_status(f"http://127.0.0.1:8090{p}") for p in PRIVATE} == \
            {p: 403 for p in PRIVATE}
    finally:
        cluster.compose("--profile", "nginx", "rm", "-s", "-f", "nginx", timeout=60)


CLUSTER_SERVICES = [*(f"redis-cluster-{i}" for i in range(1, 7)), "redis-cluster-init",
                    "cluster-gateway1", "cluster-gateway2", "cluster-gateway3"]
CLUSTER_GATEWAY_PORTS = (8084, 8085, 8086)


def test_redis_cluster_profile_chats_across_its_gateways(cluster):
    """`--profile redis-cluster`: six password-protected Redis nodes made a
    cluster of 3 primaries and 3 replicas by the one-shot init service, and
    three gateways on redis+cluster:// (8084-8086) that chat across it, each
    room on its slot's primary with sharded pub/sub, their server API
    answering inside."""
    profile = ("--profile", "redis-cluster")
    cluster.compose(*profile, "up", "-d", *CLUSTER_SERVICES, timeout=300)
    try:
        for port in CLUSTER_GATEWAY_PORTS:
            wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 120,
                     f"cluster gateway on {port} ready")

        def redis_cli(*args):
            script = 'REDISCLI_AUTH="$(cat /secrets/password)" redis-cli "$@"'
            return cluster.compose("exec", "-T", "redis-cluster-1", "sh", "-c", script, "_",
                                   *args, timeout=30).stdout

        assert "cluster_state:ok" in redis_cli("cluster", "info")
        rooms = [f"room-{i}" for i in range(6)]

        async def scenario():
            clients = [await Client.connect(port, f"c{port}") for port in CLUSTER_GATEWAY_PORTS]
            for room in rooms:
                for c in clients:
                    await c.join(room)
                await clients[0].chat(f"hello {room}", room=room)
                for c in clients:
                    assert (await c.recv_chat(f"hello {room}", timeout=10))["room"] == room
            await asyncio.gather(*(c.close() for c in clients))

        run_async(scenario(), 90)
        # Room channels are sharded ones, each on its slot's node: classic
        # pub/sub carries none of them.
        classic = redis_cli("--cluster", "call", "redis-cluster-1:6379", "pubsub", "channels")
        assert not any(room in classic for room in rooms), classic
        # The server API inside, as on the other gateways.
        assert_api_answers_inside(cluster, CLUSTER_SERVICES[-3:])
    finally:
        cluster.compose(*profile, "rm", "-s", "-f", *CLUSTER_SERVICES, timeout=120,
                        check=False)


def test_gateway_io_uring_under_the_compose_security_settings(cluster, figures):
    """Says whether the gateways write with io_uring as the compose file runs
    them; where the engine's seccomp profile refuses it, the gateway must say
    so and fall back (tested below with a profile that refuses it)."""
    values = {port: gateway_metrics(port)["gateway_io_uring"] for port in GATEWAY_PORTS.values()}
    figures["gateway_io_uring under compose (engine's default seccomp)"] = values
    print(f"gateway_io_uring in the compose stack: {values}")
    logs = cluster.logs()
    for value in values.values():
        if value == 0:
            assert "io_uring unavailable" in logs
        else:
            assert value == 1


def test_gateway_falls_back_cleanly_where_seccomp_refuses_io_uring(cluster):
    profile = HERE / "seccomp-refuse-io-uring.json"
    name = "chatgw-test-seccomp"
    run(["docker", "rm", "-f", name], 30, check=False)
    run(["docker", "run", "-d", "--name", name,
         "--security-opt", f"seccomp={profile}", "-p", "127.0.0.1::8080",
         "chat-gateway:local"], 60)
    try:
        port = int(run(["docker", "port", name, "8080/tcp"], 30).stdout.split(":")[-1])
        wait_for(lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200, 20, "ready")
        assert gateway_metrics(port)["gateway_io_uring"] == 0
        assert "io_uring unavailable (io_uring_setup: Operation not permitted)" in \
            run(["docker", "logs", name], 30).stderr + run(["docker", "logs", name], 30).stdout

        async def fan_out():
            a, b = await Client.connect(port, "a"), await Client.connect(port, "b")
            for c in (a, b):
                await c.join("r")
            await a.chat("through send()", room="r")
            for c in (a, b):
                assert (await c.recv_chat("through send()"))["room"] == "r"
            await a.close()
            await b.close()

        run_async(fan_out(), 20)
    finally:
        run(["docker", "rm", "-f", name], 30, check=False)


def test_runtime_image_runs_as_a_non_root_user(cluster):
    (image,) = json.loads(run(["docker", "image", "inspect", "chat-gateway:local"], 30).stdout)
    assert image["Config"]["User"] == "10001:10001"
    uid = cluster.compose("exec", "-T", "gateway1", "id", "-u", timeout=30).stdout.strip()
    assert uid == "10001"


def test_redis_requires_the_password_the_gateways_read_from_the_secret(cluster):
    # Without the password Redis refuses; with the one the secrets service
    # wrote to the secrets volume it answers; the gateways are up, so they
    # logged in with it (the compose file gives it as a file, not argv).
    refused = cluster.compose("exec", "-T", "redis", "redis-cli", "ping", timeout=30).stdout
    assert "NOAUTH" in refused, refused
    answered = cluster.compose(
        "exec", "-T", "redis", "sh", "-c",
        'REDISCLI_AUTH="$(cat /secrets/password)" redis-cli ping', timeout=30).stdout
    assert answered.strip() == "PONG", answered
    for name in ("gateway1", "gateway2", "gateway3"):
        args = cluster.compose("exec", "-T", name, "cat", "/proc/1/cmdline", timeout=30).stdout
        password = cluster.compose("exec", "-T", name, "cat", "/run/secrets/chat/password",
                                   timeout=30).stdout.strip()
        assert password and password not in args, name
    assert http_status("http://127.0.0.1:8081/readyz") == 200


def assert_api_answers_inside(cluster, names):
    """The key the secrets service made; the API on 8090 of each gateway
    named, reached from inside its container (nothing publishes it),
    answers for the cluster with it and refuses without it."""
    key = cluster.compose("exec", "-T", names[0], "cat", "/run/secrets/chat/api-key",
                          timeout=30).stdout.strip()
    assert len(key) >= 16

    def api(name, header=""):
        # The runtime image has bash but no curl.
        script = ('exec 3<>/dev/tcp/127.0.0.1/8090; '
                  'printf "GET /api/info HTTP/1.0\\r\\nHost: api\\r\\n%s\\r\\n" "$1" >&3; '
                  'IFS=" " read -r _ status _ <&3; echo "$status"')
        return cluster.compose("exec", "-T", name, "bash", "-c", script, "_", header,
                               timeout=30, check=False).stdout.strip()

    for name in names:
        assert api(name, f"Authorization: Bearer {key}\r\n") == "200", name
        assert api(name) == "401", name


def test_server_api_answers_inside_with_the_generated_key(cluster):
    assert_api_answers_inside(cluster, ["gateway1", "gateway2", "gateway3"])


def test_figures_image_size_and_idle_memory(cluster, figures):
    for tag in ("chat-gateway:local", "chat-gateway-redis:local",
                "chat-gateway-haproxy:local", "chat-gateway-nginx:local"):
        size = json.loads(run(["docker", "image", "inspect", tag], 30).stdout)[0]["Size"]
        figures[f"image {tag} (MB)"] = round(size / 1e6, 1)
    time.sleep(2)  # idle: no client since the fixture's health checks
    ids = cluster.containers("gateway1")
    usage = run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", *ids], 30)
    figures["idle gateway container memory"] = usage.stdout.strip()
    assert figures["image chat-gateway:local (MB)"] < 200
