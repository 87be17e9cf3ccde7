"""The compose stack of docker-compose.yml, the file users run, under its own
project name, driven through whichever Compose exists (`docker compose`,
else `docker-compose`). Also puts tests/integration and tests/deploy on
sys.path: their websocket client and room member are reused here."""

import json
import pathlib
import subprocess
import sys
import time
import urllib.request

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
sys.path.insert(0, str(REPO / "tests" / "deploy"))

ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts"
PROJECT = "chatgw-test"
COMPOSE_FILE = REPO / "docker-compose.yml"
LB_PORT = 8080
GATEWAY_PORTS = {"gateway1": 8081, "gateway2": 8082, "gateway3": 8083}
HEALTHY_WITHIN_S = 60  # after the images are built (the promise)


def run(argv, timeout, check=True, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                            stdin=subprocess.DEVNULL, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result


def compose_command():
    """`docker compose` (v2 plugin) when it answers, else `docker-compose` (v1)."""
    if run(["docker", "compose", "version"], 30, check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"]


def http_status(url, timeout=3.0):
    """Status of GET url, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return None


def wait_for(probe, timeout, what, interval=0.2):
    """probe() until it returns something true; fail after timeout seconds
    with the last value seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last {value!r}")
        time.sleep(interval)


class Stack:
    def __init__(self):
        self.base = [*compose_command(), "-p", PROJECT, "-f", str(COMPOSE_FILE)]

    def compose(self, *args, timeout=120, check=True):
        return run([*self.base, *args], timeout, check=check, cwd=REPO)

    def containers(self, service=None, all_=False):
        """Ids of the project's containers (of one service), running or all."""
        argv = ["docker", "ps", "-q", "--no-trunc", "--filter",
                f"label=com.docker.compose.project={PROJECT}"]
        if service:
            argv += ["--filter", f"label=com.docker.compose.service={service}"]
        if all_:
            argv.append("-a")
        return run(argv, 30).stdout.split()

    def inspect(self, *ids):
        return json.loads(run(["docker", "inspect", *ids], 30).stdout) if ids else []

    def up(self, *args, timeout=HEALTHY_WITHIN_S):
        """`up -d ARGS`, then wait until every container is healthy; returns
        the seconds that took."""
        start = time.monotonic()
        self.compose("up", "-d", "--remove-orphans", *args, timeout=180)
        self.wait_healthy(timeout)
        return time.monotonic() - start

    def wait_healthy(self, timeout=HEALTHY_WITHIN_S):
        def unhealthy():
            states = {c["Name"]: c["State"].get("Health", {}).get("Status", c["State"]["Status"])
                      for c in self.inspect(*self.containers())}
            return {n: s for n, s in states.items() if s != "healthy"} or None
        try:
            wait_for(lambda: unhealthy() is None and self.containers(), timeout,
                     "every container healthy", interval=0.5)
        except AssertionError:
            raise AssertionError(f"not healthy within {timeout}s: {unhealthy()}") from None

    def gateway_containers(self):
        """{gateway id as in `welcome`: container inspect dict} of every running
        gateway: GATEWAY_ID for the fixed ones, the container's hostname for
        the replicas (deploy/gateway-entrypoint.sh)."""
        out = {}
        for c in self.inspect(*self.containers()):
            if c["Config"]["Labels"]["com.docker.compose.service"].startswith("gateway"):
                env = dict(e.split("=", 1) for e in c["Config"]["Env"])
                out[env.get("GATEWAY_ID") or c["Config"]["Hostname"]] = c
        return out

    @staticmethod
    def address(container, network="default"):
        """The container's IP address on one of the project's networks."""
        return container["NetworkSettings"]["Networks"][f"{PROJECT}_{network}"]["IPAddress"]

    def logs(self):
        return self.compose("logs", "--no-color", "--timestamps", timeout=60, check=False).stdout

    def down(self):
        return self.compose("down", "-v", "--remove-orphans", "-t", "15", timeout=120,
                            check=False)
