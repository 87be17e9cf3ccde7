/* dedupe: the chat messages the in-process bus accepted with a client
 * message id (cid), by "room \t sender \t cid", for the dedupe window, so
 * that a resend is answered with the original instead of being delivered
 * again (the Redis bus keeps the same in Redis). Entries leave in the order
 * they came, when their window is over or, past a cap, the oldest first: a
 * client inventing ids bounds nothing but the window. */
#ifndef GATEWAY_DEDUPE_H
#define GATEWAY_DEDUPE_H

#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "strmap.h"

struct dedupe_entry;

struct dedupe {
    struct strmap map;
    struct dedupe_entry *oldest, *newest;
    size_t max_entries;
    unsigned window_ms;
};

void dedupe_init(struct dedupe *d, unsigned window_ms, size_t max_entries);
void dedupe_free(struct dedupe *d);
/* The key of a message: room (NULL: global), sender and cid, joined by
 * tabs (none of them may hold one). Returns its length; buf holds
 * DEDUPE_KEY_MAX bytes. */
#define DEDUPE_KEY_MAX (64 + 1 + 32 + 1 + 64)
size_t dedupe_key(char *buf, const char *room, size_t room_len, const char *sender, const char *cid,
                  size_t cid_len);
/* The message accepted under key within the window (a borrowed
 * reference), or NULL. */
struct frame *dedupe_get(struct dedupe *d, const char *key, size_t len, int64_t now_ms);
/* Remembers f (a new reference) under key from now_ms. -1 on OOM. */
int dedupe_put(struct dedupe *d, const char *key, size_t len, struct frame *f, int64_t now_ms);

#endif
