// The chat connection: protocol, reconnection and the outbox, with no DOM.
// The UI is one user of it; anyone embedding the chat can be another. The API
// is documented in README.md beside this file.

import { backoffDelay, DEFAULT_BACKOFF } from './backoff.js';
import { compareIds } from './message-id.js';
import { Outbox } from './outbox.js';
import { RoomState, Timeline } from './timeline.js';

// Error codes with which the gateway refuses a chat frame.
const CHAT_ERRORS = new Set(['unavailable', 'rate_limited', 'not_in_room', 'bad_content']);
// Timers are checked this often (or four times per keepalive period, if shorter).
const TICK_MS = 1000;

export function defaultUrl(loc = globalThis.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class ChatClient extends EventTarget {
  #url;
  #requestedName;
  #token;
  #openSeq = 0;
  #username;
  #gateway = null;
  #backoff;
  #keepaliveMs;
  #confirmTimeoutMs;
  #connectTimeoutMs;
  #WebSocket;

  #ws = null;
  #state = 'idle';
  #attempt = 0;
  #retryAt = 0;
  #retryTimer = null;
  #tickTimer = null;
  #openedAt = 0;
  #lastFrameAt = 0;
  #lastPingAt = 0;
  #everConnected = false;

  #rooms = new Map();
  #global = new Timeline();
  #outbox = new Outbox();
  /** room -> {at, timer}: the flush due when the room's pause ends. */
  #pauses = new Map();

  /**
   * @param {object} options
   * @param {string} [options.username]  name to ask for (the gateway may pick another: see `username`)
   * @param {string|function():(string|Promise<string>)} [options.token]  JWT for gateways that
   *   require one (`?token=`); a function is called before every connection, so it can renew
   * @param {string} [options.url]      WebSocket URL without query; default: this page's host, path /ws
   * @param {{baseMs:number, capMs:number}} [options.backoff]
   * @param {number} [options.keepaliveMs]  silence after which a ping is sent; twice that drops the socket
   * @param {number} [options.confirmTimeoutMs]  a sent message not broadcast back by then is marked failed
   * @param {number} [options.connectTimeoutMs]  a connection not welcomed by then is dropped
   */
  constructor({
    username = '',
    token = null,
    url = defaultUrl(),
    backoff = DEFAULT_BACKOFF,
    keepaliveMs = 25000,
    confirmTimeoutMs = 10000,
    connectTimeoutMs = 10000,
    WebSocketImpl = globalThis.WebSocket,
  }) {
    super();
    this.#url = url;
    this.#requestedName = username;
    this.#token = token;
    this.#username = username;
    this.#backoff = backoff;
    this.#keepaliveMs = keepaliveMs;
    this.#confirmTimeoutMs = confirmTimeoutMs;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#WebSocket = WebSocketImpl;
    globalThis.addEventListener?.('online', () => this.reconnectNow());
    // A socket can take a keepalive period to notice the network is gone;
    // the browser knows at once.
    globalThis.addEventListener?.('offline', () => {
      if (this.#state === 'connected' || this.#state === 'connecting') this.#drop();
    });
  }

  get state() { return this.#state; }
  get username() { return this.#username; }
  get gateway() { return this.#gateway; }
  get rooms() { return [...this.#rooms.keys()]; }
  get retryAt() { return this.#retryAt; }

  /** Messages not yet confirmed by the gateway (all, or one room's; null is Global). */
  pending(room) { return this.#outbox.entries(room).map((e) => ({ ...e })); }

  connect() {
    if (this.#state === 'idle' || this.#state === 'closed') this.#open();
  }

  /** Skip the rest of a reconnect countdown. */
  reconnectNow() {
    if (this.#state !== 'reconnecting' && this.#state !== 'offline') return;
    clearTimeout(this.#retryTimer);
    this.#open();
  }

  close() {
    clearTimeout(this.#retryTimer);
    for (const { timer } of this.#pauses.values()) clearTimeout(timer);
    this.#pauses.clear();
    const ws = this.#ws;
    this.#forgetSocket();
    ws?.close(1000);
    this.#setState('closed');
  }

  join(room) {
    if (this.#rooms.has(room)) return;
    this.#rooms.set(room, new RoomState());
    this.#sendJoin(room);
  }

  leave(room) {
    if (!this.#rooms.delete(room)) return;
    this.#sendFrame({ type: 'leave_room', room });
    for (const entry of this.#outbox.entries(room)) {
      if (entry.state === 'queued' || entry.unconfirmed) {
        this.#fail(entry, 'left', 'You left the room before this was sent.');
      }
    }
  }

  /** Sends a chat message to a room, or to everyone when room is null. Returns its outbox entry. */
  send(content, room = null) {
    if (room !== null && !this.#rooms.has(room)) throw new Error(`not in room ${room}`);
    const entry = this.#outbox.add(room, content);
    this.#emitOutbox(entry);
    this.#flush(room);
    return { ...entry };
  }

  /** Sends a failed message again. */
  retry(localId) {
    const entry = this.#outbox.get(localId);
    if (!entry || entry.state !== 'failed') return;
    if (entry.room !== null && !this.#rooms.has(entry.room)) this.join(entry.room);
    Object.assign(entry, { state: 'queued', unconfirmed: false, error: null });
    this.#emitOutbox(entry);
    this.#flush(entry.room);
  }

  /** Gives up on a failed message. */
  discard(localId) {
    const entry = this.#outbox.get(localId);
    if (!entry || entry.state !== 'failed') return;
    this.#outbox.remove(entry);
    this.#emit('outbox', { ...entry, state: 'discarded' });
  }

  /** Asks for a room's members across the cluster; answered by a `presence` event. */
  presence(room) {
    this.#sendFrame({ type: 'presence', room });
  }

  // --- connection --------------------------------------------------------

  #open() {
    this.#detach();
    this.#setState('connecting');
    this.#openedAt = Date.now();
    // The tick also bounds a token function that never answers.
    this.#tickTimer = setInterval(() => this.#tick(), Math.min(TICK_MS, this.#keepaliveMs / 4));
    if (typeof this.#token !== 'function') {
      this.#dial(this.#token);
      return;
    }
    // Only the latest attempt may dial, and only if nothing ended it meanwhile.
    const seq = ++this.#openSeq;
    const current = () => seq === this.#openSeq && this.#state === 'connecting';
    Promise.resolve().then(() => this.#token()).then(
      (token) => { if (current()) this.#dial(token); },
      () => { if (current()) this.#lost(4001); },
    );
  }

  #dial(token) {
    const url = new URL(this.#url);
    if (this.#requestedName) url.searchParams.set('username', this.#requestedName);
    if (token) url.searchParams.set('token', token);
    const ws = new this.#WebSocket(url.href);
    this.#ws = ws;
    ws.onmessage = (event) => { if (this.#ws === ws) this.#onFrame(event.data); };
    ws.onclose = (event) => { if (this.#ws === ws) this.#lost(event.code); };
  }

  #detach() {
    clearInterval(this.#tickTimer);
    if (!this.#ws) return;
    this.#ws.onmessage = null;
    this.#ws.onclose = null;
    this.#ws = null;
  }

  #lost(code) {
    this.#forgetSocket();
    this.#emit('disconnected', { code });
    this.#scheduleReconnect();
  }

  /** What a socket's end means for the rooms and for messages it carried. */
  #forgetSocket() {
    this.#detach();
    for (const rs of this.#rooms.values()) {
      rs.synced = false;
      rs.buffer = [];
    }
    // Whether these arrived nobody knows: they go again with the same cid,
    // which the cluster delivers once (a room's history may tell first).
    for (const entry of this.#outbox.entries()) {
      if (entry.state !== 'sent') continue;
      Object.assign(entry, { state: 'queued', unconfirmed: true });
      this.#emitOutbox(entry);
    }
  }

  #scheduleReconnect() {
    // Offline still retries on the timer: `online` is not fired everywhere.
    const delay = backoffDelay(this.#attempt++, this.#backoff);
    this.#retryAt = Date.now() + delay;
    this.#retryTimer = setTimeout(() => this.#open(), delay);
    this.#setState(globalThis.navigator?.onLine === false ? 'offline' : 'reconnecting');
  }

  #tick() {
    const now = Date.now();
    if (this.#state === 'connecting') {
      if (now - this.#openedAt > this.#connectTimeoutMs) this.#drop();
      return;
    }
    const silent = now - this.#lastFrameAt;
    if (silent > 2 * this.#keepaliveMs) {
      this.#drop();
      return;
    }
    if (silent > this.#keepaliveMs && now - this.#lastPingAt > this.#keepaliveMs) {
      this.#lastPingAt = now;
      this.#sendFrame({ type: 'ping' });
    }
    for (const entry of this.#outbox.entries()) {
      if (entry.state === 'sent' && now - entry.sentAt > this.#confirmTimeoutMs) {
        this.#fail(entry, 'timeout', 'The server did not confirm this message.');
      }
    }
  }

  /** Gives up on a socket that has gone quiet: a dead peer may never close it. */
  #drop() {
    const ws = this.#ws;
    this.#lost(4000);
    ws?.close();
  }

  #setState(state) {
    this.#state = state;
    this.#emit('status', {
      state,
      attempt: this.#attempt,
      retryAt: state === 'reconnecting' ? this.#retryAt : 0,
      gateway: this.#gateway,
      username: this.#username,
    });
  }

  #sendFrame(frame) {
    if (this.#state !== 'connected' || this.#ws?.readyState !== 1) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  #sendJoin(room) {
    const rs = this.#rooms.get(room);
    const frame = { type: 'join_room', room };
    if (rs.lastId && !rs.retriedWithoutSince) frame.since = rs.lastId;
    this.#sendFrame(frame);
  }

  // --- frames from the gateway ---------------------------------------------

  #onFrame(text) {
    this.#lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return; // The protocol sends only JSON; anything else is not for us.
    }
    switch (frame?.type) {
      case 'welcome': return this.#onWelcome(frame);
      case 'chat': return this.#onChat(frame);
      case 'joined': return this.#onJoined(frame);
      case 'system': return this.#onSystem(frame);
      case 'left': return this.#emit('left', { room: frame.room });
      case 'presence': return this.#emit('presence', { room: frame.room, users: frame.users ?? [] });
      case 'client_count': return this.#emit('count', { count: Number(frame.count ?? frame.content) });
      case 'error': return this.#onError(frame);
      default: return undefined; // pong, echo: only keep the connection alive
    }
  }

  #onWelcome(frame) {
    this.#username = frame.username ?? this.#requestedName;
    this.#gateway = frame.gateway ?? null;
    this.#attempt = 0;
    this.#retryAt = 0;
    const reconnected = this.#everConnected;
    this.#everConnected = true;
    this.#setState('connected');
    this.#emit('welcome', { username: this.#username, gateway: this.#gateway, reconnected });
    for (const room of this.#rooms.keys()) this.#sendJoin(room);
    this.#flush(null);
  }

  #onChat(frame) {
    const room = frame.room ?? null;
    if (room === null) {
      this.#accept(null, this.#global, frame, false);
      return;
    }
    const rs = this.#rooms.get(room);
    if (!rs) return;
    if (rs.synced) this.#accept(room, rs, frame, false);
    else rs.buffer.push(frame);
  }

  #accept(room, timeline, frame, replay) {
    if (!timeline.admit(frame.id)) return;
    const own = frame.sender === this.#username;
    const entry = own ? this.#outbox.takeEcho(room, frame.content, frame.cid) : null;
    this.#emit('message', {
      room,
      id: frame.id,
      sender: frame.sender,
      content: frame.content,
      timestamp: frame.timestamp,
      own,
      replay,
      localId: entry?.localId ?? null,
    });
  }

  #onJoined(frame) {
    const rs = this.#rooms.get(frame.room);
    if (!rs) return; // left while the join was on its way
    const rejoin = rs.everJoined;
    const frames = [...(frame.history ?? []), ...rs.buffer].sort((a, b) => compareIds(a.id, b.id));
    Object.assign(rs, { synced: true, everJoined: true, buffer: [], retriedWithoutSince: false });
    this.#emit('joined', {
      room: frame.room,
      members: frame.members,
      truncated: Boolean(frame.truncated),
      rejoin,
    });
    for (const f of frames) this.#accept(frame.room, rs, f, true);
    // What the history did not confirm never arrived: send it again.
    for (const entry of this.#outbox.entries(frame.room)) {
      if (entry.unconfirmed) entry.unconfirmed = false;
    }
    this.#flush(frame.room);
  }

  #onSystem(frame) {
    const room = frame.room ?? null;
    if (room !== null && !this.#rooms.has(room)) return;
    this.#emit('system', { room, content: frame.content, timestamp: frame.timestamp });
  }

  #onError(frame) {
    const { code, content } = frame;
    // An error about a chat names it by cid; without one, it concerns the
    // oldest chat in flight (answers come in the order of requests).
    let entry = null;
    if (frame.cid !== undefined) entry = this.#outbox.byCid(frame.cid);
    else if (CHAT_ERRORS.has(code)) entry = this.#outbox.oldestSent();
    if (entry && code === 'rate_limited' && Number.isFinite(frame.retry_after_ms)) {
      this.#sendLater(entry, frame.retry_after_ms);
      return;
    }
    if (entry) {
      this.#fail(entry, code, content);
      return;
    }
    if (code === 'bad_since') {
      // Rejoin those rooms without `since`; duplicates are dropped by id.
      for (const [room, rs] of this.#rooms) {
        if (!rs.synced && rs.lastId && !rs.retriedWithoutSince) {
          rs.retriedWithoutSince = true;
          this.#sendJoin(room);
        }
      }
    }
    this.#emit('error', { code, content });
  }

  // --- outbox --------------------------------------------------------------

  #flush(room) {
    if (this.#state !== 'connected') return;
    if (room !== null && !this.#rooms.get(room)?.synced) return;
    for (const entry of this.#outbox.entries(room)) {
      if (entry.state !== 'queued') continue;
      // Paused: the rest keep their order. Checked again when the pause
      // ends, since a timer may fire a moment before Date.now() says so.
      const wait = entry.notBefore - Date.now();
      if (wait > 0) {
        this.#flushAfter(room, wait);
        return;
      }
      const frame = { type: 'chat', content: entry.content, cid: entry.cid };
      if (room !== null) frame.room = room;
      if (!this.#sendFrame(frame)) return;
      Object.assign(entry, { state: 'sent', sentAt: Date.now() });
      this.#emitOutbox(entry);
    }
  }

  /** The gateway asked for a pause: the entry goes again after it. */
  #sendLater(entry, ms) {
    Object.assign(entry, { state: 'queued', notBefore: Date.now() + ms });
    this.#emitOutbox(entry);
    this.#flushAfter(entry.room, ms);
  }

  /** Flushes room in ms, or sooner if a flush of it is due sooner. */
  #flushAfter(room, ms) {
    const at = Date.now() + ms;
    const pending = this.#pauses.get(room);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.#pauses.delete(room);
      this.#flush(room);
    }, ms);
    this.#pauses.set(room, { at, timer });
  }

  #fail(entry, code, content) {
    Object.assign(entry, { state: 'failed', unconfirmed: false, error: { code, content } });
    this.#emitOutbox(entry);
  }

  #emitOutbox(entry) {
    this.#emit('outbox', { ...entry });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
