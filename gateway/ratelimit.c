#include "ratelimit.h"

void ratelimit_init(struct ratelimit *r, int64_t now_ms, unsigned burst)
{
    r->last_ms = now_ms;
    r->told_ms = 0;
    r->tokens_milli = burst * 1000u;
    r->violations = 0;
}

enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int64_t now_ms,
                                      const struct ratelimit_limits *lim, uint32_t *retry_after_ms)
{
    if (lim->rate == 0)
        return RATELIMIT_OK;
    if (now_ms > r->last_ms) {
        uint64_t add = (uint64_t)(now_ms - r->last_ms) * lim->rate; /* milli-tokens */
        uint64_t cap = (uint64_t)lim->burst * 1000u;
        uint64_t t = r->tokens_milli + add;
        r->tokens_milli = (uint32_t)(t > cap ? cap : t);
        r->last_ms = now_ms;
    }
    if (r->tokens_milli >= 1000) {
        r->tokens_milli -= 1000;
        return RATELIMIT_OK;
    }
    /* Rounded up, so that a client that waits exactly this long finds a
     * token; at least 1, since at least one milli-token is missing. */
    *retry_after_ms = (1000 - r->tokens_milli + lim->rate - 1) / lim->rate;
    if (now_ms >= r->told_ms) {
        /* Nothing told is pending: the client waited (or was never told),
         * so this refusal opens a new window. */
        r->violations = 0;
    } else if (++r->violations > lim->grace) {
        return RATELIMIT_FLOODING;
    }
    r->told_ms = now_ms + *retry_after_ms;
    return RATELIMIT_REFUSED;
}
