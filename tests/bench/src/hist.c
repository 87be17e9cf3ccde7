#include "hist.h"

static unsigned bucket_of(uint64_t v)
{
    unsigned msb, shift;

    if (v < HIST_EXACT)
        return (unsigned)v;
    if (v >> HIST_MAX_BIT)
        return HIST_BUCKETS - 1;
    msb = 63u - (unsigned)__builtin_clzll(v);
    shift = msb - 6;
    return HIST_EXACT + (msb - 7) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

static uint64_t bucket_top(unsigned i)
{
    unsigned k, shift;

    if (i < HIST_EXACT)
        return i;
    k = i - HIST_EXACT;
    shift = 1 + k / HIST_SUB;
    return (((uint64_t)(HIST_SUB + k % HIST_SUB) + 1) << shift) - 1;
}

void hist_add(struct hist *h, uint64_t v)
{
    h->b[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
}

void hist_merge(struct hist *into, const struct hist *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        into->b[i] += from->b[i];
    into->count += from->count;
    into->sum += from->sum;
    if (from->max > into->max)
        into->max = from->max;
}

uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t want, seen = 0;

    if (h->count == 0)
        return 0;
    want = (uint64_t)(q * (double)h->count + 0.999999);
    if (want < 1)
        want = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= want) {
            uint64_t top = bucket_top(i);

            return top < h->max ? top : h->max;
        }
    }
    return h->max;
}
