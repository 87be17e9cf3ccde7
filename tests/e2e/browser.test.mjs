// The chat client in a real browser against a real cluster: one Redis, two
// gateways, pages on each. Screenshots of the main screens go to artifacts/.

import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ChatPage, launchBrowser } from './lib/browser.js';
import { startGateway, startRedis } from './lib/servers.js';
import { sleep, waitFor } from './lib/wait.js';

const XSS = '<img src=x onerror=alert(1)>';

/** An HS256 JWT, as a backend holding the gateway's --jwt-secret would mint it. */
function mintToken(claims, secret) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'HS256', typ: 'JWT' })}.${part(claims)}`;
  return `${unsigned}.${createHmac('sha256', secret).update(unsigned).digest('base64url')}`;
}

describe('chat client in chromium, two gateways, one Redis', () => {
  let redis;
  let gwA;
  let gwB;
  let browser;
  const pages = [];

  async function open(gateway, options) {
    const chat = await ChatPage.open(browser, gateway, options);
    pages.push(chat);
    return chat;
  }

  function assertClean(...chats) {
    for (const chat of chats) assert.deepEqual(chat.problems, [], `problems on a page of ${chat.gateway.id}`);
  }

  before(async () => {
    redis = await startRedis();
    [gwA, gwB] = await Promise.all([
      startGateway({ id: 'gwA', redisUrl: redis.url }),
      startGateway({ id: 'gwB', redisUrl: redis.url }),
    ]);
    browser = await launchBrowser();
  });

  after(async () => {
    await Promise.allSettled(pages.map((p) => p.close()));
    await browser?.close().catch(() => {});
    await Promise.allSettled([gwA?.stop(), gwB?.stop()]);
    await redis?.stop();
  });

  test('the username prompt leads into the chat', async () => {
    const chat = await open(gwA, { query: {} });
    const { page } = chat;
    await page.locator('#login-name').waitFor();
    await chat.screenshot('01-username-prompt');
    const csp = await page.getAttribute('meta[http-equiv="Content-Security-Policy"]', 'content');
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /style-src 'self'/);
    await page.fill('#login-name', 'x'.repeat(40));
    await page.press('#login-name', 'Enter');
    assert.match(await page.textContent('#login-error'), /too long/);
    await page.fill('#login-name', 'Mika');
    await page.press('#login-name', 'Enter');
    await chat.waitConnected();
    assert.equal(await page.textContent('#me'), 'Mika');
    assert.match(await page.textContent('#status-text'), /gwA/);
    assert.match(page.url(), /username=Mika/);
    assertClean(chat);
    await chat.close();
  });

  test('two pages on two gateways chat in a room and see each other', async () => {
    const alice = await open(gwA, { query: { username: 'alice', room: 'lobby' } });
    const bob = await open(gwB, { query: { username: 'bob', room: 'lobby' } });
    await Promise.all([alice.waitConnected(), bob.waitConnected()]);
    assert.match(await alice.page.textContent('#status-text'), /gwA/);
    assert.match(await bob.page.textContent('#status-text'), /gwB/);
    assert.equal(await alice.page.textContent('#room-title'), '# lobby');

    await waitFor(async () => (await alice.members()).join() === 'alice,bob', { what: 'alice sees both members' });
    await waitFor(async () => (await bob.members()).join() === 'alice,bob', { what: 'bob sees both members' });
    await waitFor(async () => /^2 online$/.test(await alice.page.textContent('#online-count')),
      { what: 'the cluster-wide count' });

    await alice.send('Hi Bob, I am on gateway A');
    await bob.waitForMessage('Hi Bob, I am on gateway A');
    await bob.send('Hello Alice! B here 👋');
    await alice.waitForMessage('Hello Alice! B here 👋');
    await alice.send('日本語も大丈夫？ 絵文字も 🎌');
    await Promise.all([alice, bob].map((chat) => chat.waitForMessage('日本語も大丈夫？ 絵文字も 🎌')));

    const seenByAlice = await alice.messages();
    assert.deepEqual(seenByAlice.map((m) => [m.sender, m.own, m.text]), [
      ['alice', true, 'Hi Bob, I am on gateway A'],
      ['bob', false, 'Hello Alice! B here 👋'],
      ['alice', true, '日本語も大丈夫？ 絵文字も 🎌'],
    ]);
    assert.deepEqual((await bob.messages()).map((m) => m.id), seenByAlice.map((m) => m.id));
    await alice.screenshot('02-room-desktop');
    assertClean(alice, bob);
    await Promise.all([alice.close(), bob.close()]);
  });

  test('names, messages and rooms from users are shown as text, never as HTML', async () => {
    const mallory = await open(gwB, { query: { username: XSS, room: 'safety' } });
    const carol = await open(gwA, { query: { username: 'carol', room: 'safety' } });
    await Promise.all([mallory.waitConnected(), carol.waitConnected()]);
    await mallory.send(XSS);
    await carol.waitForMessage(XSS);
    const [message] = await carol.messages();
    assert.deepEqual([message.sender, message.text], [XSS, XSS]);
    await waitFor(async () => (await carol.members()).includes(XSS), { what: 'the name in the member list' });

    await carol.page.fill('#join-name', XSS);
    await carol.page.press('#join-name', 'Enter');
    await carol.page.locator('#room-title', { hasText: XSS }).waitFor();

    for (const chat of [mallory, carol]) {
      assert.equal(await chat.page.locator('#app img:not([src="favicon.svg"])').count(), 0, 'no <img> from user text');
    }
    await carol.selectRoom('safety');
    assert.deepEqual((await carol.messages()).map((m) => m.text), [XSS], 'the room redraws the same');
    await carol.screenshot('03-user-text-as-text');
    assertClean(mallory, carol);
    await Promise.all([mallory.close(), carol.close()]);
  });

  test('Japanese everywhere, phone width, unread counts, and IME Enter does not send', async () => {
    const ROOM = '日本語ルーム';
    const sakura = await open(gwB, { query: { username: 'さくら', room: ROOM }, viewport: { width: 390, height: 844 } });
    const taro = await open(gwA, { query: { username: '太郎', room: ROOM }, colorScheme: 'dark' });
    await Promise.all([sakura.waitConnected(), taro.waitConnected()]);
    await waitFor(async () => (await taro.members()).length === 2, { what: 'both in the room' });
    await sakura.send('こんにちは、太郎さん！');
    await taro.waitForMessage('こんにちは、太郎さん！');
    await taro.send('こんにちは！ 今日はいい天気ですね。\n二行目もちゃんと表示されます。');
    await sakura.waitForMessage('二行目もちゃんと表示されます。');

    // An Enter that confirms an IME conversion must not send the half-typed text.
    await sakura.page.fill('#composer-input', 'へんかんちゅう');
    await sakura.page.$eval('#composer-input', (el) => el.dispatchEvent(
      new KeyboardEvent('keydown', { key: 'Enter', isComposing: true, bubbles: true, cancelable: true })));
    assert.equal(await sakura.page.inputValue('#composer-input'), 'へんかんちゅう');
    await sakura.page.fill('#composer-input', '');

    await taro.selectRoom('');
    await sakura.send('未読になるはず');
    await sakura.send('これも');
    const badge = taro.page.locator(`#room-list li[data-room="${ROOM}"] .badge`);
    await waitFor(async () => (await badge.textContent().catch(() => '')) === '2', { what: 'two unread in the room' });
    assert.equal(await taro.page.title(), '(2) Global · Chat');
    await taro.screenshot('06-desktop-dark-unread');
    await taro.selectRoom(ROOM);
    assert.equal(await badge.count(), 0, 'opening the room clears its unread count');

    assert.equal(await sakura.page.textContent('#room-title'), `# ${ROOM}`);
    await sakura.screenshot('07-phone-room');
    await sakura.page.click('#toggle-rooms');
    await sakura.page.locator('#rooms').waitFor({ state: 'visible' });
    await sleep(300); // the panel slides in
    await sakura.screenshot('08-phone-rooms');
    await sakura.page.keyboard.press('Escape');
    await sakura.page.click('#toggle-members');
    await sleep(300);
    await sakura.screenshot('09-phone-members');
    assertClean(sakura, taro);
    await Promise.all([sakura.close(), taro.close()]);
  });

  test('offline and back: the status says so, and what was typed offline goes out once', async () => {
    const gus = await open(gwB, { query: { username: 'gus', room: 'train' }, viewport: { width: 390, height: 844 } });
    const hana = await open(gwA, { query: { username: 'hana', room: 'train' } });
    await Promise.all([gus.waitConnected(), hana.waitConnected()]);
    await waitFor(async () => (await hana.members()).length === 2, { what: 'both in the room' });
    await hana.send('Entering the tunnel?');
    await gus.waitForMessage('Entering the tunnel?');

    await gus.context.setOffline(true);
    await gus.page.locator('#status[data-state="offline"]').waitFor();
    await gus.send('sent from the tunnel');
    await gus.page.locator('#pending-list li.pending', { hasText: 'Waiting for connection' }).waitFor();
    await hana.send('are you there?');
    await gus.screenshot('11-phone-offline');

    await gus.context.setOffline(false);
    await gus.waitConnected();
    for (const chat of [gus, hana]) {
      await chat.waitForMessage('sent from the tunnel');
      await chat.waitForMessage('are you there?');
    }
    for (const chat of [gus, hana]) {
      const texts = (await chat.messages()).map((m) => m.text);
      assert.deepEqual(texts.filter((t) => t === 'sent from the tunnel' || t === 'are you there?').sort(),
        ['are you there?', 'sent from the tunnel'], 'each message exactly once');
    }
    assertClean(gus, hana);
    await Promise.all([gus.close(), hana.close()]);
  });

  test('a gateway restart loses nothing: every message once, in order, and offline typing is sent', async () => {
    const dana = await open(gwA, { query: { username: 'dana', room: 'relay' } });
    const erik = await open(gwB, { query: { username: 'erik', room: 'relay' } });
    await Promise.all([dana.waitConnected(), erik.waitConnected()]);
    await waitFor(async () => (await dana.members()).length === 2, { what: 'both in the room' });

    // erik keeps talking the whole time; dana's gateway goes away and comes back meanwhile.
    const expected = [];
    const talk = async (from, to) => {
      for (let i = from; i <= to; i += 1) {
        expected.push(`message ${i} from erik`);
        await erik.send(`message ${i} from erik`);
        await sleep(120);
      }
    };
    await talk(1, 5);
    await dana.waitForMessage('message 5 from erik');

    await gwA.stop();
    await waitFor(async () => ['reconnecting', 'connecting'].includes(await dana.status()),
      { what: 'dana sees that her connection is gone' });
    await talk(6, 10);
    await dana.send('typed while offline');
    await dana.page.locator('#pending-list li.pending', { hasText: 'typed while offline' }).waitFor();
    await dana.page.locator('#status[data-state="reconnecting"]').waitFor();
    await dana.screenshot('04-reconnecting-with-queued-message');
    await talk(11, 15);

    await gwA.restart();
    await dana.waitConnected(20000);
    await talk(16, 20);
    for (const chat of [dana, erik]) {
      await chat.waitForMessage('message 20 from erik');
      await chat.waitForMessage('typed while offline');
    }
    await waitFor(async () => (await dana.page.locator('#pending-list li').count()) === 0,
      { what: 'dana has nothing left pending' });

    const fromErik = (await dana.messages()).filter((m) => m.sender === 'erik').map((m) => m.text);
    assert.deepEqual(fromErik, expected, 'every message exactly once, in order');
    const danaIds = (await dana.messages()).map((m) => m.id);
    const erikIds = (await erik.messages()).map((m) => m.id);
    assert.deepEqual(danaIds, erikIds, 'both pages show the same messages in the same order');
    assert.equal(new Set(danaIds).size, danaIds.length, 'no duplicates');
    for (const chat of [dana, erik]) {
      const offline = (await chat.messages()).filter((m) => m.text === 'typed while offline');
      assert.equal(offline.length, 1, 'the message typed offline arrives exactly once');
    }
    await dana.screenshot('05-after-reconnect');
    assertClean(dana, erik);
    await Promise.all([dana.close(), erik.close()]);
  });

  test('with a gateway that requires tokens, ?token= signs in and the name comes from the token', async () => {
    const secret = 'e2e-secret-not-for-production';
    const gwT = await startGateway({ id: 'gwT', redisUrl: redis.url, args: ['--jwt-secret', secret] });
    try {
      const token = mintToken({ sub: 'u-42', name: 'Ines', exp: Math.floor(Date.now() / 1000) + 3600 }, secret);
      const ines = await open(gwT, { query: { token, room: 'members-only' } });
      await ines.waitConnected();
      assert.equal(await ines.page.textContent('#me'), 'Ines');
      await ines.send('signed in with a token');
      await ines.waitForMessage('signed in with a token');
      assert.match(ines.page.url(), /token=/, 'a reload keeps the token');

      const stranger = await open(gwT, { query: { username: 'stranger' } });
      await stranger.page.locator('#status[data-state="reconnecting"]').waitFor();
      assert.equal(await ines.page.locator('#login').isVisible(), false);
      assertClean(ines);
      await Promise.all([ines.close(), stranger.close()]);
    } finally {
      await gwT.stop();
    }
  });

  // Last: it takes Redis away from the whole cluster for a while.
  test('a message the cluster cannot take is marked failed, and Retry sends it', async () => {
    const fay = await open(gwA, { query: { username: 'fay', room: 'outage' } });
    await fay.waitConnected();
    await fay.page.locator('#member-list .member-name', { hasText: 'fay' }).waitFor();

    await redis.stop();
    await waitFor(async () => !(await gwA.ready()), { what: 'gwA to report Redis gone on /readyz' });
    await fay.send('sent during the outage');
    const failed = fay.page.locator('#pending-list li.failed', { hasText: 'sent during the outage' });
    await failed.waitFor();
    await fay.screenshot('10-failed-with-retry');

    await redis.restart();
    await waitFor(() => gwA.ready(), { what: 'gwA back on Redis', timeoutMs: 20000 });
    await fay.waitConnected();
    await failed.locator('button', { hasText: 'Retry' }).click();
    await fay.waitForMessage('sent during the outage');
    await waitFor(async () => (await fay.page.locator('#pending-list li').count()) === 0,
      { what: 'nothing left pending' });
    assert.equal((await fay.messages()).filter((m) => m.text === 'sent during the outage').length, 1);
    assertClean(fay);
    await fay.close();
  });
});
