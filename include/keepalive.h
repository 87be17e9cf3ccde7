/* keepalive: a timing wheel for per-connection deadlines (ping due, pong
 * overdue). Scheduling and cancelling are O(1) and a tick touches only the
 * entries that are due, so idle keepalive costs grow linearly with the
 * number of connections (libwebsockets' own timers keep one sorted list,
 * which is quadratic). */
#ifndef GATEWAY_KEEPALIVE_H
#define GATEWAY_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "list.h"

/* Zeroed (as its owner comes) it is not scheduled. */
struct ka_entry {
    struct list node; /* on its slot while scheduled */
    uint64_t due_tick;
};

typedef void (*ka_fire_fn)(struct ka_entry *e, void *ctx);

struct keepalive {
    struct list *slots; /* one list of entries per tick of a revolution */
    uint32_t nslots;
    uint32_t tick_ms;
    uint64_t tick; /* ticks done */
    ka_fire_fn fire;
    void *ctx;
};

/* max_delay_ms bounds what schedule accepts (longer delays are clamped). */
int keepalive_init(struct keepalive *k, uint32_t tick_ms, uint32_t max_delay_ms, ka_fire_fn fire,
                   void *ctx);
void keepalive_free(struct keepalive *k);
void keepalive_schedule(struct keepalive *k, struct ka_entry *e, uint32_t delay_ms);
void keepalive_cancel(struct ka_entry *e);
static inline bool keepalive_scheduled(const struct ka_entry *e)
{
    return e->node.next && list_linked(&e->node);
}
/* Advances one tick and fires what is due. fire may reschedule or cancel
 * any entry. Driven by a timer every tick_ms. */
void keepalive_tick(struct keepalive *k);

#endif
