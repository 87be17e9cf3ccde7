#include "keepalive.h"

#include <stdlib.h>

int keepalive_init(struct keepalive *k, uint32_t tick_ms, uint32_t max_delay_ms, ka_fire_fn fire,
                   void *ctx)
{
    k->tick_ms = tick_ms ? tick_ms : 1;
    k->nslots = max_delay_ms / k->tick_ms + 2;
    k->slots = malloc(sizeof(*k->slots) * k->nslots);
    if (!k->slots)
        return -1;
    for (uint32_t i = 0; i < k->nslots; i++)
        list_init(&k->slots[i]);
    k->tick = 0;
    k->fire = fire;
    k->ctx = ctx;
    return 0;
}

void keepalive_free(struct keepalive *k)
{
    /* Entries belong to their connections; just detach them. */
    for (uint32_t i = 0; k->slots && i < k->nslots; i++)
        while (!list_empty(&k->slots[i]))
            keepalive_cancel(list_entry(k->slots[i].next, struct ka_entry, node));
    free(k->slots);
    k->slots = NULL;
}

void keepalive_cancel(struct ka_entry *e)
{
    if (e->node.next) /* NULL: zeroed, never scheduled */
        list_remove(&e->node);
}

void keepalive_schedule(struct keepalive *k, struct ka_entry *e, uint32_t delay_ms)
{
    keepalive_cancel(e);
    uint64_t ticks = ((uint64_t)delay_ms + k->tick_ms - 1) / k->tick_ms;
    if (ticks == 0)
        ticks = 1;
    if (ticks > k->nslots - 1)
        ticks = k->nslots - 1;
    e->due_tick = k->tick + ticks;
    list_insert_tail(&k->slots[e->due_tick % k->nslots], &e->node);
}

void keepalive_tick(struct keepalive *k)
{
    k->tick++;
    struct list *slot = &k->slots[k->tick % k->nslots];
    /* Move the slot's entries to a list of their own first: fire() may
     * schedule back into this very slot (a full revolution later), and
     * what it puts there must not be seen again this tick. */
    struct list due;
    list_move_all(slot, &due);
    while (!list_empty(&due)) {
        struct ka_entry *e = list_entry(due.next, struct ka_entry, node);
        list_remove(&e->node);
        k->fire(e, k->ctx);
    }
}
