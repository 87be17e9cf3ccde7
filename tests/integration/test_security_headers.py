"""HTTP security headers (issue #7): every HTTP response carries
Content-Security-Policy, X-Content-Type-Options: nosniff, X-Frame-Options
and Referrer-Policy: static files, endpoints, 404s, 503s and refused
upgrades alike. The browser client must work under that policy; a browser
proves it in tests/e2e, the static checks here catch the obvious breakers
(inline scripts and styles, eval) without one."""

import asyncio
import html.parser
import re

import pytest

from gateway_proc import REPO
from netutil import free_port
from rawws import expect_refused

CLIENT_DIR = REPO / "client"
SECRET = "header-secret"


def csp_directives(policy):
    """"default-src 'none'; img-src 'self' data:" -> {"default-src": ["'none'"], ...}"""
    out = {}
    for part in policy.split(";"):
        words = part.split()
        if words:
            out[words[0].lower()] = words[1:]
    return out


def security_problems(headers):
    """What is missing or weak in one response's headers (keys lower case)."""
    problems = []
    policy = headers.get("content-security-policy")
    if not policy:
        problems.append("no Content-Security-Policy")
    else:
        csp = csp_directives(policy)
        if "default-src" not in csp:
            problems.append(f"CSP without default-src: {policy!r}")
        if "'unsafe-inline'" in policy or "'unsafe-eval'" in policy:
            problems.append(f"CSP allows inline code or eval: {policy!r}")
    if headers.get("x-content-type-options", "").lower() != "nosniff":
        problems.append(f"X-Content-Type-Options {headers.get('x-content-type-options')!r}")
    if headers.get("x-frame-options", "").lower() not in ("deny", "sameorigin"):
        problems.append(f"X-Frame-Options {headers.get('x-frame-options')!r}")
    if not headers.get("referrer-policy"):
        problems.append("no Referrer-Policy")
    return problems


@pytest.fixture(scope="module")
def jwt_gw(module_gateways):
    return module_gateways.start("hdr-jwt", extra=["--jwt-secret", SECRET])


@pytest.fixture(scope="module")
def unready_gw(module_gateways):
    """A gateway whose Redis is not there: /readyz answers 503."""
    return module_gateways.start("hdr-noredis", redis_port=free_port())


PAGES = {
    "/": 200, "/index.html": 200, "/app.js": 200, "/style.css": 200, "/favicon.svg": 200,
    "/healthz": 200, "/readyz": 200, "/metrics": 200,
    "/no-such-file.js": 404, "/ws (plain GET)": 404,
}


@pytest.mark.parametrize("path,status", PAGES.items(), ids=PAGES.keys())
def test_http_responses_carry_security_headers(shared_gateway, path, status):
    got, headers, _ = shared_gateway.http(path.split(" ")[0])
    assert got == status, f"GET {path}: {got}"
    assert not security_problems(headers), f"GET {path}: {security_problems(headers)}"


def test_503_carries_security_headers(unready_gw):
    status, headers, _ = unready_gw.http("/readyz")
    assert status == 503
    assert not security_problems(headers), security_problems(headers)


REFUSALS = {
    "403 origin": (403, dict(username="h", headers={"Origin": "https://evil.example"})),
    "400 username": (400, dict(query="username=%01")),
    "404 path": (404, dict(path="/nope", username="h")),
}


@pytest.mark.parametrize("status,kwargs", REFUSALS.values(), ids=REFUSALS.keys())
async def test_refused_upgrades_carry_security_headers(shared_gateway, status, kwargs):
    refused = await asyncio.to_thread(expect_refused, shared_gateway.port, **kwargs)
    assert refused.status == status, refused
    assert not security_problems(refused.headers), security_problems(refused.headers)


async def test_401_carries_security_headers(jwt_gw):
    refused = await asyncio.to_thread(expect_refused, jwt_gw.port, username="nobody")
    assert refused.status == 401, refused
    assert not security_problems(refused.headers), security_problems(refused.headers)


def test_page_policy_lets_the_client_run(shared_gateway):
    """What the client needs: its own scripts, styles and images, and a
    WebSocket back to the page's origin."""
    csp = csp_directives(shared_gateway.http("/")[1]["content-security-policy"])

    def allows(directive, source):
        return source in csp.get(directive, csp.get("default-src", []))

    for directive in ("script-src", "style-src", "img-src"):
        assert allows(directive, "'self'"), f"{directive} does not allow 'self': {csp}"
    assert allows("connect-src", "'self'") or allows("connect-src", "ws:"), csp


class InlineFinder(html.parser.HTMLParser):
    """Collects what a CSP without 'unsafe-inline' blocks in a page."""

    def __init__(self):
        super().__init__()
        self.found = []
        self.in_script = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script":
            self.in_script = "src" not in attrs
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs.items():
            if name == "style":
                self.found.append(f"style attribute on <{tag}>")
            if name.startswith("on"):
                self.found.append(f"{name} handler on <{tag}>")
            if name in ("href", "src") and value and value.lower().startswith("javascript:"):
                self.found.append(f"javascript: URL on <{tag}>")
            if name in ("href", "src") and value and re.match(r"(https?:)?//", value):
                self.found.append(f"other-origin {name} {value!r} on <{tag}>")

    def handle_endtag(self, tag):
        if tag == "script":
            self.in_script = False

    def handle_data(self, data):
        if self.in_script and data.strip():
            self.found.append(f"inline script: {data.strip()[:60]!r}")


def test_client_pages_have_nothing_inline():
    pages = sorted(CLIENT_DIR.rglob("*.html"))
    assert pages, f"no HTML in {CLIENT_DIR}"
    for page in pages:
        finder = InlineFinder()
        finder.feed(page.read_text())
        assert not finder.found, f"{page.relative_to(REPO)}: {finder.found}"


def test_client_scripts_do_not_eval():
    blocked = re.compile(r"\beval\s*\(|\bnew\s+Function\s*\(|setAttribute\(\s*['\"]style|"
                         r"\bsetTimeout\(\s*['\"]")
    for script in sorted(CLIENT_DIR.rglob("*.js")):
        for n, line in enumerate(script.read_text().splitlines(), 1):
            assert not blocked.search(line), f"{script.relative_to(REPO)}:{n}: {line.strip()}"
