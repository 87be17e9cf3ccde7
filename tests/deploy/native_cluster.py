"""deploy/cluster.sh and deploy/healthcheck.sh run natively, on free ports,
for the deployment tests. The gateway binary is $GATEWAY_BIN (default
build/gateway). Also puts tests/integration on sys.path: its websocket client
and network helpers serve here too."""

import asyncio
import os
import pathlib
import random
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from netutil import port_is_free  # noqa: E402

DEPLOY = REPO / "deploy"
CLUSTER_SH = DEPLOY / "cluster.sh"
START_ATTEMPTS = 3
GATEWAYS = ("gw1", "gw2", "gw3")
PRIVATE_PORTS_FROM = 20000


def run_async(coro, timeout):
    """Run a test's coroutine, failing it (not hanging the suite) after timeout s."""
    async def bounded():
        try:
            return await asyncio.wait_for(coro, timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"scenario exceeded its {timeout}s bound") from None
    return asyncio.run(bounded())


def gateway_bin():
    return os.environ.get("GATEWAY_BIN") or str(REPO / "build" / "gateway")


def healthcheck(port):
    """The image's HEALTHCHECK script against 127.0.0.1:port."""
    return subprocess.run([str(DEPLOY / "healthcheck.sh"), str(port)], capture_output=True,
                          text=True, timeout=10, stdin=subprocess.DEVNULL)


def distinct_free_ports(n):
    """n free ports below the kernel's ephemeral range: a port from bind(0)
    (netutil.free_port) is one that outgoing connections, the tests' own
    included, may take before cluster.sh binds it."""
    low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = random.sample(range(PRIVATE_PORTS_FROM, low), 10 * n)
    ports = [port for port in candidates if port_is_free(port)][:n]
    assert len(ports) == n, f"fewer than {n} free ports in {PRIVATE_PORTS_FROM}-{low}"
    return ports


class Cluster:
    """redis-server, gw1..gw3 and a load balancer, started by deploy/cluster.sh
    with every port chosen free and state under workdir."""

    def __init__(self, workdir, lb):
        self.dir = pathlib.Path(workdir)
        self.lb = lb
        self.lb_port = self.redis_port = None
        self.gateway_ports = {}

    def env(self):
        # A developer's GATEWAY_* settings must not change what the test sees.
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("GATEWAY_", "CLUSTER_"))}
        env.update(GATEWAY_BIN=gateway_bin(), CLUSTER_DIR=str(self.dir), CLUSTER_LB=self.lb,
                   CLUSTER_INSTALL="0", CLUSTER_LB_PORT=str(self.lb_port),
                   CLUSTER_REDIS_PORT=str(self.redis_port),
                   CLUSTER_GATEWAY_PORTS=" ".join(str(self.gateway_ports[g]) for g in GATEWAYS))
        return env

    def choose_ports(self):
        self.lb_port, self.redis_port, *gw = distinct_free_ports(2 + len(GATEWAYS))
        self.gateway_ports = dict(zip(GATEWAYS, gw))

    def run(self, *args, timeout=60):
        return subprocess.run([str(CLUSTER_SH), *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)

    def start(self):
        """cluster.sh start; on a port grabbed meanwhile by someone else on this
        shared machine, again on fresh ports."""
        for _ in range(START_ATTEMPTS):
            self.choose_ports()
            result = self.run("start")
            if result.returncode == 0:
                return self
            # cluster.sh's own port check, or a server's bind error in the
            # log tail it prints.
            if "in use" not in result.stderr:
                break
        raise AssertionError(f"cluster.sh start failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}\n{self.log_tails()}")

    def stop(self, *names):
        """cluster.sh stop [NAME...]; returns its CompletedProcess."""
        return self.run("stop", *names)

    def status(self):
        return self.run("status")

    def pids(self):
        """{component: pid} from cluster.sh's pid files."""
        return {f.stem: int(f.read_text().split()[0]) for f in (self.dir / "pids").glob("*.pid")}

    def sanitizer_reports(self):
        """Lines of AddressSanitizer/UBSan reports in the gateways' logs (a
        sanitizer build as $GATEWAY_BIN reports there, at the latest on exit)."""
        return [line for g in GATEWAYS
                for line in (self.dir / "logs" / f"{g}.log").read_text(errors="replace")
                .splitlines()
                if "Sanitizer" in line or "runtime error:" in line]

    def log_tails(self, lines=30):
        out = []
        for log in sorted((self.dir / "logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)
