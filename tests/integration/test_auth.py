"""JWT authentication (issue #7, README "Authentication"): with --jwt-secret,
/ws needs ?token= with an HS256 JWT; the name comes from `name`, else `sub`;
`exp` is required and checked, `nbf` when present; ?username= is ignored.
Every bad token is refused with 401 and a one-line reason before any
session exists. Tokens are minted here with the standard library."""

import asyncio
import base64
import hashlib
import hmac
import json
import time
import urllib.parse

import pytest

from rawws import expect_refused, one_line_reason
from wsclient import Client

SECRET = "test-secret-4711"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(signing_input, secret=SECRET, digest=hashlib.sha256):
    return b64url(hmac.new(secret.encode(), signing_input.encode(), digest).digest())


def mint(claims, secret=SECRET, header=None, digest=hashlib.sha256):
    """header.payload.signature, signed over the exact encoded parts."""
    head = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    body = b64url(json.dumps(claims).encode())
    return f"{head}.{body}.{sign(f'{head}.{body}', secret, digest)}"


def signed_raw(head_b64, body_b64):
    """A token whose parts are given already encoded (possibly not base64url
    or not JSON), with a correct HS256 signature over them."""
    return f"{head_b64}.{body_b64}.{sign(f'{head_b64}.{body_b64}')}"


def later(seconds=3600):
    return int(time.time()) + seconds


def tampered():
    """A valid token's header and signature around another payload."""
    head, _, sig = mint({"name": "x", "exp": later()}).split(".")
    return f"{head}.{b64url(json.dumps({'name': 'admin', 'exp': later()}).encode())}.{sig}"


HS256_HEAD = b64url(b'{"alg":"HS256","typ":"JWT"}')
NONE_HEAD = b64url(b'{"alg":"none"}')
VALID_BODY = b64url(json.dumps({"name": "x", "exp": later()}).encode())

BAD_TOKENS = {
    "two parts": f"{HS256_HEAD}.{VALID_BODY}",
    "four parts": mint({"name": "x", "exp": later()}) + ".abc",
    "payload not base64url": signed_raw(HS256_HEAD, "!!!*"),
    "payload not JSON": signed_raw(HS256_HEAD, b64url(b"not json")),
    "payload a JSON array": signed_raw(HS256_HEAD, b64url(b'["name"]')),
    "header not JSON": signed_raw(b64url(b"{alg"), VALID_BODY),
    "signature not base64url": f"{HS256_HEAD}.{VALID_BODY}.***",
    "empty signature": f"{HS256_HEAD}.{VALID_BODY}.",
    "wrong secret": mint({"name": "x", "exp": later()}, secret="other-secret"),
    "tampered payload": tampered(),
    "expired": mint({"name": "x", "exp": int(time.time()) - 5}),
    "no exp": mint({"name": "x"}),
    "exp not a number": mint({"name": "x", "exp": "tomorrow"}),
    "nbf in the future": mint({"name": "x", "exp": later(), "nbf": later(600)}),
    "alg none, valid HS256 signature": mint({"name": "x", "exp": later()},
                                            header={"alg": "none", "typ": "JWT"}),
    "alg none, no signature": f"{NONE_HEAD}.{VALID_BODY}.",
    "alg HS512 signed with HS512": mint({"name": "x", "exp": later()},
                                        header={"alg": "HS512", "typ": "JWT"},
                                        digest=hashlib.sha512),
    "alg HS512 signed with HS256": mint({"name": "x", "exp": later()},
                                        header={"alg": "HS512", "typ": "JWT"}),
    "no alg": mint({"name": "x", "exp": later()}, header={"typ": "JWT"}),
    "name with a control char": mint({"name": "ev\u0001il", "exp": later()}),
    "name with a newline": mint({"name": "ev\nil", "exp": later()}),
    "name of 33 bytes": mint({"name": "n" * 33, "exp": later()}),
    "empty name": mint({"name": "", "exp": later()}),
    "name not a string": mint({"name": 42, "exp": later()}),
    "neither name nor sub": mint({"exp": later()}),
    "garbage": "garbage",
}

# The words a reader of the reason needs, where the case makes them plain.
REASON_WORDS = {"expired": "expired", "wrong secret": "signature",
                "tampered payload": "signature"}


@pytest.fixture(scope="module")
def jwt_gateway(module_gateways):
    return module_gateways.start("jwt", extra=["--jwt-secret", SECRET])


def token_query(token, username=None):
    query = "token=" + urllib.parse.quote(token, safe="")
    return query + ("&username=" + urllib.parse.quote(username) if username else "")


async def connect_with_token(port, token, username=None):
    url = f"ws://127.0.0.1:{port}/ws?{token_query(token, username)}"
    return await Client.connect_url(url)


async def refusal(port, query):
    return await asyncio.to_thread(expect_refused, port, query=query)


async def test_name_claim_is_the_username(jwt_gateway):
    c = await connect_with_token(jwt_gateway.port, mint({"name": "alice", "exp": later()}))
    assert c.welcome["username"] == "alice", c.welcome
    assert c.welcome["content"] == "Welcome, alice!", c.welcome


async def test_username_query_is_ignored(jwt_gateway):
    token = mint({"name": "alice", "exp": later()})
    c = await connect_with_token(jwt_gateway.port, token, username="mallory")
    assert c.welcome["username"] == "alice", c.welcome


async def test_sub_when_no_name(jwt_gateway):
    c = await connect_with_token(jwt_gateway.port, mint({"sub": "bob", "exp": later()}))
    assert c.welcome["username"] == "bob", c.welcome


async def test_name_wins_over_sub(jwt_gateway):
    token = mint({"sub": "user-17", "name": "Zoë 🐈", "exp": later()})
    c = await connect_with_token(jwt_gateway.port, token)
    assert c.welcome["username"] == "Zoë 🐈", c.welcome


async def test_authenticated_user_chats_under_its_name(jwt_gateway):
    a = await connect_with_token(jwt_gateway.port, mint({"name": "carol", "exp": later()}))
    b = await connect_with_token(jwt_gateway.port, mint({"name": "dave", "exp": later()}))
    await a.join("auth-room")
    await b.join("auth-room")
    await a.chat("signed hello", room="auth-room")
    frame = await b.recv_chat("signed hello")
    assert frame["sender"] == "carol", frame


async def test_missing_token_refused(jwt_gateway):
    refused = await refusal(jwt_gateway.port, "username=alice")
    assert refused.status == 401, refused
    assert "token" in one_line_reason(refused).lower()


@pytest.mark.parametrize("token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
async def test_bad_token_refused_with_401_before_any_session(jwt_gateway, token, request):
    case = request.node.callspec.id
    before = jwt_gateway.metrics()
    refused = await refusal(jwt_gateway.port, token_query(token))
    assert refused.status == 401, f"{case}: {refused}"
    reason = one_line_reason(refused)
    if case in REASON_WORDS:
        assert REASON_WORDS[case] in reason.lower(), f"{case}: reason {reason!r}"
    after = jwt_gateway.metrics()
    assert after["gateway_connections_total"] == before["gateway_connections_total"], \
        f"{case}: a session was created for a refused token"
    assert after["gateway_rejected_upgrades_total"] == \
        before["gateway_rejected_upgrades_total"] + 1


async def test_refusals_leave_no_connection(gateways):
    gw = gateways.start("jwt-fresh", extra=["--jwt-secret", SECRET])
    for token in BAD_TOKENS.values():
        assert (await refusal(gw.port, token_query(token))).status == 401
    m = gw.metrics()
    assert m["gateway_connections"] == 0, m
    assert m["gateway_connections_total"] == 0, m
    assert m["gateway_rejected_upgrades_total"] == len(BAD_TOKENS), m


async def test_environment_twin(gateways):
    gw = gateways.start("jwt-env", env={"GATEWAY_JWT_SECRET": SECRET})
    c = await connect_with_token(gw.port, mint({"name": "erin", "exp": later()}))
    assert c.welcome["username"] == "erin", c.welcome
    assert (await refusal(gw.port, "username=erin")).status == 401
    wrong = mint({"name": "erin", "exp": later()}, secret="not-" + SECRET)
    assert (await refusal(gw.port, token_query(wrong))).status == 401


async def test_without_secret_tokens_are_not_needed(gateway):
    c = await Client.connect(gateway.port, "plain")
    assert c.welcome["username"] == "plain", c.welcome
