#include "defer_bus.h"

#include <stdlib.h>
#include <string.h>

/* A join whose answer the inner bus gave at once, kept until told; and
 * what it asked, to read the history again when the answer goes. */
struct waiting_join {
    struct waiting_join *next;
    bus_join_fn cb;
    void *arg;
    struct bus_join_result res;
    bool has_since;
    struct msgid since;
    size_t room_len;
    char room[PROTO_ROOM_MAX];
};

struct waiting_sub {
    struct waiting_sub *next;
    size_t len;
    char room[];
};

struct defer_bus {
    struct bus base;
    struct bus *inner;
    struct waiting_join *joins, **joins_tail;
    struct waiting_sub *subs, **subs_tail;
    bool down;
};

static struct defer_bus *self(struct bus *b)
{
    return (struct defer_bus *)b;
}

static void free_result(struct bus_join_result *r)
{
    for (size_t i = 0; i < r->n; i++)
        frame_unref(r->history[i]);
    free(r->history);
    *r = (struct bus_join_result){0};
}

static void capture(void *arg, int status, const struct bus_join_result *r)
{
    struct waiting_join *w = arg;
    if (status < 0 || !r)
        return; /* the in-process bus does not fail: res stays empty */
    w->res = *r;
    w->res.history = r->n ? malloc(sizeof(*r->history) * r->n) : NULL;
    if (r->n && !w->res.history)
        abort(); /* the harness's own OOM: not a finding */
    for (size_t i = 0; i < r->n; i++)
        w->res.history[i] = frame_ref(r->history[i]);
}

static void d_publish_chat(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg)
{
    struct defer_bus *d = self(b);
    if (d->down)
        done(arg, -1, NULL, NULL);
    else
        d->inner->ops->publish_chat(d->inner, m, done, arg);
}

static int d_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f)
{
    struct defer_bus *d = self(b);
    return d->down ? -1 : d->inner->ops->publish_frame(d->inner, room, room_len, f);
}

static void d_publish_announcement(struct bus *b, const char *room, size_t room_len,
                                   const struct announce_batch *batch)
{
    struct defer_bus *d = self(b);
    if (!d->down)
        d->inner->ops->publish_announcement(d->inner, room, room_len, batch);
}

static void d_subscribe(struct bus *b, const char *room, size_t room_len)
{
    struct defer_bus *d = self(b);
    struct waiting_sub *s = malloc(sizeof(*s) + room_len);
    if (!s)
        abort();
    s->next = NULL;
    s->len = room_len;
    memcpy(s->room, room, room_len);
    *d->subs_tail = s;
    d->subs_tail = &s->next;
}

static void unlink_sub(struct defer_bus *d, struct waiting_sub **pp)
{
    struct waiting_sub *s = *pp;
    *pp = s->next;
    if (d->subs_tail == &s->next)
        d->subs_tail = pp;
    free(s);
}

static void d_unsubscribe(struct bus *b, const char *room, size_t room_len)
{
    struct defer_bus *d = self(b);
    for (struct waiting_sub **pp = &d->subs; *pp;) {
        if ((*pp)->len == room_len && memcmp((*pp)->room, room, room_len) == 0)
            unlink_sub(d, pp);
        else
            pp = &(*pp)->next;
    }
    d->inner->ops->unsubscribe(d->inner, room, room_len);
}

static void d_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                   const struct msgid *since, bus_join_fn cb, void *arg)
{
    struct defer_bus *d = self(b);
    struct waiting_join *w = calloc(1, sizeof(*w));
    if (!w)
        abort();
    w->cb = cb;
    w->arg = arg;
    w->has_since = since != NULL;
    if (since)
        w->since = *since;
    w->room_len = room_len;
    memcpy(w->room, room, room_len);
    /* Registers presence whatever happens next, as the Redis bus does. */
    d->inner->ops->join(d->inner, room, room_len, name, add, since, capture, w);
    if (d->down) {
        free_result(&w->res);
        free(w);
        cb(arg, -1, NULL);
        return;
    }
    *d->joins_tail = w;
    d->joins_tail = &w->next;
}

static void d_leave(struct bus *b, const char *room, size_t room_len, const char *name)
{
    struct defer_bus *d = self(b);
    d->inner->ops->leave(d->inner, room, room_len, name);
}

static void d_presence(struct bus *b, const char *room, size_t room_len, bus_names_fn cb, void *arg)
{
    struct defer_bus *d = self(b);
    if (d->down)
        cb(arg, -1, NULL, 0);
    else
        d->inner->ops->presence(d->inner, room, room_len, cb, arg);
}

static void d_publish_count(struct bus *b, long local)
{
    struct defer_bus *d = self(b);
    if (!d->down)
        d->inner->ops->publish_count(d->inner, local);
}

static bool d_ready(struct bus *b)
{
    return !self(b)->down;
}

static void d_close(struct bus *b, bus_done_fn done, void *arg)
{
    struct defer_bus *d = self(b);
    d->inner->ops->close(d->inner, done, arg);
}

static void d_free(struct bus *b)
{
    struct defer_bus *d = self(b);
    while (d->joins) {
        struct waiting_join *w = d->joins;
        d->joins = w->next;
        free_result(&w->res);
        free(w);
    }
    while (d->subs)
        unlink_sub(d, &d->subs);
    d->inner->ops->free(d->inner);
    bus_base_free(b);
    free(d);
}

static const struct bus_ops defer_ops = {
    .publish_chat = d_publish_chat,
    .publish_frame = d_publish_frame,
    .subscribe = d_subscribe,
    .unsubscribe = d_unsubscribe,
    .join = d_join,
    .leave = d_leave,
    .presence = d_presence,
    .announce = bus_announce_event,
    .publish_announcement = d_publish_announcement,
    .publish_count = d_publish_count,
    .ready = d_ready,
    .close = d_close,
    .free = d_free,
};

struct bus *defer_bus_new(struct bus *inner)
{
    struct defer_bus *d = calloc(1, sizeof(*d));
    if (!d || bus_base_init(&d->base, &defer_ops, inner->base, inner->cfg, &inner->h) < 0) {
        free(d);
        inner->ops->free(inner);
        return NULL;
    }
    d->inner = inner;
    d->joins_tail = &d->joins;
    d->subs_tail = &d->subs;
    return &d->base;
}

bool defer_bus_answer_join(struct bus *b, int status, bool late)
{
    struct defer_bus *d = self(b);
    struct waiting_join *w = d->joins;
    if (!w)
        return false;
    d->joins = w->next;
    if (!d->joins)
        d->joins_tail = &d->joins;
    if (late) {
        free_result(&w->res);
        d->inner->ops->join(d->inner, w->room, w->room_len, "", false,
                            w->has_since ? &w->since : NULL, capture, w);
    }
    /* Unlinked first: the answer may start another join. */
    w->cb(w->arg, status, status < 0 ? NULL : &w->res);
    free_result(&w->res);
    free(w);
    return true;
}

bool defer_bus_answer_subscribe(struct bus *b, int status)
{
    struct defer_bus *d = self(b);
    struct waiting_sub *s = d->subs;
    if (!s)
        return false;
    char room[PROTO_ROOM_MAX];
    size_t len = s->len;
    memcpy(room, s->room, len);
    /* Requeued or freed first: the answer may subscribe or unsubscribe. */
    d->subs = s->next;
    if (!d->subs)
        d->subs_tail = &d->subs;
    if (status < 0) { /* the bus keeps trying */
        s->next = NULL;
        *d->subs_tail = s;
        d->subs_tail = &s->next;
    } else {
        free(s);
    }
    d->base.h.subscribed(d->base.h.ctx, room, len, status);
    return true;
}

void defer_bus_set_down(struct bus *b, bool down)
{
    self(b)->down = down;
}

bool defer_bus_is_down(const struct bus *b)
{
    return ((const struct defer_bus *)b)->down;
}
