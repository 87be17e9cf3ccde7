/* The in-process bus: one node is the whole cluster, so publishing is
 * delivering, ids come from a local clock and history lives in memory. */
#include <stdlib.h>
#include <string.h>

#include "bus.h"
#include "clock.h"
#include "dedupe.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"

/* Rooms whose history is kept in memory; the least recently used go first. */
#define LOCAL_HISTORY_ROOMS 10000
/* Messages remembered for deduplication at most (about 300 bytes each):
 * past it the oldest are forgotten before their window is over. */
#define LOCAL_DEDUPE_MAX 100000

struct bus_local {
    struct bus base;
    struct history history;
    struct presence presence;
    struct dedupe dedupe;
    struct msgid last_id;
    long clients; /* as publish_count last said */
};

static struct msgid next_id(struct bus_local *l)
{
    uint64_t now = (uint64_t)clock_wall_ms();
    /* Ids increase even if the wall clock steps back. */
    if (now > l->last_id.ms)
        l->last_id = (struct msgid){now, 0};
    else
        l->last_id.seq++;
    return l->last_id;
}

static void local_publish_chat(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg)
{
    struct bus_local *l = (struct bus_local *)b;
    const char *room = m->room;
    size_t room_len = m->room_len;
    char key[DEDUPE_KEY_MAX];
    size_t klen = 0;
    int64_t now = clock_wall_ms();
    if (m->cid) {
        klen = dedupe_key(key, room, room_len, m->sender, m->cid, m->cid_len);
        struct frame *original = dedupe_get(&l->dedupe, key, klen, now);
        struct msgid original_id;
        if (original && proto_chat_id(frame_data(original), original->len, &original_id)) {
            done(arg, 0, &original_id, original);
            return;
        }
    }
    struct msgid id = next_id(l);
    struct frame *f = proto_chat_assemble(&id, m->rest, m->len);
    if (!f) {
        done(arg, -1, NULL, NULL);
        return;
    }
    if (m->cid && dedupe_put(&l->dedupe, key, klen, f, now) < 0)
        log_warn("dedupe: out of memory, a resend of this message would be delivered again");
    if (room) {
        if (history_append(&l->history, room, room_len, &id, f) < 0)
            log_warn("history: out of memory, message not kept");
        bus_deliver_room(b, room, room_len, &id, f);
    } else {
        bus_deliver_broadcast(b, f);
    }
    frame_unref(f);
    done(arg, 0, &id, NULL);
}

static int local_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f)
{
    if (room)
        bus_deliver_room(b, room, room_len, NULL, f);
    else
        bus_deliver_broadcast(b, f);
    return 0;
}

static void local_publish_announcement(struct bus *b, const char *room, size_t room_len,
                                       const struct announce_batch *batch)
{
    struct frame *f[2];
    for (size_t i = 0, n = announce_frames(room, room_len, batch, clock_wall_ms(), f); i < n; i++) {
        local_publish_frame(b, room, room_len, f[i]);
        frame_unref(f[i]);
    }
}

static void local_subscribe(struct bus *b, const char *room, size_t room_len)
{
    b->h.subscribed(b->h.ctx, room, room_len, 0);
}

static void local_unsubscribe(struct bus *b, const char *room, size_t room_len)
{
    (void)b, (void)room, (void)room_len;
}

static void local_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                       const struct msgid *since, bus_join_fn cb, void *arg)
{
    struct bus_local *l = (struct bus_local *)b;
    if (add && presence_add(&l->presence, room, room_len, name) < 0)
        log_error("presence: out of memory, %s not listed in %.*s", name, (int)room_len, room);
    struct bus_join_result r = {.newest = l->last_id};
    const struct strmap *names = presence_room(&l->presence, room, room_len);
    r.members = names ? (long)names->count : 0;
    r.n = history_since(&l->history, room, room_len, since, &r.history, &r.truncated);
    cb(arg, 0, &r);
    for (size_t i = 0; i < r.n; i++)
        frame_unref(r.history[i]);
    free(r.history);
}

static void local_history(struct bus *b, const char *room, size_t room_len,
                          const struct msgid *since, bus_join_fn cb, void *arg)
{
    local_join(b, room, room_len, NULL, false, since, cb, arg);
}

static void local_rooms(struct bus *b, bus_rooms_fn cb, void *arg)
{
    struct bus_local *l = (struct bus_local *)b;
    size_t cap = l->presence.rooms.count < BUS_ROOMS_MAX ? l->presence.rooms.count : BUS_ROOMS_MAX;
    struct bus_room_count *out = cap ? malloc(sizeof(*out) * cap) : NULL;
    if (cap && !out) {
        cb(arg, -1, NULL, 0);
        return;
    }
    size_t n = 0;
    const struct strmap_slot *s;
    for (size_t i = 0; n < cap && strmap_next(&l->presence.rooms, &i, &s);)
        out[n++] =
            (struct bus_room_count){s->key, s->len, (long)((struct strmap *)s->value)->count};
    cb(arg, 0, out, n);
    free(out);
}

static void local_gateways(struct bus *b, bus_gateways_fn cb, void *arg)
{
    struct bus_local *l = (struct bus_local *)b;
    struct bus_gateway self = {b->cfg->id, true, l->clients};
    cb(arg, 0, &self, 1);
}

static void local_leave(struct bus *b, const char *room, size_t room_len, const char *name)
{
    struct bus_local *l = (struct bus_local *)b;
    presence_remove(&l->presence, room, room_len, name);
}

static void local_presence(struct bus *b, const char *room, size_t room_len, bus_names_fn cb,
                           void *arg)
{
    struct bus_local *l = (struct bus_local *)b;
    const char **names;
    size_t n = presence_names(&l->presence, room, room_len, &names);
    cb(arg, 0, names, n);
    free(names);
}

static void local_publish_count(struct bus *b, long local)
{
    ((struct bus_local *)b)->clients = local;
    struct frame *f = proto_client_count(local, clock_wall_ms());
    if (f) {
        bus_deliver_broadcast(b, f);
        frame_unref(f);
    }
}

static void local_connection_event(struct bus *b, bool connected, const char *name)
{
    (void)b, (void)connected, (void)name; /* no event stream without Redis */
}

static bool local_ready(struct bus *b)
{
    (void)b;
    return true;
}

static void local_close(struct bus *b, bus_done_fn done, void *arg)
{
    (void)b;
    done(arg, 0);
}

static void local_free(struct bus *b)
{
    struct bus_local *l = (struct bus_local *)b;
    history_free(&l->history);
    presence_free(&l->presence);
    dedupe_free(&l->dedupe);
    bus_base_free(b);
    free(l);
}

static const struct bus_ops local_ops = {
    .publish_chat = local_publish_chat,
    .publish_frame = local_publish_frame,
    .subscribe = local_subscribe,
    .unsubscribe = local_unsubscribe,
    .join = local_join,
    .leave = local_leave,
    .presence = local_presence,
    .history = local_history,
    .rooms = local_rooms,
    .gateways = local_gateways,
    .announce = bus_announce_event,
    .publish_announcement = local_publish_announcement,
    .publish_count = local_publish_count,
    .connection_event = local_connection_event,
    .ready = local_ready,
    .close = local_close,
    .free = local_free,
};

struct bus *bus_local_new(struct event_base *base, const struct config *cfg,
                          const struct bus_handlers *h)
{
    struct bus_local *l = calloc(1, sizeof(*l));
    if (!l || bus_base_init(&l->base, &local_ops, base, cfg, h) < 0) {
        log_error("bus: out of memory setting up the in-process bus");
        free(l);
        return NULL;
    }
    history_init(&l->history, cfg->history, LOCAL_HISTORY_ROOMS);
    presence_init(&l->presence);
    dedupe_init(&l->dedupe, cfg->dedupe_window_ms, LOCAL_DEDUPE_MAX);
    return &l->base;
}
