#include "counts.h"

#include <string.h>

#include <event2/event.h>

#include "proto.h"

static void fire(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct counts *c = arg;
    c->bus->ops->publish_count(c->bus, c->local);
}

int counts_init(struct counts *c, struct event_base *base, struct bus *bus)
{
    memset(c, 0, sizeof(*c));
    c->bus = bus;
    c->timer = evtimer_new(base, fire, c);
    return c->timer ? 0 : -1;
}

void counts_free(struct counts *c)
{
    if (c->timer)
        event_free(c->timer);
    c->timer = NULL;
    frame_unref(c->last);
    c->last = NULL;
}

void counts_changed(struct counts *c, long local)
{
    c->local = local;
    /* Already due: it takes the newest count when it fires. */
    if (evtimer_pending(c->timer, NULL))
        return;
    const struct timeval tv = {BUS_COUNT_INTERVAL_MS / 1000,
                               (suseconds_t)(BUS_COUNT_INTERVAL_MS % 1000) * 1000};
    evtimer_add(c->timer, &tv);
}

void counts_seen(struct counts *c, struct frame *f)
{
    if (!proto_is_client_count(f))
        return;
    frame_unref(c->last);
    c->last = frame_ref(f);
}
