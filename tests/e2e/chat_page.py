"""Debian's chromium driven by Playwright for Python (no browser is ever
downloaded), and a small page object for the chat client."""

import os
import pathlib
import urllib.parse

ARTIFACTS = pathlib.Path(__file__).resolve().parent / "artifacts"

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]


def launch_browser(playwright):
    return playwright.chromium.launch(
        executable_path=os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium"),
        headless=True, timeout=30000, args=CHROMIUM_FLAGS)


def gateway_url(gateway):
    return f"http://127.0.0.1:{gateway.port}"


class ChatPage:
    """One browser context with the client of one gateway open in it.

    problems collects what must never happen on a page: script errors, CSP
    violations, failed requests, dialogs (an alert() from user text)."""

    def __init__(self, context, page, gateway):
        self.context = context
        self.page = page
        self.gateway = gateway
        self.problems = []

    @classmethod
    def open(cls, browser, gateway, query=None, viewport=None, color_scheme="light"):
        context = browser.new_context(viewport=viewport or {"width": 1280, "height": 800},
                                      color_scheme=color_scheme, locale="en-GB",
                                      timezone_id="Asia/Tokyo")
        page = context.new_page()
        page.set_default_timeout(15000)
        chat = cls(context, page, gateway)
        page.on("pageerror", lambda error: chat.problems.append(f"page error: {error}"))
        page.on("console", chat._on_console)
        page.on("response", chat._on_response)
        page.on("dialog", chat._on_dialog)
        search = urllib.parse.urlencode(query or {})
        page.goto(f"{gateway_url(gateway)}/{'?' + search if search else ''}")
        return chat

    def _on_console(self, msg):
        text = msg.text
        if "Content Security Policy" in text or "Refused to" in text:
            self.problems.append(f"CSP: {text}")

    def _on_response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status} for {response.url}")

    def _on_dialog(self, dialog):
        self.problems.append(f"dialog opened: {dialog.message}")
        dialog.dismiss()

    def wait_connected(self, timeout_ms=15000):
        self.page.locator('#status[data-state="connected"]').wait_for(timeout=timeout_ms)

    def status(self):
        return self.page.locator("#status").get_attribute("data-state")

    def send(self, text):
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")

    def select_room(self, room):
        self.page.locator(f'#room-list li[data-room="{room}"] .room-button').click()

    def messages(self):
        """The chat messages of the open room, as shown: dicts of id, sender, own, text."""
        return self.page.eval_on_selector_all("#message-list li.msg", """(items) =>
            items.map((li) => ({
              id: li.dataset.id,
              sender: li.dataset.sender,
              own: li.classList.contains('own'),
              text: li.querySelector('.text').textContent,
            }))""")

    def wait_for_message(self, text, timeout_ms=15000):
        self.page.locator("#message-list li.msg .text", has_text=text).first.wait_for(
            timeout=timeout_ms)

    def members(self):
        return self.page.eval_on_selector_all("#member-list .member-name",
                                              "(els) => els.map((el) => el.textContent)")

    def pause(self, seconds):
        """Waits while the page's events keep being handled (time.sleep would
        hold Playwright's dispatcher)."""
        self.page.wait_for_timeout(seconds * 1000)

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def close(self):
        self.context.close()

