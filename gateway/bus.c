#include "bus.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

static void count_fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct bus *b = arg;
    b->count_dirty = false;
    b->ops->publish_count(b, b->local_clients);
}

static void announcement_flush(void *ctx, const char *room, size_t room_len,
                               const struct announce_batch *batch)
{
    struct bus *b = ctx;
    b->ops->publish_announcement(b, room, room_len, batch);
}

void bus_announce_event(struct bus *b, const char *room, size_t room_len, enum announce_kind k,
                        const char *name)
{
    announcer_add(&b->announcer, room, room_len, k, name);
}

int bus_base_init(struct bus *b, const struct bus_ops *ops, struct event_base *base,
                  const struct config *cfg, const struct bus_handlers *h)
{
    b->ops = ops;
    b->h = *h;
    b->base = base;
    b->cfg = cfg;
    b->local_clients = 0;
    b->count_dirty = false;
    b->last_count = NULL;
    b->count_timer = evtimer_new(base, count_fire, b);
    /* b comes zeroed, so bus_base_free can undo a part. */
    if (!b->count_timer || announcer_init(&b->announcer, base, announcement_flush, b) < 0) {
        bus_base_free(b);
        return -1;
    }
    return 0;
}

void bus_deliver_room(struct bus *b, const char *room, size_t room_len, const struct msgid *id,
                      struct frame *f)
{
    metrics.bus_received++;
    b->h.room_frame(b->h.ctx, room, room_len, id, f);
}

void bus_deliver_broadcast(struct bus *b, struct frame *f)
{
    metrics.bus_received++;
    b->h.broadcast_frame(b->h.ctx, f);
}

void bus_note_count(struct bus *b, struct frame *f)
{
    if (!proto_is_client_count(f))
        return;
    frame_unref(b->last_count);
    b->last_count = frame_ref(f);
}

void bus_base_free(struct bus *b)
{
    frame_unref(b->last_count);
    b->last_count = NULL;
    announcer_free(&b->announcer);
    if (b->count_timer)
        event_free(b->count_timer);
    b->count_timer = NULL;
}

void bus_count_again(struct bus *b, unsigned ms)
{
    if (b->count_dirty)
        return;
    b->count_dirty = true;
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(b->count_timer, &tv);
}

void bus_clients_changed(struct bus *b, long local)
{
    b->local_clients = local;
    bus_count_again(b, BUS_COUNT_INTERVAL_MS);
}

struct bus *bus_new(struct event_base *base, const struct config *cfg, const struct bus_handlers *h)
{
    return cfg->redis_enabled ? bus_redis_new(base, cfg, h) : bus_local_new(base, cfg, h);
}

void bus_free(struct bus *b)
{
    if (b)
        b->ops->free(b);
}
