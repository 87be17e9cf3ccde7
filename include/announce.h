/* announce: "NAME connected" / "NAME disconnected" for everyone, "NAME
 * joined the room" / "NAME left the room" for a room, coalesced so that a
 * storm costs each client about one frame per second instead of one frame
 * per event (N clients connecting would otherwise cost N^2/2 frames).
 *
 * Each scope (global, or one room) goes at most once per interval: the
 * first event after a quiet interval goes out at once, the next ones are
 * tallied and go out together when the interval ends, one frame per kind
 * of event, such as "alice, bob, carol and 37 others joined the room". A
 * single event reads exactly as PROTOCOL.md says ("alice connected").
 *
 * The announcer only tallies and times; its flush callback publishes (the
 * bus, which also merges what several gateways hold for the same scope). */
#ifndef GATEWAY_ANNOUNCE_H
#define GATEWAY_ANNOUNCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "frame.h"
#include "proto.h"
#include "strmap.h"

/* Names a frame spells out; the rest are counted ("and 37 others"). */
#define ANNOUNCE_NAMES 3
/* One frame per scope per interval at most. */
#define ANNOUNCE_INTERVAL_MS 1000

enum announce_kind { ANNOUNCE_ARRIVED, ANNOUNCE_DEPARTED };

/* Events of one kind: how many, and the first distinct names. */
struct announce_tally {
    unsigned long count;
    unsigned n;
    char names[ANNOUNCE_NAMES][PROTO_NAME_MAX + 1];
};

struct announce_batch {
    struct announce_tally arrived, departed;
};

/* Counts one event of name (len bytes), and keeps the name if it is new
 * and there is room. */
void announce_tally_add(struct announce_tally *t, const char *name, size_t len);
static inline bool announce_batch_empty(const struct announce_batch *b)
{
    return !b->arrived.count && !b->departed.count;
}

/* The system frames of a batch (room NULL: global): one per kind of event
 * in it, arrivals first. Returns how many it put in out (references the
 * caller owns); fewer when memory is short. */
size_t announce_frames(const char *room, size_t room_len, const struct announce_batch *b,
                       int64_t ts, struct frame *out[2]);

/* Publishes a batch of one scope (room NULL: global). Called with no
 * pointer into the announcer held, so it may announce again. */
typedef void (*announce_flush_fn)(void *ctx, const char *room, size_t room_len,
                                  const struct announce_batch *b);

struct announcer {
    struct event_base *base;
    struct event *tick;
    struct strmap scopes; /* "" for global, "r:<room>" for a room */
    announce_flush_fn flush;
    void *ctx;
};

int announcer_init(struct announcer *a, struct event_base *base, announce_flush_fn flush,
                   void *ctx);
/* Drops what is still tallied. */
void announcer_free(struct announcer *a);
/* One event; may flush at once (the scope was quiet). */
void announcer_add(struct announcer *a, const char *room, size_t room_len, enum announce_kind k,
                   const char *name);
/* The cluster held back a scope's batch (another gateway announced within
 * the interval): flush the scope again, even empty, when its interval
 * ends, so that what is held goes out. */
void announcer_again(struct announcer *a, const char *room, size_t room_len);

#endif
