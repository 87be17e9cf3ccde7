#include "history.h"

#include <stdlib.h>

struct history_entry {
    struct msgid id;
    struct frame *frame;
};

struct history_room {
    const char *name; /* the strmap's key copy */
    size_t name_len;
    struct history_entry *ring; /* cap entries, grown up to per_room */
    unsigned head, count, cap;
    bool dropped_any;
    struct msgid last_dropped; /* newest id ever forgotten */
    struct list lru;           /* on history.lru */
};

void history_init(struct history *h, unsigned per_room, size_t max_rooms)
{
    strmap_init(&h->rooms);
    list_init(&h->lru);
    h->per_room = per_room;
    h->max_rooms = max_rooms ? max_rooms : 1;
}

static void room_free(struct history_room *r)
{
    for (unsigned i = 0; i < r->count; i++)
        frame_unref(r->ring[(r->head + i) % r->cap].frame);
    free(r->ring);
    free(r);
}

void history_free(struct history *h)
{
    while (!list_empty(&h->lru)) {
        struct history_room *r = list_entry(h->lru.next, struct history_room, lru);
        list_remove(&r->lru);
        room_free(r);
    }
    strmap_free(&h->rooms);
}

static void evict_oldest(struct history *h)
{
    struct history_room *r = list_entry(h->lru.prev, struct history_room, lru);
    list_remove(&r->lru);
    strmap_del(&h->rooms, r->name, r->name_len);
    room_free(r);
}

/* Rings grow as a room's messages come, so that a room with one message
 * does not cost a whole history. */
static int grow(struct history_room *r, unsigned per_room)
{
    unsigned ncap = r->cap ? r->cap * 2 : 4;
    if (ncap > per_room)
        ncap = per_room;
    struct history_entry *n = malloc(sizeof(*n) * ncap);
    if (!n)
        return -1;
    for (unsigned i = 0; i < r->count; i++)
        n[i] = r->ring[(r->head + i) % r->cap];
    free(r->ring);
    r->ring = n;
    r->cap = ncap;
    r->head = 0;
    return 0;
}

int history_append(struct history *h, const char *room, size_t room_len, const struct msgid *id,
                   struct frame *f)
{
    if (!h->per_room)
        return 0;
    struct history_room *r = strmap_get(&h->rooms, room, room_len);
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return -1;
        r->name = strmap_put(&h->rooms, room, room_len, r);
        if (!r->name) {
            room_free(r);
            return -1;
        }
        r->name_len = room_len;
        list_insert_head(&h->lru, &r->lru);
        if (h->rooms.count > h->max_rooms)
            evict_oldest(h);
    } else {
        list_remove(&r->lru);
        list_insert_head(&h->lru, &r->lru);
    }
    if (r->count == h->per_room) {
        struct history_entry *old = &r->ring[r->head];
        r->dropped_any = true;
        r->last_dropped = old->id;
        frame_unref(old->frame);
        r->head = (r->head + 1) % r->cap;
        r->count--;
    } else if (r->count == r->cap && grow(r, h->per_room) < 0) {
        return -1;
    }
    r->ring[(r->head + r->count) % r->cap] =
        (struct history_entry){.id = *id, .frame = frame_ref(f)};
    r->count++;
    return 0;
}

size_t history_since(struct history *h, const char *room, size_t room_len,
                     const struct msgid *since, struct frame ***out, bool *truncated)
{
    *out = NULL;
    *truncated = false;
    struct history_room *r = h->per_room ? strmap_get(&h->rooms, room, room_len) : NULL;
    if (!r || !r->count)
        return 0;
    unsigned start = 0;
    if (since) {
        *truncated = r->dropped_any && msgid_cmp(since, &r->last_dropped) < 0;
        while (start < r->count && msgid_cmp(&r->ring[(r->head + start) % r->cap].id, since) <= 0)
            start++;
    }
    size_t n = r->count - start;
    if (!n)
        return 0;
    struct frame **arr = malloc(sizeof(*arr) * n);
    if (!arr)
        return 0;
    for (size_t i = 0; i < n; i++)
        arr[i] = frame_ref(r->ring[(r->head + start + i) % r->cap].frame);
    *out = arr;
    return n;
}
