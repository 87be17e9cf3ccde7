#include "dedupe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct dedupe_entry {
    struct dedupe_entry *next; /* newer */
    const char *key;           /* the map's copy */
    size_t len;
    int64_t expires_ms;
    struct frame *f;
};

void dedupe_init(struct dedupe *d, unsigned window_ms, size_t max_entries)
{
    memset(d, 0, sizeof(*d));
    strmap_init(&d->map);
    d->window_ms = window_ms;
    d->max_entries = max_entries;
}

static void drop_oldest(struct dedupe *d)
{
    struct dedupe_entry *e = d->oldest;
    d->oldest = e->next;
    if (!d->oldest)
        d->newest = NULL;
    strmap_del(&d->map, e->key, e->len);
    frame_unref(e->f);
    free(e);
}

void dedupe_free(struct dedupe *d)
{
    while (d->oldest)
        drop_oldest(d);
    strmap_free(&d->map);
}

size_t dedupe_key(char *buf, const char *room, size_t room_len, const char *sender, const char *cid,
                  size_t cid_len)
{
    int n = snprintf(buf, DEDUPE_KEY_MAX, "%.*s\t%s\t%.*s", room ? (int)room_len : 0,
                     room ? room : "", sender, (int)cid_len, cid);
    return n < DEDUPE_KEY_MAX ? (size_t)n : DEDUPE_KEY_MAX - 1;
}

/* Entries came in time order with one window, so they expire in order. */
static void expire(struct dedupe *d, int64_t now_ms)
{
    while (d->oldest && d->oldest->expires_ms <= now_ms)
        drop_oldest(d);
}

struct frame *dedupe_get(struct dedupe *d, const char *key, size_t len, int64_t now_ms)
{
    expire(d, now_ms);
    struct dedupe_entry *e = strmap_get(&d->map, key, len);
    return e ? e->f : NULL;
}

int dedupe_put(struct dedupe *d, const char *key, size_t len, struct frame *f, int64_t now_ms)
{
    expire(d, now_ms);
    if (d->window_ms == 0 || d->max_entries == 0)
        return 0;
    if (strmap_get(&d->map, key, len))
        return 0; /* the first message under a key stays the original */
    while (d->map.count >= d->max_entries)
        drop_oldest(d);
    struct dedupe_entry *e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strmap_put(&d->map, key, len, e))) {
        free(e);
        return -1;
    }
    e->len = len;
    e->expires_ms = now_ms + d->window_ms;
    e->f = frame_ref(f);
    if (d->newest)
        d->newest->next = e;
    else
        d->oldest = e;
    d->newest = e;
    return 0;
}
