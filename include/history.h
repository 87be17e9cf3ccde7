/* history: the last N chat frames of each room, in memory, for the
 * in-process bus (the Redis bus keeps history in Redis streams). Rooms are
 * kept in least-recently-used order and the oldest are forgotten past a
 * cap, so the number of room names a client can invent bounds nothing. */
#ifndef GATEWAY_HISTORY_H
#define GATEWAY_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"
#include "list.h"
#include "proto.h"
#include "strmap.h"

struct history_room;

struct history {
    struct strmap rooms;
    struct list lru; /* of rooms, the most recent first */
    unsigned per_room;
    size_t max_rooms;
};

void history_init(struct history *h, unsigned per_room, size_t max_rooms);
void history_free(struct history *h);
/* Keeps a reference to f. Returns -1 on OOM. */
int history_append(struct history *h, const char *room, size_t room_len, const struct msgid *id,
                   struct frame *f);
/* The kept frames after *since (all of them when since is NULL), oldest
 * first, as new references in a malloc'd array the caller frees (after
 * unreffing each). *truncated is set when messages after since were
 * already forgotten. Returns the count. */
size_t history_since(struct history *h, const char *room, size_t room_len,
                     const struct msgid *since, struct frame ***out, bool *truncated);

#endif
