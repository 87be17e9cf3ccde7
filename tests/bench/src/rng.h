#ifndef CHATBENCH_RNG_H
#define CHATBENCH_RNG_H

#include <stdint.h>

/* xorshift64: mask keys, nonces and backoff jitter need to be spread, not
 * secret. *s must not be 0. */
static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

#endif
