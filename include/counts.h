/* counts: the client count as clients see it. This gateway's connects and
 * disconnects are handed to the bus (publish_count) at most once per
 * BUS_COUNT_INTERVAL_MS, since in a connection storm each count the cluster
 * publishes is a frame to every client; and the newest client_count frame
 * that came back is kept for clients that connect before the next one. The
 * cluster-wide limit is the bus's own (the Redis bus publishes at most one
 * total a second for all gateways and retries what it held back). */
#ifndef GATEWAY_COUNTS_H
#define GATEWAY_COUNTS_H

#include <stdbool.h>

#include "bus.h"
#include "frame.h"

struct event;
struct event_base;

struct counts {
    struct bus *bus;
    struct event *timer; /* pending while a changed count waits to go */
    struct frame *last;  /* the newest client_count frame, for newcomers */
    long local;          /* this gateway's clients */
};

/* -1 on OOM (nothing to free then). */
int counts_init(struct counts *c, struct event_base *base, struct bus *bus);
void counts_free(struct counts *c);
/* This gateway now has local clients: published within the interval. */
void counts_changed(struct counts *c, long local);
/* A frame for every client came from the bus: kept if it is a count. */
void counts_seen(struct counts *c, struct frame *f);
/* The newest client_count frame, or NULL. */
static inline struct frame *counts_last(const struct counts *c)
{
    return c->last;
}

#endif
