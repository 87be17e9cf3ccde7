"""The chat client in a real browser against a real cluster: one Redis, two
gateways, pages on each. Screenshots of the main screens go to artifacts/."""

import base64
import hashlib
import hmac
import json
import re
import time

from netutil import wait_until

XSS = "<img src=x onerror=alert(1)>"


def mint_token(claims, secret):
    """An HS256 JWT, as a backend holding the gateway's --jwt-secret would mint it."""
    def part(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    unsigned = (f"{part(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}."
                f"{part(json.dumps(claims).encode())}")
    signature = hmac.new(secret.encode(), unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{part(signature)}"


def assert_clean(*chats):
    for chat in chats:
        assert chat.problems == [], f"problems on a page of {chat.gateway.name}"


def test_the_username_prompt_leads_into_the_chat(open_chat, gw_a):
    chat = open_chat(gw_a)
    page = chat.page
    page.locator("#login-name").wait_for()
    chat.screenshot("01-username-prompt")
    csp = page.get_attribute('meta[http-equiv="Content-Security-Policy"]', "content")
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    page.fill("#login-name", "x" * 40)
    page.press("#login-name", "Enter")
    assert "too long" in page.text_content("#login-error")
    page.fill("#login-name", "Mika")
    page.press("#login-name", "Enter")
    chat.wait_connected()
    assert page.text_content("#me") == "Mika"
    assert "gwA" in page.text_content("#status-text")
    assert "username=Mika" in page.url
    assert_clean(chat)


def test_two_pages_on_two_gateways_chat_in_a_room_and_see_each_other(open_chat, gw_a, gw_b):
    alice = open_chat(gw_a, query={"username": "alice", "room": "lobby"})
    bob = open_chat(gw_b, query={"username": "bob", "room": "lobby"})
    alice.wait_connected()
    bob.wait_connected()
    assert "gwA" in alice.page.text_content("#status-text")
    assert "gwB" in bob.page.text_content("#status-text")
    assert alice.page.text_content("#room-title") == "# lobby"

    wait_until(lambda: alice.members() == ["alice", "bob"], 10, what="alice sees both members")
    wait_until(lambda: bob.members() == ["alice", "bob"], 10, what="bob sees both members")
    wait_until(lambda: re.fullmatch(r"2 online", alice.page.text_content("#online-count")),
               10, what="the cluster-wide count")

    alice.send("Hi Bob, I am on gateway A")
    bob.wait_for_message("Hi Bob, I am on gateway A")
    bob.send("Hello Alice! B here 👋")
    alice.wait_for_message("Hello Alice! B here 👋")
    alice.send("日本語も大丈夫？ 絵文字も 🎌")
    for chat in (alice, bob):
        chat.wait_for_message("日本語も大丈夫？ 絵文字も 🎌")

    seen_by_alice = alice.messages()
    assert [(m["sender"], m["own"], m["text"]) for m in seen_by_alice] == [
        ("alice", True, "Hi Bob, I am on gateway A"),
        ("bob", False, "Hello Alice! B here 👋"),
        ("alice", True, "日本語も大丈夫？ 絵文字も 🎌"),
    ]
    assert [m["id"] for m in bob.messages()] == [m["id"] for m in seen_by_alice]
    alice.screenshot("02-room-desktop")
    assert_clean(alice, bob)


def test_user_text_is_shown_as_text_never_as_html(open_chat, gw_a, gw_b):
    mallory = open_chat(gw_b, query={"username": XSS, "room": "safety"})
    carol = open_chat(gw_a, query={"username": "carol", "room": "safety"})
    mallory.wait_connected()
    carol.wait_connected()
    mallory.send(XSS)
    carol.wait_for_message(XSS)
    [message] = carol.messages()
    assert (message["sender"], message["text"]) == (XSS, XSS)
    wait_until(lambda: XSS in carol.members(), 10, what="the name in the member list")

    carol.page.fill("#join-name", XSS)
    carol.page.press("#join-name", "Enter")
    carol.page.locator("#room-title", has_text=XSS).wait_for()

    for chat in (mallory, carol):
        assert chat.page.locator('#app img:not([src="favicon.svg"])').count() == 0, \
            "no <img> from user text"
    carol.select_room("safety")
    assert [m["text"] for m in carol.messages()] == [XSS], "the room redraws the same"
    carol.screenshot("03-user-text-as-text")
    assert_clean(mallory, carol)


def test_japanese_phone_width_unread_counts_and_ime_enter(open_chat, gw_a, gw_b):
    room = "日本語ルーム"
    sakura = open_chat(gw_b, query={"username": "さくら", "room": room},
                       viewport={"width": 390, "height": 844})
    taro = open_chat(gw_a, query={"username": "太郎", "room": room}, color_scheme="dark")
    sakura.wait_connected()
    taro.wait_connected()
    wait_until(lambda: len(taro.members()) == 2, 10, what="both in the room")
    sakura.send("こんにちは、太郎さん！")
    taro.wait_for_message("こんにちは、太郎さん！")
    taro.send("こんにちは！ 今日はいい天気ですね。\n二行目もちゃんと表示されます。")
    sakura.wait_for_message("二行目もちゃんと表示されます。")

    # An Enter that confirms an IME conversion must not send the half-typed text.
    sakura.page.fill("#composer-input", "へんかんちゅう")
    sakura.page.eval_on_selector("#composer-input", """(el) => el.dispatchEvent(
        new KeyboardEvent('keydown',
                          { key: 'Enter', isComposing: true, bubbles: true, cancelable: true }))""")
    assert sakura.page.input_value("#composer-input") == "へんかんちゅう"
    sakura.page.fill("#composer-input", "")

    taro.select_room("")
    sakura.send("未読になるはず")
    sakura.send("これも")
    badge = taro.page.locator(f'#room-list li[data-room="{room}"] .badge')
    wait_until(lambda: badge.text_content(timeout=500) == "2", 10, what="two unread in the room")
    assert taro.page.title() == "(2) Global · Chat"
    taro.screenshot("06-desktop-dark-unread")
    taro.select_room(room)
    assert badge.count() == 0, "opening the room clears its unread count"

    assert sakura.page.text_content("#room-title") == f"# {room}"
    sakura.screenshot("07-phone-room")
    sakura.page.click("#toggle-rooms")
    sakura.page.locator("#rooms").wait_for(state="visible")
    sakura.pause(0.3)  # the panel slides in
    sakura.screenshot("08-phone-rooms")
    sakura.page.keyboard.press("Escape")
    sakura.page.click("#toggle-members")
    sakura.pause(0.3)
    sakura.screenshot("09-phone-members")
    assert_clean(sakura, taro)


def test_offline_and_back_the_status_says_so_and_offline_typing_goes_out_once(
        open_chat, gw_a, gw_b):
    gus = open_chat(gw_b, query={"username": "gus", "room": "train"},
                    viewport={"width": 390, "height": 844})
    hana = open_chat(gw_a, query={"username": "hana", "room": "train"})
    gus.wait_connected()
    hana.wait_connected()
    wait_until(lambda: len(hana.members()) == 2, 10, what="both in the room")
    hana.send("Entering the tunnel?")
    gus.wait_for_message("Entering the tunnel?")

    gus.context.set_offline(True)
    gus.page.locator('#status[data-state="offline"]').wait_for()
    gus.send("sent from the tunnel")
    gus.page.locator("#pending-list li.pending", has_text="Waiting for connection").wait_for()
    hana.send("are you there?")
    gus.screenshot("11-phone-offline")

    gus.context.set_offline(False)
    gus.wait_connected()
    for chat in (gus, hana):
        chat.wait_for_message("sent from the tunnel")
        chat.wait_for_message("are you there?")
    for chat in (gus, hana):
        texts = [m["text"] for m in chat.messages()]
        assert sorted(t for t in texts if t in ("sent from the tunnel", "are you there?")) == \
            ["are you there?", "sent from the tunnel"], "each message exactly once"
    assert_clean(gus, hana)


def test_a_gateway_restart_loses_nothing(open_chat, gw_a, gw_b):
    """Every message once, in order, and what was typed offline is sent."""
    dana = open_chat(gw_a, query={"username": "dana", "room": "relay"})
    erik = open_chat(gw_b, query={"username": "erik", "room": "relay"})
    dana.wait_connected()
    erik.wait_connected()
    wait_until(lambda: len(dana.members()) == 2, 10, what="both in the room")

    # erik keeps talking the whole time; dana's gateway goes away and comes back meanwhile.
    expected = []

    def talk(first, last):
        for i in range(first, last + 1):
            expected.append(f"message {i} from erik")
            erik.send(f"message {i} from erik")
            erik.pause(0.12)

    talk(1, 5)
    dana.wait_for_message("message 5 from erik")

    gw_a.stop(timeout=8)
    wait_until(lambda: dana.status() in ("reconnecting", "connecting"), 10,
               what="dana sees that her connection is gone")
    talk(6, 10)
    dana.send("typed while offline")
    dana.page.locator("#pending-list li.pending", has_text="typed while offline").wait_for()
    dana.page.locator('#status[data-state="reconnecting"]').wait_for()
    dana.screenshot("04-reconnecting-with-queued-message")
    talk(11, 15)

    gw_a.restart()
    dana.wait_connected(20000)
    talk(16, 20)
    for chat in (dana, erik):
        chat.wait_for_message("message 20 from erik")
        chat.wait_for_message("typed while offline")
    wait_until(lambda: dana.page.locator("#pending-list li").count() == 0, 10,
               what="dana has nothing left pending")

    from_erik = [m["text"] for m in dana.messages() if m["sender"] == "erik"]
    assert from_erik == expected, "every message exactly once, in order"
    dana_ids = [m["id"] for m in dana.messages()]
    erik_ids = [m["id"] for m in erik.messages()]
    assert dana_ids == erik_ids, "both pages show the same messages in the same order"
    assert len(set(dana_ids)) == len(dana_ids), "no duplicates"
    for chat in (dana, erik):
        offline = [m for m in chat.messages() if m["text"] == "typed while offline"]
        assert len(offline) == 1, "the message typed offline arrives exactly once"
    dana.screenshot("05-after-reconnect")
    assert_clean(dana, erik)


def test_a_token_signs_in_and_the_name_comes_from_the_token(open_chat, servers):
    """With a gateway that requires tokens, ?token= signs in; a bare name is refused."""
    secret = "e2e-secret-not-for-production"
    gw_t = servers("gwT", ["--jwt-secret", secret])
    try:
        token = mint_token({"sub": "u-42", "name": "Ines", "exp": int(time.time()) + 3600}, secret)
        ines = open_chat(gw_t, query={"token": token, "room": "members-only"})
        ines.wait_connected()
        assert ines.page.text_content("#me") == "Ines"
        ines.send("signed in with a token")
        ines.wait_for_message("signed in with a token")
        assert "token=" in ines.page.url, "a reload keeps the token"

        stranger = open_chat(gw_t, query={"username": "stranger"})
        stranger.page.locator('#status[data-state="reconnecting"]').wait_for()
        assert not ines.page.locator("#login").is_visible()
        assert_clean(ines)
        ines.close()
        stranger.close()
    finally:
        gw_t.stop(timeout=5)


# Last: it takes Redis away from the whole cluster for a while.
def test_a_message_the_cluster_cannot_take_is_marked_failed_and_retry_sends_it(
        open_chat, gw_a, redis):
    fay = open_chat(gw_a, query={"username": "fay", "room": "outage"})
    fay.wait_connected()
    fay.page.locator("#member-list .member-name", has_text="fay").wait_for()

    redis.stop(timeout=5)
    wait_until(lambda: gw_a.readyz_status() != 200, 10,
               what="gwA to report Redis gone on /readyz")
    fay.send("sent during the outage")
    failed = fay.page.locator("#pending-list li.failed", has_text="sent during the outage")
    failed.wait_for()
    fay.screenshot("10-failed-with-retry")

    redis.restart()
    wait_until(lambda: gw_a.readyz_status() == 200, 20, what="gwA back on Redis")
    fay.wait_connected()
    failed.locator("button", has_text="Retry").click()
    fay.wait_for_message("sent during the outage")
    wait_until(lambda: fay.page.locator("#pending-list li").count() == 0, 10,
               what="nothing left pending")
    assert len([m for m in fay.messages() if m["text"] == "sent during the outage"]) == 1
    assert_clean(fay)
