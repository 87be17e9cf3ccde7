"""Two browsers on two ports: Debian's chromium opens the containers'
published ports 8081 and 8082, and the two users chat both ways in one room,
Japanese included. Screenshots go to tests/containers/artifacts/."""

import sys
import types

import pytest

from stack import ARTIFACTS, GATEWAY_PORTS, REPO

sys.path.insert(0, str(REPO / "tests" / "e2e"))
import chat_page  # noqa: E402
from chat_page import ChatPage, launch_browser  # noqa: E402
from netutil import wait_until  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402


@pytest.fixture
def browser(monkeypatch):
    monkeypatch.setattr(chat_page, "ARTIFACTS", ARTIFACTS)
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        yield browser
        browser.close()


def test_two_browsers_on_8081_and_8082_chat_both_ways_in_japanese(cluster, browser):
    room = "日本語"
    pages = []
    try:
        taro = ChatPage.open(browser, types.SimpleNamespace(port=GATEWAY_PORTS["gateway1"]),
                             query={"username": "太郎", "room": room})
        pages.append(taro)
        hana = ChatPage.open(browser, types.SimpleNamespace(port=GATEWAY_PORTS["gateway2"]),
                             query={"username": "花子", "room": room})
        pages.append(hana)
        for page in pages:
            page.wait_connected()
        taro.send("こんにちは、花子さん")
        hana.wait_for_message("こんにちは、花子さん")
        hana.send("こんにちは！ 8082 から")
        taro.wait_for_message("こんにちは！ 8082 から")
        for page in pages:
            texts = [m["text"] for m in page.messages()]
            assert texts == ["こんにちは、花子さん", "こんにちは！ 8082 から"], texts
            # Join announcements are coalesced to about one a second, and
            # the member list follows them.
            wait_until(lambda page=page: sorted(page.members()) == ["太郎", "花子"], 10,
                       what="both in the member list")
        taro.screenshot("browser-8081-taro")
        hana.screenshot("browser-8082-hana")
        assert [p.problems for p in pages] == [[], []]
    finally:
        for page in pages:
            page.close()
