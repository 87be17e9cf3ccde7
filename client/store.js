// What the UI shows per room: its items in order, unread count and members.
// Global is the room with key GLOBAL (room names are never empty).

import { compareIds } from './message-id.js';

export const GLOBAL = '';
// Old items are let go beyond this, so a long-open tab stays light.
const ITEM_LIMIT = 2000;

class Room {
  items = [];
  unread = 0;
  members = null;
  users = null;
  lastChatId = null;
  // True while a first join's history arrives: old news, not unread.
  initialReplay = true;

  constructor(key) {
    this.key = key;
  }
}

export class Store {
  #rooms = new Map([[GLOBAL, new Room(GLOBAL)]]);

  /** Global first, then rooms in the order they were joined. */
  rooms() {
    return [...this.#rooms.values()];
  }

  get(key) {
    return this.#rooms.get(key) ?? null;
  }

  ensure(key) {
    if (!this.#rooms.has(key)) this.#rooms.set(key, new Room(key));
    return this.#rooms.get(key);
  }

  remove(key) {
    if (key !== GLOBAL) this.#rooms.delete(key);
  }

  /**
   * Adds an item; returns whether it went to the end, which lets a view
   * append instead of redrawing. Chats take their place by id; other items
   * go where they arrive.
   */
  add(key, item) {
    const room = this.ensure(key);
    let appended = true;
    if (item.kind === 'chat' && item.id) {
      if (room.lastChatId !== null && compareIds(item.id, room.lastChatId) < 0) {
        appended = false;
        room.items.splice(this.#slotFor(room, item.id), 0, item);
      } else {
        room.items.push(item);
        room.lastChatId = item.id;
      }
    } else {
      room.items.push(item);
    }
    if (room.items.length > ITEM_LIMIT) {
      room.items.splice(0, room.items.length - ITEM_LIMIT);
      appended = false;
    }
    return appended;
  }

  #slotFor(room, id) {
    let i = room.items.length;
    while (i > 0) {
      const prev = room.items[i - 1];
      if (prev.kind === 'chat' && prev.id && compareIds(prev.id, id) < 0) break;
      i -= 1;
    }
    return i;
  }
}
