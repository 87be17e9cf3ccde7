#include "sendq.h"

#include <stdlib.h>

void sendq_init(struct sendq *q)
{
    *q = (struct sendq){0};
}

static int grow(struct sendq *q)
{
    uint32_t ncap = q->cap ? q->cap * 2 : 4;
    if (ncap < q->cap)
        return -1;
    struct sendq_entry *n = malloc(sizeof(*n) * ncap);
    if (!n)
        return -1;
    for (uint32_t i = 0; i < q->count; i++)
        n[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = n;
    q->cap = ncap;
    q->head = 0;
    return 0;
}

int sendq_push(struct sendq *q, struct frame *f, bool binary)
{
    if (f->len > UINT32_MAX - q->bytes || (q->count == q->cap && grow(q) < 0))
        return -1;
    q->ring[(q->head + q->count) & (q->cap - 1)] =
        (struct sendq_entry){.frame = frame_ref(f), .binary = binary};
    q->count++;
    q->bytes += f->len;
    return 0;
}

const struct sendq_entry *sendq_peek(const struct sendq *q)
{
    return q->count ? &q->ring[q->head] : NULL;
}

void sendq_pop(struct sendq *q)
{
    if (!q->count)
        return;
    struct sendq_entry *e = &q->ring[q->head];
    q->bytes -= e->frame->len;
    frame_unref(e->frame);
    q->head = (q->head + 1) & (q->cap - 1);
    q->count--;
}

void sendq_shrink(struct sendq *q)
{
    if (!q->count) {
        free(q->ring);
        sendq_init(q);
    }
}

void sendq_clear(struct sendq *q)
{
    while (q->count) {
        struct sendq_entry *e = &q->ring[q->head];
        frame_unref(e->frame);
        q->head = (q->head + 1) & (q->cap - 1);
        q->count--;
    }
    free(q->ring);
    sendq_init(q);
}
