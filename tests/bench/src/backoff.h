#ifndef CHATBENCH_BACKOFF_H
#define CHATBENCH_BACKOFF_H

#include <math.h>
#include <stdint.h>

/* The browser client's reconnect delay (client/backoff.js): the ceiling
 * d = min(cap, base * 2^attempt) doubles per attempt (attempt 0 first),
 * and the delay is d/2 fixed plus a uniform random share of the other d/2,
 * so a gateway's clients do not all come back at the same instant.
 * random01 is uniform in [0, 1). */
static inline uint32_t backoff_delay_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms,
                                        double random01)
{
    double ceiling = ldexp((double)base_ms, attempt < 30 ? (int)attempt : 30);

    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return (uint32_t)lround(ceiling / 2 + random01 * (ceiling / 2));
}

#endif
