// The selected room's messages, then the messages of ours that the gateway
// has not confirmed yet (sending, waiting for the connection, or failed with
// a retry).

import { GLOBAL } from '../store.js';
import { byId, fill, h } from './dom.js';
import { colourClass, dayKey, dayLabel, fullTime, initial, shortTime } from './format.js';

// Consecutive messages of one sender closer than this share one header.
const GROUP_MS = 5 * 60 * 1000;
const NEAR_BOTTOM_PX = 80;

export class MessageListView {
  #scroller = byId('messages');
  #list = byId('message-list');
  #pending = byId('pending-list');
  #jump = byId('jump-latest');
  #handlers;

  constructor({ onRetry, onDiscard }) {
    this.#handlers = { onRetry, onDiscard };
    this.#jump.addEventListener('click', () => this.#scrollToEnd());
    this.#scroller.addEventListener('scroll', () => {
      if (this.#nearBottom()) this.#jump.hidden = true;
    }, { passive: true });
  }

  /** Draws a room from scratch, scrolled to its newest message. */
  show(room) {
    this.#list.dataset.room = room.key;
    fill(this.#list, room.key === GLOBAL ? globalIntro() : null,
      room.items.map((item, i) => render(item, room.items[i - 1])));
    this.#scrollToEnd();
  }

  /** The room's last item is new, or (appended false) something moved. */
  update(room, appended) {
    const follow = this.#nearBottom();
    if (appended) {
      const { items } = room;
      this.#list.append(...render(items.at(-1), items.at(-2)));
    } else {
      const top = this.#scroller.scrollTop;
      fill(this.#list, room.key === GLOBAL ? globalIntro() : null,
        room.items.map((item, i) => render(item, room.items[i - 1])));
      this.#scroller.scrollTop = top;
    }
    if (follow) this.#scrollToEnd();
    else if (appended) this.#jump.hidden = false;
  }

  /** entries: the outbox of the selected room; online: whether a send can happen now. */
  showPending(entries, online) {
    const follow = this.#nearBottom();
    fill(this.#pending, entries.map((entry) => this.#pendingItem(entry, online)));
    if (follow) this.#scrollToEnd();
  }

  #pendingItem(entry, online) {
    const { onRetry, onDiscard } = this.#handlers;
    const failed = entry.state === 'failed';
    const status = failed
      ? [h('span', { className: 'delivery-text' }, `Not sent: ${entry.error?.content ?? 'unknown error'}`),
        h('button', { className: 'link-button', attrs: { type: 'button' }, on: { click: () => onRetry(entry.localId) } }, 'Retry'),
        h('button', { className: 'link-button', attrs: { type: 'button' }, on: { click: () => onDiscard(entry.localId) } }, 'Discard')]
      : h('span', { className: 'delivery-text' }, online ? 'Sending…' : 'Waiting for connection…');
    return h('li', { className: `msg own ${failed ? 'failed' : 'pending'}`, dataset: { localId: entry.localId } },
      h('div', { className: 'bubble' },
        h('div', { className: 'text' }, entry.content),
        h('div', { className: 'delivery' }, status)));
  }

  #nearBottom() {
    const s = this.#scroller;
    return s.scrollHeight - s.scrollTop - s.clientHeight < NEAR_BOTTOM_PX;
  }

  #scrollToEnd() {
    this.#scroller.scrollTop = this.#scroller.scrollHeight;
    this.#jump.hidden = true;
  }
}

function globalIntro() {
  return h('li', { className: 'notice' },
    'Global reaches everyone online. It keeps no history, so messages sent while you were away are not shown here.');
}

/** The nodes for one item: a day divider when the day changes, then the item. */
function render(item, prev) {
  const nodes = [];
  if (item.timestamp && (!prev?.timestamp || dayKey(prev.timestamp) !== dayKey(item.timestamp))) {
    nodes.push(h('li', { className: 'day' }, h('span', {}, dayLabel(item.timestamp))));
  }
  if (item.kind === 'chat') nodes.push(chat(item, continues(prev, item)));
  else if (item.kind === 'system') nodes.push(system(item));
  else nodes.push(h('li', { className: 'notice' }, item.content));
  return nodes;
}

function continues(prev, item) {
  return prev?.kind === 'chat' && prev.sender === item.sender
    && item.timestamp - prev.timestamp < GROUP_MS && dayKey(prev.timestamp) === dayKey(item.timestamp);
}

function time(ms) {
  return h('time', { attrs: { datetime: new Date(ms).toISOString(), title: fullTime(ms) } }, shortTime(ms));
}

function chat(item, compact) {
  const classes = ['msg', item.own ? 'own' : 'other', compact ? 'compact' : ''].join(' ').trim();
  const avatar = item.own || compact ? null
    : h('span', { className: `avatar ${colourClass(item.sender)}`, attrs: { 'aria-hidden': 'true' } }, initial(item.sender));
  const meta = compact ? null : h('div', { className: 'meta' },
    h('span', { className: 'sender' }, item.own ? 'You' : item.sender), time(item.timestamp));
  return h('li', { className: classes, dataset: { id: item.id ?? '', sender: item.sender } },
    avatar,
    h('div', { className: 'bubble', attrs: compact ? { title: fullTime(item.timestamp) } : {} },
      meta,
      h('div', { className: 'text' }, item.content)));
}

function system(item) {
  return h('li', { className: 'system' },
    h('span', {}, item.content),
    item.timestamp ? time(item.timestamp) : null);
}
