"""Fixtures for the container tests: the base images (deploy/base-images.sh,
from Debian's packages when the engine has none), the images of
docker-compose.yml built once per session, and the stack itself under the
project name chatgw-test, brought back to its documented topology before
each test and torn down (`down -v --remove-orphans`) at the end, also when a
test fails. Its logs and the measured figures go to
tests/containers/artifacts/."""

import shutil
import time

import pytest

from stack import ARTIFACTS, GATEWAY_PORTS, LB_PORT, REPO, Stack, run, wait_for
from netutil import port_is_free


@pytest.fixture(scope="session")
def figures():
    """figures[name] = value: written to artifacts/figures.txt at the end."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    found = {}
    yield found
    (ARTIFACTS / "figures.txt").write_text(
        "".join(f"{name}: {value}\n" for name, value in found.items()))


@pytest.fixture(scope="session")
def images(figures):
    """Base images, then every image of the compose file (nginx's profile too)."""
    start = time.monotonic()
    run([str(REPO / "deploy" / "base-images.sh")], 900)
    figures["base images (s)"] = round(time.monotonic() - start, 1)
    stack = Stack()
    start = time.monotonic()
    stack.compose("--profile", "nginx", "build", timeout=1800)
    figures["compose build (s)"] = round(time.monotonic() - start, 1)
    return stack


@pytest.fixture(scope="session")
def stack(images, figures):
    # The compose file publishes fixed ports: a native cluster.sh or another
    # stack may hold them for a while on a shared machine.
    def busy():
        return [p for p in (LB_PORT, *GATEWAY_PORTS.values()) if not port_is_free(p)]
    try:
        wait_for(lambda: not busy(), 60, "ports 8080-8083 free", interval=1)
    except AssertionError:
        raise AssertionError(f"ports {busy()} are taken (a native cluster.sh or another "
                             "stack?): the compose file publishes 8080-8083") from None
    images.down()  # what a crashed run may have left
    try:
        figures["up to all healthy (s)"] = round(images.up(), 1)
        yield images
    finally:
        (ARTIFACTS / "compose.log").write_text(images.logs())
        result = images.down()
        left = images.containers(all_=True)
        assert result.returncode == 0 and not left, \
            f"down failed or left {left}: {result.stdout}{result.stderr}"


@pytest.fixture
def cluster(stack):
    """The documented topology, healthy: what an earlier test killed,
    disconnected or scaled is put back first."""
    stack.up("--scale", "gateway=0")
    return stack
