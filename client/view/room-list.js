// The room list (Global first, then joined rooms with unread counts) and the
// form to join or create a room by name.

import { GLOBAL } from '../store.js';
import { roomProblem } from '../validate.js';
import { byId, fill, h } from './dom.js';
import { roomLabel } from './format.js';

export class RoomListView {
  #list = byId('room-list');
  #form = byId('join-form');
  #input = byId('join-name');
  #error = byId('join-error');
  #handlers;

  constructor({ onSelect, onLeave, onJoin }) {
    this.#handlers = { onSelect, onLeave };
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      const name = this.#input.value.trim();
      const why = roomProblem(name);
      this.#error.textContent = why ?? '';
      if (why) return;
      this.#input.value = '';
      onJoin(name);
    });
  }

  /** rooms: store rooms; failed: Set of room keys with messages that were not sent. */
  render(rooms, selected, failed) {
    fill(this.#list, rooms.map((room) => this.#item(room, room.key === selected, failed.has(room.key))));
  }

  #item(room, isSelected, hasFailed) {
    const { onSelect, onLeave } = this.#handlers;
    const select = h('button', {
      className: 'room-button',
      attrs: { type: 'button', 'aria-current': isSelected ? 'true' : 'false' },
      on: { click: () => onSelect(room.key) },
    },
    h('span', { className: room.key === GLOBAL ? 'room-icon global' : 'room-icon', attrs: { 'aria-hidden': 'true' } },
      room.key === GLOBAL ? '◎' : '#'),
    h('span', { className: 'room-name', attrs: { title: roomLabel(room.key) } }, roomLabel(room.key)),
    hasFailed ? h('span', { className: 'badge failed', attrs: { title: 'Messages not sent' } }, '!') : null,
    room.unread > 0 ? h('span', { className: 'badge', attrs: { 'aria-label': `${room.unread} unread` } },
      room.unread > 99 ? '99+' : String(room.unread)) : null);
    const leave = room.key === GLOBAL ? null : h('button', {
      className: 'room-leave',
      attrs: { type: 'button', 'aria-label': `Leave ${room.key}`, title: 'Leave room' },
      on: { click: () => onLeave(room.key) },
    }, '×');
    return h('li', { className: isSelected ? 'room selected' : 'room', dataset: { room: room.key } }, select, leave);
  }
}
