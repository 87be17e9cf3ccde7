"""Fixtures for the gateway integration tests: real processes, no mocks.

Helpers live in their own modules, importable from any test here:
  netutil      free_port, http_get (also https), unverified_tls, wait_until, metrics
  gateway_proc Gateway (start/stop/kill/paused the binary, rss_kb; $GATEWAY_BIN),
               run_gateway
  redis_proc   RedisServer (start/stop/restart on the same port/kill; password),
               redis_asking (a command after ASKING)
  redis_cluster_proc RedisCluster (3 primaries + 3 replicas), move_slot (and its
               steps open_slot, migrate_keys, close_slot)
  sentinel_proc SentinelSetup (a primary, replicas and sentinels; TLS), SentinelServer
  failover     measure_failover (chat every interval while the primary is killed)
  wsclient     Client (async /ws client: connect, connect_url, recv_json, recv_until, ...)
  rawws        RawClient (blocking raw-socket client for misbehaving clients),
               expect_refused, one_line_reason, exchange (raw bytes in, answer out)
  aio          eventually (bounded async polling)
  msgid        id_key, assert_increasing ("<ms>-<seq>" message ids)

Fixtures: gateways (factory), gateway (fresh single node), module_gateways
(factory, one per module), shared_gateway (one per module), redis_server,
make_cluster (factory), cluster (3 gateways), redis_cluster (a Redis Cluster
per module).

Tests may be `async def`: this file runs them with asyncio.run, bounded by
`@pytest.mark.timeout(SECONDS)` (default DEFAULT_TEST_TIMEOUT), so no plugin
is needed and a broken gateway fails a test instead of hanging the suite.

Every process a fixture starts is ended in teardown by PID, also when the test
fails; its log tail is printed then, which pytest shows for failed tests.
"""

import asyncio
import inspect
import os
import re

import pytest

from gateway_proc import Gateway
from redis_cluster_proc import RedisCluster
from redis_proc import RedisServer
from wsclient import close_leftovers

DEFAULT_TEST_TIMEOUT = 20.0


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): bound an async test's run time")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    marker = pyfuncitem.get_closest_marker("timeout")
    timeout = marker.args[0] if marker else DEFAULT_TEST_TIMEOUT
    params = inspect.signature(pyfuncitem.obj).parameters
    kwargs = {name: pyfuncitem.funcargs[name] for name in params}

    async def bounded():
        deadline = asyncio.timeout(timeout)
        try:
            async with deadline:
                await pyfuncitem.obj(**kwargs)
        except TimeoutError:
            if not deadline.expired():
                raise   # the test's own timeout, with its own traceback
            pytest.fail(f"test exceeded its {timeout}s timeout", pytrace=False)
        finally:
            await close_leftovers()

    asyncio.run(bounded())
    return True


# What AddressSanitizer, LeakSanitizer and UBSan print when GATEWAY_BIN is a
# sanitizer build.
SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak)Sanitizer|runtime error:")


class GatewayFactory:
    """Starts gateways in a test's temp dir and stops all of them at the end.

    At the end every gateway the test did not SIGKILL itself must exit 0 on
    SIGTERM within 5 s, and no log may hold a sanitizer report; otherwise the
    test errors in teardown even if its own assertions passed."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.started = []

    def start(self, name="gw1", redis_port=None, extra=(), env=None, listen_via_env=False,
              wait_ready=False, tls=None):
        gw = Gateway(self.tmp_path / f"gw{len(self.started)}-{name}", name, redis_port,
                     extra, env, listen_via_env, tls)
        gw.start(wait_ready=wait_ready)
        self.started.append(gw)
        return gw

    def stop_all(self):
        problems = []
        for gw in self.started:
            code = gw.stop(timeout=5)
            print(f"----- gateway {gw.name} (port {gw.port}) exit {code}; log tail:\n"
                  f"{gw.log_tail()}")
            if SANITIZER_REPORT.search(gw.log_text()):
                problems.append(f"{gw.name}: sanitizer report in its log")
            if code != 0 and not gw.killed:
                problems.append(f"{gw.name}: exit status {code} (not 0 within 5 s of SIGTERM)")
        if problems:
            pytest.fail("; ".join(problems), pytrace=False)


@pytest.fixture
def gateways(tmp_path):
    """Factory: gateways.start(name, redis_port=None, extra=[flags], env={}, tls=(cert, key))."""
    factory = GatewayFactory(tmp_path)
    yield factory
    factory.stop_all()


@pytest.fixture
def gateway(gateways):
    """A fresh single-node gateway (no --redis) with default flags."""
    return gateways.start("gw1")


@pytest.fixture(scope="module")
def module_gateways(tmp_path_factory):
    """Factory like gateways, whose gateways serve a whole module's tests
    (stateless checks of one configuration)."""
    factory = GatewayFactory(tmp_path_factory.mktemp("module"))
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def shared_gateway(module_gateways):
    """One single-node gateway with default flags for a whole module."""
    return module_gateways.start("shared")


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop(timeout=5)
    print(f"----- redis-server (port {server.port}) log tail:\n{server.log_tail()}")


class Cluster:
    """One redis-server and gateways gw1..gwN on it."""

    def __init__(self, redis, gws):
        self.redis = redis
        self.gws = gws

    @property
    def ports(self):
        return [gw.port for gw in self.gws]


# GATEWAY_TEST_REDIS_CLUSTER=1: make_cluster's gateways use a Redis Cluster
# (redis+cluster://, emptied first) instead of redis_server, so that the
# multi-gateway tests run on Redis Cluster too. Tests that read Redis's keys
# themselves (cluster.redis) know one Redis's layout only.
ON_REDIS_CLUSTER = os.environ.get("GATEWAY_TEST_REDIS_CLUSTER") == "1"


@pytest.fixture
def make_cluster(redis_server, gateways, request):
    # Redis is set up first so it is torn down last, after the gateways.
    """Factory: make_cluster(count=3, extra=[flags]) -> Cluster, all gateways ready."""
    def make(count=3, extra=()):
        port, extra = redis_server.port, list(extra)
        if ON_REDIS_CLUSTER:
            rc = request.getfixturevalue("redis_cluster")
            for node in rc.primaries():
                node.command("FLUSHALL")
            port, extra = None, ["--redis", f"redis+cluster://{rc.seeds}", *extra]
        gws = [gateways.start(f"gw{i + 1}", port, extra) for i in range(count)]
        for gw in gws:
            gw.wait_ready()
        return Cluster(redis_server, gws)
    return make


@pytest.fixture
def cluster(make_cluster):
    """Three gateways (gw1, gw2, gw3) on one fresh Redis, all ready."""
    return make_cluster()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory):
    """A real Redis Cluster, 3 primaries and 3 replicas, for a whole module."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()
    print(cluster.log_tails())
