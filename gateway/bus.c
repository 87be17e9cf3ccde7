#include "bus.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"

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
    /* b comes zeroed, so bus_base_free can undo a part. */
    if (announcer_init(&b->announcer, base, announcement_flush, b) < 0) {
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
    /* Checked here, the one door of broadcast frames: no client sees one. */
    if (proto_is_control(f))
        b->h.control(b->h.ctx, f);
    else
        b->h.broadcast_frame(b->h.ctx, f);
}

void bus_base_free(struct bus *b)
{
    announcer_free(&b->announcer);
}

struct bus *bus_new(struct event_base *base, const struct config *cfg, const struct bus_handlers *h)
{
    return cfg->redis_enabled ? bus_redis_new(base, cfg, h) : bus_local_new(base, cfg, h);
}

void bus_target(struct bus *b, const char **mode, char *primary, size_t len, bool *tls)
{
    *mode = "none";
    *tls = false;
    if (len)
        primary[0] = '\0';
    if (b->ops->target)
        b->ops->target(b, mode, primary, len, tls);
}

void bus_free(struct bus *b)
{
    if (b)
        b->ops->free(b);
}
