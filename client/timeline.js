// What a client has seen of one room (or of Global): the newest id, to ask
// for what was missed (`since`), and recent ids, to drop what arrives twice.

import { maxId } from './message-id.js';

// Far more than a room's history, which is the most that can arrive twice.
const SEEN_LIMIT = 2000;

export class Timeline {
  lastId = null;
  #seen = new Set();

  /** False when the id was seen already. */
  admit(id) {
    if (id == null) return true;
    if (this.#seen.has(id)) return false;
    this.#seen.add(id);
    if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value);
    this.lastId = maxId(this.lastId, id);
    return true;
  }
}

export class RoomState extends Timeline {
  // False from a (re)connect until `joined`: live frames wait in `buffer`
  // so that they merge with the history in id order.
  synced = false;
  everJoined = false;
  buffer = [];
  retriedWithoutSince = false;
}
