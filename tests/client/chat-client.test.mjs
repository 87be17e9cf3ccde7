// client/chat-client.js in Node against a scripted socket: the reconnect and
// outbox rules, including the cases a real cluster produces only by chance.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backoffDelay } from '../../client/backoff.js';
import { ChatClient } from '../../client/chat-client.js';
import { compareIds } from '../../client/message-id.js';
import { waitFor } from './wait.mjs';

class FakeSocket {
  static all = [];
  readyState = 0;
  sent = [];

  constructor(url) {
    this.url = url;
    FakeSocket.all.push(this);
  }

  static last() { return FakeSocket.all.at(-1); }

  send(text) { this.sent.push(JSON.parse(text)); }

  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code: 1006 });
  }

  // The gateway's side.
  accept(gateway = 'gw1', username = 'me') {
    this.readyState = 1;
    this.deliver({ type: 'welcome', gateway, username, content: `Welcome, ${username}!` });
  }

  deliver(frame) { this.onmessage?.({ data: JSON.stringify(frame) }); }

  drop(code = 1001) {
    this.readyState = 3;
    this.onclose?.({ code });
  }

  frames(type) { return this.sent.filter((f) => f.type === type); }
}

function newClient(options = {}) {
  FakeSocket.all = [];
  const client = new ChatClient({
    username: 'me',
    url: 'ws://gateway.test/ws',
    backoff: { baseMs: 5, capMs: 20 },
    WebSocketImpl: FakeSocket,
    ...options,
  });
  const events = [];
  for (const type of ['message', 'outbox', 'joined', 'error', 'status']) {
    client.addEventListener(type, (e) => events.push({ type, ...e.detail }));
  }
  return { client, events };
}

/** A connected client that has joined room 'r' (with an empty history). */
function inRoom(options) {
  const { client, events } = newClient(options);
  client.join('r');
  client.connect();
  const ws = FakeSocket.last();
  ws.accept();
  ws.deliver({ type: 'joined', room: 'r', members: 1, history: [] });
  return { client, events, ws };
}

const chat = (id, sender, content, room = 'r') => ({ type: 'chat', id, room, sender, content, timestamp: 1 });

/** Waits for the client's next socket after a drop, and accepts it. */
async function reconnect(previous) {
  await waitFor(() => FakeSocket.last() !== previous, { what: 'a new socket', timeoutMs: 2000, intervalMs: 2 });
  FakeSocket.last().accept();
  return FakeSocket.last();
}

describe('message ids and backoff', () => {
  test('ids compare numerically, part by part', () => {
    assert.ok(compareIds('9-0', '10-0') < 0);
    assert.ok(compareIds('5-10', '5-9') > 0);
    assert.equal(compareIds('1700000000000-3', '1700000000000-3'), 0);
  });

  test('backoff grows, is capped, and keeps half of the delay fixed', () => {
    const base = { baseMs: 500, capMs: 15000 };
    assert.equal(backoffDelay(0, base, () => 0), 250);
    assert.equal(backoffDelay(0, base, () => 1), 500);
    assert.equal(backoffDelay(3, base, () => 0), 2000);
    assert.equal(backoffDelay(20, base, () => 1), 15000);
    assert.equal(backoffDelay(20, base, () => 0), 7500);
  });
});

describe('ChatClient', () => {
  test('connects with the name in the URL and joins rooms once welcomed', () => {
    const { client } = newClient();
    client.join('r');
    client.connect();
    const ws = FakeSocket.last();
    assert.equal(ws.url, 'ws://gateway.test/ws?username=me');
    assert.equal(ws.sent.length, 0, 'nothing is sent before the welcome');
    ws.accept('gwX');
    assert.equal(client.state, 'connected');
    assert.equal(client.gateway, 'gwX');
    assert.deepEqual(ws.frames('join_room'), [{ type: 'join_room', room: 'r' }]);
    client.close();
  });

  test('a token function is asked before every connection', async () => {
    let issued = 0;
    const { client } = newClient({ username: '', token: async () => `jwt-${++issued}` });
    client.connect();
    await waitFor(() => FakeSocket.all.length === 1, { what: 'the first socket', timeoutMs: 2000, intervalMs: 2 });
    const ws = FakeSocket.last();
    assert.equal(ws.url, 'ws://gateway.test/ws?token=jwt-1');
    ws.accept('gw1', 'from-token');
    assert.equal(client.username, 'from-token');
    ws.drop();
    await reconnect(ws);
    assert.equal(FakeSocket.last().url, 'ws://gateway.test/ws?token=jwt-2');
    client.close();
  });

  test('rejoins with since after a drop, merges history and live frames in order, once each', async () => {
    const { client, events } = newClient();
    client.join('r');
    client.connect();
    let ws = FakeSocket.last();
    ws.accept();
    ws.deliver({ type: 'joined', room: 'r', members: 1, history: [chat('9-0', 'a', 'one')] });
    ws.deliver(chat('10-0', 'a', 'two'));
    ws.drop();
    assert.equal(client.state, 'reconnecting');

    ws = await reconnect(ws);
    assert.deepEqual(ws.frames('join_room'), [{ type: 'join_room', room: 'r', since: '10-0' }]);
    // A live frame may overtake the joined answer; the history repeats one already seen.
    ws.deliver(chat('12-0', 'a', 'four'));
    ws.deliver({ type: 'joined', room: 'r', members: 1, history: [chat('10-0', 'a', 'two'), chat('11-0', 'a', 'three')] });
    ws.deliver(chat('12-0', 'a', 'four'));
    ws.deliver(chat('13-0', 'a', 'five'));

    const texts = events.filter((e) => e.type === 'message').map((e) => e.content);
    assert.deepEqual(texts, ['one', 'two', 'three', 'four', 'five']);
    client.close();
  });

  test('what is typed offline is sent after the rejoin and confirmed by its broadcast', async () => {
    const { client, events, ws: first } = inRoom();
    first.drop();

    const entry = client.send('while offline', 'r');
    assert.equal(client.pending('r')[0].state, 'queued');
    const ws = await reconnect(first);
    assert.deepEqual(ws.frames('chat'), [], 'not before the room is joined again');
    ws.deliver({ type: 'joined', room: 'r', members: 1, history: [] });
    assert.deepEqual(ws.frames('chat'), [{ type: 'chat', room: 'r', content: 'while offline', cid: entry.cid }]);
    ws.deliver(chat('20-0', 'me', 'while offline'));
    const confirmed = events.find((e) => e.type === 'message' && e.content === 'while offline');
    assert.equal(confirmed.localId, entry.localId);
    assert.deepEqual(client.pending(), []);
    client.close();
  });

  test('a message in flight when the socket drops is resent only if the history lacks it', async () => {
    const { client } = newClient();
    client.join('r');
    client.connect();
    let ws = FakeSocket.last();
    ws.accept();
    ws.deliver({ type: 'joined', room: 'r', members: 1, history: [chat('1-0', 'a', 'hi')] });
    client.send('arrived', 'r');
    client.send('lost', 'r');
    ws.drop();

    ws = await reconnect(ws);
    ws.deliver({ type: 'joined', room: 'r', members: 1, history: [chat('2-0', 'me', 'arrived')] });
    assert.deepEqual(ws.frames('chat').map((f) => f.content), ['lost']);
    assert.deepEqual(client.pending().map((e) => [e.content, e.state]), [['lost', 'sent']]);
    client.close();
  });

  test('unavailable marks the message failed; retry sends it again', () => {
    const { client, ws } = inRoom();
    const entry = client.send('hello', 'r');
    ws.deliver({ type: 'error', code: 'unavailable', content: 'Nothing was delivered.' });
    const [failed] = client.pending();
    assert.equal(failed.state, 'failed');
    assert.equal(failed.error.code, 'unavailable');

    client.retry(entry.localId);
    assert.equal(ws.frames('chat').length, 2);
    ws.deliver(chat('3-0', 'me', 'hello'));
    assert.deepEqual(client.pending(), []);
    client.close();
  });

  test('a global message in flight at a drop is sent again with the same cid, and its cid confirms it', async () => {
    const { client, events } = newClient();
    client.connect();
    const ws = FakeSocket.last();
    ws.accept();
    const entry = client.send('to everyone');
    assert.match(entry.cid, /^[0-9a-z]+-\d+$/);
    ws.drop();
    assert.equal(client.pending()[0].state, 'queued');
    const next = await reconnect(ws);
    assert.deepEqual(next.frames('chat'), [{ type: 'chat', content: 'to everyone', cid: entry.cid }]);
    // The cluster had it already: the original comes back, with its cid.
    next.deliver({ type: 'chat', id: '7-0', sender: 'me', content: 'to everyone', timestamp: 1, cid: entry.cid });
    const confirmed = events.find((e) => e.type === 'message' && e.content === 'to everyone');
    assert.equal(confirmed.localId, entry.localId);
    assert.deepEqual(client.pending(), []);
    client.close();
  });

  test('the same text twice is confirmed entry by entry through the cids', () => {
    const { client, events, ws } = inRoom();
    const first = client.send('again', 'r');
    const second = client.send('again', 'r');
    assert.notEqual(first.cid, second.cid);
    ws.deliver({ ...chat('1-0', 'me', 'again'), cid: second.cid });
    const confirmed = events.filter((e) => e.type === 'message').map((e) => e.localId);
    assert.deepEqual(confirmed, [second.localId]);
    assert.deepEqual(client.pending().map((e) => e.localId), [first.localId]);
    client.close();
  });

  test('an error with a cid fails that message, not the oldest in flight', () => {
    const { client, ws } = inRoom();
    const older = client.send('older', 'r');
    const newer = client.send('newer', 'r');
    ws.deliver({ type: 'error', code: 'unavailable', content: 'no', cid: newer.cid });
    const states = Object.fromEntries(client.pending().map((e) => [e.localId, e.state]));
    assert.deepEqual(states, { [older.localId]: 'sent', [newer.localId]: 'failed' });
    client.close();
  });

  test('rate_limited with retry_after_ms sends the message again after the pause, same cid', async () => {
    const { client, ws } = inRoom();
    const entry = client.send('slow down', 'r');
    const after = client.send('after it', 'r');
    ws.deliver({ type: 'error', code: 'rate_limited', content: 'wait', retry_after_ms: 40, cid: entry.cid });
    assert.equal(client.pending()[0].state, 'queued');
    await waitFor(() => ws.frames('chat').length === 3, { what: 'the resend', timeoutMs: 2000, intervalMs: 5 });
    assert.deepEqual(ws.frames('chat').map((f) => f.cid), [entry.cid, after.cid, entry.cid]);
    client.close();
  });

  test('a pause whose timer fires before the clock says it is over still ends', async () => {
    const { client, ws } = inRoom();
    const entry = client.send('early', 'r');
    ws.deliver({ type: 'error', code: 'rate_limited', content: 'wait', retry_after_ms: 40, cid: entry.cid });
    // From now on Date.now() is 10 ms behind the timers' clock, as the two
    // may differ: the timer fires while the pause seems not over yet.
    const realNow = Date.now;
    Date.now = () => realNow() - 10;
    try {
      await waitFor(() => ws.frames('chat').length === 2, { what: 'the resend', timeoutMs: 2000, intervalMs: 5 });
    } finally {
      Date.now = realNow;
    }
    assert.deepEqual(ws.frames('chat').map((f) => f.cid), [entry.cid, entry.cid]);
    client.close();
  });

  test('a message never confirmed is marked failed after the confirm timeout', async () => {
    const { client } = newClient({ confirmTimeoutMs: 50 });
    client.connect();
    FakeSocket.last().accept();
    client.send('into the void');
    await waitFor(() => client.pending()[0]?.state === 'failed', { what: 'the timeout', timeoutMs: 3000, intervalMs: 20 });
    assert.equal(client.pending()[0].error.code, 'timeout');
    client.close();
  });

  test('a silent connection is pinged and then dropped', async () => {
    const { client } = newClient({ keepaliveMs: 300 });
    client.connect();
    const ws = FakeSocket.last();
    ws.accept();
    await waitFor(() => ws.frames('ping').length > 0, { what: 'a ping', timeoutMs: 3000, intervalMs: 20 });
    await waitFor(() => FakeSocket.last() !== ws, { what: 'a reconnect', timeoutMs: 4000, intervalMs: 20 });
    client.close();
  });
});
