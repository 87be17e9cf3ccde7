/* sendq: one client's outgoing frames, oldest first, with the bytes they
 * hold. A ring of references: queuing a shared frame allocates nothing once
 * the ring has grown. */
#ifndef GATEWAY_SENDQ_H
#define GATEWAY_SENDQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

struct sendq_entry {
    struct frame *frame;
    bool binary;
};

struct sendq {
    struct sendq_entry *ring;
    uint32_t cap; /* power of two, 0 while empty */
    uint32_t head;
    uint32_t count;
    uint32_t bytes; /* 32 bits keep a connection small: limits are far below */
};

void sendq_init(struct sendq *q);
/* Takes a new reference to f. Returns -1 on OOM or past 4 GiB queued
 * (nothing queued). */
int sendq_push(struct sendq *q, struct frame *f, bool binary);
/* The oldest entry, or NULL when empty. */
const struct sendq_entry *sendq_peek(const struct sendq *q);
/* Drops the oldest entry and its reference. */
void sendq_pop(struct sendq *q);
/* Frees the ring if the queue is empty: the connection writer does when a
 * write empties it. A queue is only used when a client gets several frames
 * in one turn of the loop or cannot keep up, so a steady flow of single
 * frames allocates nothing, and an idle client holds no ring. */
void sendq_shrink(struct sendq *q);
/* Drops every entry and frees the ring. */
void sendq_clear(struct sendq *q);

#endif
