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
        k->slots[i].prev = k->slots[i].next = &k->slots[i];
    k->tick = 0;
    k->fire = fire;
    k->ctx = ctx;
    return 0;
}

void keepalive_free(struct keepalive *k)
{
    /* Entries belong to their connections; just detach them. */
    for (uint32_t i = 0; k->slots && i < k->nslots; i++)
        while (k->slots[i].next != &k->slots[i])
            keepalive_cancel(k->slots[i].next);
    free(k->slots);
    k->slots = NULL;
}

void keepalive_cancel(struct ka_entry *e)
{
    if (!e->prev)
        return;
    e->prev->next = e->next;
    e->next->prev = e->prev;
    e->prev = e->next = NULL;
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
    struct ka_entry *head = &k->slots[e->due_tick % k->nslots];
    e->prev = head->prev;
    e->next = head;
    head->prev->next = e;
    head->prev = e;
}

void keepalive_tick(struct keepalive *k)
{
    k->tick++;
    struct ka_entry *head = &k->slots[k->tick % k->nslots];
    /* Detach the slot first: fire() may schedule back into this very slot
     * (a full revolution later) and must not be seen again this tick. */
    if (head->next == head)
        return;
    struct ka_entry due = {.prev = head->prev, .next = head->next};
    due.prev->next = &due;
    due.next->prev = &due;
    head->prev = head->next = head;
    while (due.next != &due) {
        struct ka_entry *e = due.next;
        keepalive_cancel(e);
        k->fire(e, k->ctx);
    }
}
