"""Fixtures for the browser tests: one Redis and two gateways (the real
processes of tests/integration's wrappers) and one Debian chromium for the
whole module; every page a test opens is closed at its end.

Screenshots go to tests/e2e/artifacts/, the servers' logs to
tests/e2e/artifacts/logs/."""

import pathlib
import shutil
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "integration"))

from chat_page import ARTIFACTS, ChatPage, launch_browser  # noqa: E402
from gateway_proc import REPO, Gateway  # noqa: E402
from redis_proc import RedisServer  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

LOGS = ARTIFACTS / "logs"
GATEWAY_FLAGS = ["--client-dir", str(REPO / "client"), "--shutdown-timeout", "2s"]


@pytest.fixture(scope="session", autouse=True)
def fresh_artifacts():
    """Fresh screenshots and logs on every run."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    LOGS.mkdir(parents=True)


@pytest.fixture(scope="module")
def servers():
    """Starts gateways on the module's Redis; stops them all at the end."""
    redis = RedisServer(LOGS / "redis").start()
    started = []

    def start_gateway(name, extra=()):
        gw = Gateway(LOGS / f"gateway-{name}", name, redis.port, [*GATEWAY_FLAGS, *extra])
        started.append(gw)
        return gw.start(wait_ready=True)

    start_gateway.redis = redis
    yield start_gateway
    for gw in started:
        gw.stop(timeout=5)
    redis.stop(timeout=5)


@pytest.fixture(scope="module")
def redis(servers):
    return servers.redis


@pytest.fixture(scope="module")
def gw_a(servers):
    return servers("gwA")


@pytest.fixture(scope="module")
def gw_b(servers):
    return servers("gwB")


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


@pytest.fixture
def open_chat(browser):
    """open_chat(gateway, query={...}, viewport=..., color_scheme=...) -> ChatPage;
    closed at the end of the test."""
    pages = []

    def open_(gateway, **options):
        chat = ChatPage.open(browser, gateway, **options)
        pages.append(chat)
        return chat

    yield open_
    for chat in pages:
        try:
            chat.close()
        except Exception:  # noqa: BLE001 - already closed by the test
            pass
