// Every chat message the user sends, from the moment it is typed until its own
// broadcast comes back from the gateway. Each entry has a `cid`, unique to
// this page, that goes with the message and comes back in its broadcast:
// the gateway delivers a resend with the same cid only once (PROTOCOL.md
// v1.1), so an entry whose fate is unknown is simply sent again, and its
// broadcast or error is matched by cid. A broadcast without a cid (an older
// gateway) is matched by room and content, oldest first.
//
// States:
//   queued  not written to a socket yet (offline, or the room is rejoining)
//   sent    written, waiting for the broadcast
//   failed  the gateway said no, or nobody can tell; `error` says why

/** A prefix no other page will pick: 64 random bits. */
function randomPrefix() {
  const words = new Uint32Array(2);
  globalThis.crypto.getRandomValues(words);
  return [...words].map((w) => w.toString(36)).join('');
}

export class Outbox {
  #entries = [];
  #nextId = 1;
  #prefix = randomPrefix();

  add(room, content) {
    const n = this.#nextId++;
    const entry = {
      localId: `local-${n}`,
      cid: `${this.#prefix}-${n}`,
      room,
      content,
      state: 'queued',
      // Set when a sent entry's socket closed before its broadcast came
      // back: it may or may not have reached the room.
      unconfirmed: false,
      sentAt: 0,
      // Not sent again before this (ms since the epoch): the gateway asked
      // for a pause (rate_limited with retry_after_ms).
      notBefore: 0,
      error: null,
    };
    this.#entries.push(entry);
    return entry;
  }

  get(localId) {
    return this.#entries.find((e) => e.localId === localId) ?? null;
  }

  entries(room) {
    return this.#entries.filter((e) => room === undefined || e.room === room);
  }

  remove(entry) {
    const i = this.#entries.indexOf(entry);
    if (i >= 0) this.#entries.splice(i, 1);
  }

  /** Takes out the entry a broadcast of our own confirms, if any. */
  takeEcho(room, content, cid) {
    const entry = cid !== undefined ? this.byCid(cid) : this.#entries.find(
      (e) => e.room === room && e.content === content && (e.state !== 'queued' || e.unconfirmed),
    );
    if (entry) this.remove(entry);
    return entry ?? null;
  }

  byCid(cid) {
    return this.#entries.find((e) => e.cid === cid) ?? null;
  }

  /** The oldest entry still waiting for its broadcast: errors about chat frames concern it. */
  oldestSent() {
    return this.#entries.find((e) => e.state === 'sent') ?? null;
  }
}
