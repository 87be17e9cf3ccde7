// The chat screen: turns ChatClient events into the store and the views, and
// people's actions into ChatClient calls.

import { ChatClient } from './chat-client.js';
import { GLOBAL, Store } from './store.js';
import { ComposerView } from './view/composer.js';
import { byId } from './view/dom.js';
import { roomLabel } from './view/format.js';
import { Layout } from './view/layout.js';
import { MembersView } from './view/members.js';
import { MessageListView } from './view/message-list.js';
import { RoomListView } from './view/room-list.js';
import { StatusView } from './view/status.js';
import { toast } from './view/toasts.js';

// Presence is asked again this long after the last join/leave/connect event,
// so a burst of them costs one request.
const PRESENCE_DEBOUNCE_MS = 200;

export class ChatApp {
  #client;
  #store = new Store();
  #selected = GLOBAL;
  #presenceTimer = null;
  #views;

  #token;

  /** token: a JWT for gateways that require one; it stays in the page URL for reloads. */
  constructor({ username, token }) {
    this.#token = token;
    this.#client = new ChatClient({ username, token });
    this.#views = {
      status: new StatusView({ onRetryNow: () => this.#client.reconnectNow() }),
      rooms: new RoomListView({
        onSelect: (key) => this.select(key),
        onLeave: (key) => this.leave(key),
        onJoin: (name) => this.join(name),
      }),
      messages: new MessageListView({
        onRetry: (id) => this.#client.retry(id),
        onDiscard: (id) => this.#client.discard(id),
      }),
      members: new MembersView(),
      composer: new ComposerView({ onSend: (text) => this.#send(text) }),
      layout: new Layout(),
    };
    byId('leave-room').addEventListener('click', () => this.leave(this.#selected));
    this.#listen();
    window.addEventListener('beforeunload', (event) => {
      if (this.#client.pending().length > 0) event.preventDefault();
    });
    document.addEventListener('visibilitychange', () => this.#clearUnreadIfSeen());
  }

  /** Connects, rejoins the rooms of this tab's earlier visit and opens `room` (or Global). */
  start(room) {
    this.#views.status.setMe(this.#client.username);
    byId('app').hidden = false;
    for (const saved of this.#savedRooms()) this.#joinQuietly(saved);
    if (room) this.#joinQuietly(room);
    this.select(room ?? GLOBAL);
    this.#client.connect();
  }

  select(key) {
    const room = this.#store.get(key) ?? this.#store.get(GLOBAL);
    this.#selected = room.key;
    room.unread = 0;
    const { messages, composer, layout } = this.#views;
    byId('room-title').textContent = key === GLOBAL ? 'Global' : `# ${room.key}`;
    byId('leave-room').hidden = room.key === GLOBAL;
    composer.setRoom(room.key === GLOBAL ? 'everyone' : `#${room.key}`);
    messages.show(room);
    this.#showPending();
    this.#showMembers();
    this.#client.presence(room.key);
    this.#renderRooms();
    this.#saveState();
    layout.closePanels();
    composer.focus();
  }

  join(name) {
    this.#joinQuietly(name);
    this.select(name);
  }

  leave(key) {
    if (key === GLOBAL) return;
    this.#client.leave(key);
    this.#store.remove(key);
    if (key === this.#selected) this.select(GLOBAL);
    else this.#renderRooms();
    this.#saveState();
  }

  #joinQuietly(name) {
    this.#store.ensure(name);
    this.#client.join(name);
  }

  #send(text) {
    this.#client.send(text, this.#selected === GLOBAL ? null : this.#selected);
  }

  #listen() {
    const on = (type, fn) => this.#client.addEventListener(type, (event) => fn(event.detail));
    on('status', (s) => {
      this.#views.status.update(s);
      byId('offline-banner').hidden = s.state === 'connected';
      this.#showPending();
    });
    on('welcome', ({ username, reconnected }) => {
      this.#views.status.setMe(username);
      this.#saveState();
      if (reconnected) {
        this.#addItem(GLOBAL, { kind: 'notice', content: 'Reconnected. Messages sent to Global while you were offline cannot be shown.' });
      }
      this.#schedulePresence();
    });
    on('message', (m) => this.#onMessage(m));
    on('joined', ({ room, members, truncated, rejoin }) => {
      const state = this.#store.get(room);
      if (!state) return;
      Object.assign(state, { members, initialReplay: !rejoin });
      if (truncated && rejoin) {
        this.#addItem(room, { kind: 'notice', content: 'Some messages from while you were away are no longer kept and cannot be shown.' });
      }
      if (room === this.#selected) this.#client.presence(room);
    });
    on('system', ({ room, content, timestamp }) => {
      this.#addItem(room ?? GLOBAL, { kind: 'system', content, timestamp });
      this.#schedulePresence();
    });
    on('presence', ({ room, users }) => {
      const state = this.#store.get(room);
      if (!state) return;
      state.users = [...new Set(users)].sort((a, b) => a.localeCompare(b));
      state.members = state.users.length;
      if (room === this.#selected) this.#showMembers();
    });
    on('count', ({ count }) => this.#views.status.setCount(count));
    on('outbox', (entry) => {
      if ((entry.room ?? GLOBAL) === this.#selected) this.#showPending();
      this.#renderRooms();
    });
    on('error', ({ content }) => toast(content));
  }

  #onMessage({ room, id, sender, content, timestamp, own, replay, localId }) {
    const key = room ?? GLOBAL;
    const state = this.#store.get(key);
    if (!state) return;
    const seen = key === this.#selected && !document.hidden;
    if (!own && !seen && !(replay && state.initialReplay)) {
      state.unread += 1;
      this.#renderRooms();
    }
    this.#addItem(key, { kind: 'chat', id, sender, content, timestamp, own });
    if (localId && key === this.#selected) this.#showPending();
  }

  #addItem(key, item) {
    const appended = this.#store.add(key, item);
    if (key === this.#selected) this.#views.messages.update(this.#store.get(key), appended);
  }

  #clearUnreadIfSeen() {
    const room = this.#store.get(this.#selected);
    if (document.hidden || !room || room.unread === 0) return;
    room.unread = 0;
    this.#renderRooms();
  }

  #showPending() {
    const room = this.#selected === GLOBAL ? null : this.#selected;
    this.#views.messages.showPending(this.#client.pending(room), this.#client.state === 'connected');
  }

  #showMembers() {
    const room = this.#store.get(this.#selected);
    this.#views.members.render(room, this.#client.username);
    const count = room.key === GLOBAL ? null : room.members;
    byId('room-meta').textContent = count == null ? '' : `${count} ${count === 1 ? 'member' : 'members'}`;
    byId('toggle-members').textContent = count == null ? 'Members' : `Members · ${count}`;
  }

  #schedulePresence() {
    clearTimeout(this.#presenceTimer);
    this.#presenceTimer = setTimeout(() => {
      if (this.#selected !== GLOBAL) this.#client.presence(this.#selected);
    }, PRESENCE_DEBOUNCE_MS);
  }

  #renderRooms() {
    const rooms = this.#store.rooms();
    const failed = new Set(this.#client.pending().filter((e) => e.state === 'failed').map((e) => e.room ?? GLOBAL));
    this.#views.rooms.render(rooms, this.#selected, failed);
    const unread = rooms.reduce((sum, r) => sum + r.unread, 0);
    document.title = `${unread > 0 ? `(${unread}) ` : ''}${roomLabel(this.#selected)} · Chat`;
  }

  // This tab's rooms survive a reload (sessionStorage); the URL names the
  // user and the open room so that it can be bookmarked or shared.
  #storageKey() {
    return `chat.rooms.${this.#client.username}`;
  }

  #savedRooms() {
    try {
      const rooms = JSON.parse(sessionStorage.getItem(this.#storageKey()) ?? '[]');
      return Array.isArray(rooms) ? rooms.filter((r) => typeof r === 'string' && r !== '') : [];
    } catch {
      return [];
    }
  }

  #saveState() {
    try {
      sessionStorage.setItem(this.#storageKey(), JSON.stringify(this.#client.rooms));
    } catch {
      // Storage can be full or disabled; the rooms are then simply not remembered.
    }
    const params = new URLSearchParams({ username: this.#client.username });
    if (this.#token) params.set('token', this.#token);
    if (this.#selected !== GLOBAL) params.set('room', this.#selected);
    history.replaceState(null, '', `?${params}`);
  }
}
