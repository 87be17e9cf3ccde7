#include "announce.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

/* One scope: what is tallied since its last flush. */
struct scope {
    struct announce_batch pending;
    int64_t last_ms; /* when it last went out; 0: never */
    bool again;      /* the cluster holds a batch of it: flush even empty */
};

/* A scope's key: 'g' for global, 'r' and the name for a room. */
#define KEY_MAX (1 + PROTO_ROOM_MAX)

static size_t scope_key(char *buf, const char *room, size_t room_len)
{
    if (!room) {
        buf[0] = 'g';
        return 1;
    }
    buf[0] = 'r';
    memcpy(buf + 1, room, room_len);
    return 1 + room_len;
}

void announce_tally_add(struct announce_tally *t, const char *name, size_t len)
{
    t->count++;
    if (t->n == ANNOUNCE_NAMES || len == 0 || len > PROTO_NAME_MAX)
        return;
    for (unsigned i = 0; i < t->n; i++)
        if (strlen(t->names[i]) == len && memcmp(t->names[i], name, len) == 0)
            return;
    memcpy(t->names[t->n], name, len);
    t->names[t->n][len] = '\0';
    t->n++;
}

/* "alice", "alice and bob", "alice, bob and carol", "alice, bob, carol and
 * 37 others", then the verb. */
static void tally_text(char *buf, size_t cap, const struct announce_tally *t, const char *verb)
{
    unsigned long others = t->count > t->n ? t->count - t->n : 0;
    size_t at = 0;
    for (unsigned i = 0; i < t->n && at < cap; i++) {
        const char *sep = i == 0 ? "" : i + 1 < t->n || others > 0 ? ", " : " and ";
        at += (size_t)snprintf(buf + at, cap - at, "%s%s", sep, t->names[i]);
    }
    if (others > 0 && at < cap)
        at += (size_t)snprintf(buf + at, cap - at, "%s%lu other%s", t->n ? " and " : "", others,
                               others == 1 ? "" : "s");
    if (at < cap)
        snprintf(buf + at, cap - at, " %s", verb);
}

static struct frame *tally_frame(const char *room, size_t room_len, const struct announce_tally *t,
                                 const char *event, const char *verb, int64_t ts)
{
    char text[ANNOUNCE_NAMES * (PROTO_NAME_MAX + 2) + 64];
    const char *names[ANNOUNCE_NAMES];
    tally_text(text, sizeof(text), t, verb);
    for (unsigned i = 0; i < t->n; i++)
        names[i] = t->names[i];
    return proto_announcement(room, room_len, text, event, names, t->n, t->count, ts);
}

size_t announce_frames(const char *room, size_t room_len, const struct announce_batch *b,
                       int64_t ts, struct frame *out[2])
{
    size_t n = 0;
    if (b->arrived.count &&
        (out[n] = tally_frame(room, room_len, &b->arrived, room ? "joined" : "connected",
                              room ? "joined the room" : "connected", ts)))
        n++;
    if (b->departed.count &&
        (out[n] = tally_frame(room, room_len, &b->departed, room ? "left" : "disconnected",
                              room ? "left the room" : "disconnected", ts)))
        n++;
    return n;
}

static void flush_now(struct announcer *a, struct scope *s, const char *room, size_t room_len,
                      int64_t now)
{
    /* A copy: the flush may announce again, into this very scope. */
    struct announce_batch b = s->pending;
    memset(&s->pending, 0, sizeof(s->pending));
    s->last_ms = now;
    s->again = false;
    a->flush(a->ctx, room, room_len, &b);
}

/* A scope whose interval is over, copied out of the map before any flush
 * is made: a flush may announce again and change the map. */
struct due {
    char key[KEY_MAX];
    size_t len;
    bool quiet; /* nothing to say for a whole interval: the scope goes */
    struct announce_batch batch;
};

static bool interval_over(const struct scope *s, int64_t now)
{
    return now - s->last_ms >= ANNOUNCE_INTERVAL_MS;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct announcer *a = arg;
    int64_t now = clock_mono_ms();
    const struct strmap_slot *slot;
    size_t n = 0;
    for (size_t i = 0; strmap_next(&a->scopes, &i, &slot);)
        n += interval_over(slot->value, now);
    struct due *due = n ? malloc(sizeof(*due) * n) : NULL;
    if (n && !due) {
        log_error("announce: out of memory, announcements wait a tick");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; k < n && strmap_next(&a->scopes, &i, &slot);) {
        struct scope *s = slot->value;
        if (!interval_over(s, now))
            continue;
        struct due *d = &due[k++];
        memcpy(d->key, slot->key, slot->len);
        d->len = slot->len;
        d->quiet = announce_batch_empty(&s->pending) && !s->again;
        d->batch = s->pending;
        memset(&s->pending, 0, sizeof(s->pending));
        s->last_ms = now;
        s->again = false;
    }
    /* Quiet for a whole interval: the next event may go out at once. Gone
     * before any flush, which may announce into the scope again. */
    for (size_t i = 0; i < k; i++)
        if (due[i].quiet)
            free(strmap_del(&a->scopes, due[i].key, due[i].len));
    for (size_t i = 0; i < k; i++) {
        struct due *d = &due[i];
        bool global = d->key[0] == 'g';
        if (!d->quiet)
            a->flush(a->ctx, global ? NULL : d->key + 1, global ? 0 : d->len - 1, &d->batch);
    }
    free(due);
    if (!a->scopes.count)
        event_del(a->tick);
}

int announcer_init(struct announcer *a, struct event_base *base, announce_flush_fn flush, void *ctx)
{
    memset(a, 0, sizeof(*a));
    a->base = base;
    a->flush = flush;
    a->ctx = ctx;
    strmap_init(&a->scopes);
    a->tick = event_new(base, -1, EV_PERSIST, tick, a);
    return a->tick ? 0 : -1;
}

void announcer_free(struct announcer *a)
{
    const struct strmap_slot *slot;
    for (size_t i = 0; strmap_next(&a->scopes, &i, &slot);)
        free(slot->value);
    strmap_free(&a->scopes);
    if (a->tick)
        event_free(a->tick);
    a->tick = NULL;
}

static struct scope *scope_get(struct announcer *a, const char *room, size_t room_len)
{
    char key[KEY_MAX];
    size_t len = scope_key(key, room, room_len);
    struct scope *s = strmap_get(&a->scopes, key, len);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s || !strmap_put(&a->scopes, key, len, s)) {
        free(s);
        return NULL;
    }
    if (a->scopes.count == 1) {
        /* A few ticks per interval: a scope waits at most a tick past its end. */
        struct timeval tv = {0, ANNOUNCE_INTERVAL_MS / 4 * 1000};
        event_add(a->tick, &tv);
    }
    return s;
}

void announcer_add(struct announcer *a, const char *room, size_t room_len, enum announce_kind k,
                   const char *name)
{
    struct scope *s = scope_get(a, room, room_len);
    if (!s) {
        log_error("announce: out of memory, '%s' not announced", name);
        return;
    }
    announce_tally_add(k == ANNOUNCE_ARRIVED ? &s->pending.arrived : &s->pending.departed, name,
                       strlen(name));
    int64_t now = clock_mono_ms();
    if (!s->again && (s->last_ms == 0 || now - s->last_ms >= ANNOUNCE_INTERVAL_MS))
        flush_now(a, s, room, room_len, now);
}

void announcer_again(struct announcer *a, const char *room, size_t room_len)
{
    struct scope *s = scope_get(a, room, room_len);
    if (s)
        s->again = true;
    else
        log_error("announce: out of memory, a held announcement may stay held");
}
