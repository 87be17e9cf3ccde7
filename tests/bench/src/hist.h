#ifndef CHATBENCH_HIST_H
#define CHATBENCH_HIST_H

#include <stdint.h>

/* Log-linear histogram of microsecond values: exact below 128 µs, then 64
 * buckets per power of two (under 1.6% error), up to 2^40 µs. Fixed size,
 * so it lives in shared memory and merges by adding buckets. */

#define HIST_SUB 64
#define HIST_EXACT 128
#define HIST_MAX_BIT 40
#define HIST_BUCKETS (HIST_EXACT + (HIST_MAX_BIT - 7) * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t sum;
    uint64_t max;
    uint64_t b[HIST_BUCKETS];
};

void hist_add(struct hist *h, uint64_t v);
void hist_merge(struct hist *into, const struct hist *from);

/* The value at quantile q (0..1): the upper edge of its bucket, capped at
 * the largest value seen. 0 when empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
