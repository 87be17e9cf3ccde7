// Every chat message the user sends, from the moment it is typed until its own
// broadcast comes back from the gateway. The protocol has no client-side
// message ids, so a broadcast is matched to its entry by room and content,
// oldest first; that is exact as long as the same person does not send the
// same text to the same room twice within one round trip, and harmless if
// they do (the two entries are interchangeable).
//
// States:
//   queued  not written to a socket yet (offline, or the room is rejoining)
//   sent    written, waiting for the broadcast
//   failed  the gateway said no, or nobody can tell; `error` says why

export class Outbox {
  #entries = [];
  #nextId = 1;

  add(room, content) {
    const entry = {
      localId: `local-${this.#nextId++}`,
      room,
      content,
      state: 'queued',
      // Set when a sent entry's socket closed before its broadcast came
      // back: it may or may not have reached the room.
      unconfirmed: false,
      sentAt: 0,
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
  takeEcho(room, content) {
    const entry = this.#entries.find(
      (e) => e.room === room && e.content === content && (e.state !== 'queued' || e.unconfirmed),
    );
    if (entry) this.remove(entry);
    return entry ?? null;
  }

  /** The oldest entry still waiting for its broadcast: errors about chat frames concern it. */
  oldestSent() {
    return this.#entries.find((e) => e.state === 'sent') ?? null;
  }
}
