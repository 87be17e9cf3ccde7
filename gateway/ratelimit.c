#include "ratelimit.h"

void ratelimit_init(struct ratelimit *r, int64_t now_ms, unsigned burst)
{
    r->last_ms = r->window_start_ms = now_ms;
    r->tokens_milli = burst * 1000u;
    r->refused = 0;
}

enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int64_t now_ms, unsigned rate,
                                      unsigned burst)
{
    if (rate == 0)
        return RATELIMIT_OK;
    if (now_ms > r->last_ms) {
        uint64_t add = (uint64_t)(now_ms - r->last_ms) * rate; /* milli-tokens */
        uint64_t cap = (uint64_t)burst * 1000u;
        uint64_t t = r->tokens_milli + add;
        r->tokens_milli = (uint32_t)(t > cap ? cap : t);
        r->last_ms = now_ms;
    }
    if (r->tokens_milli >= 1000) {
        r->tokens_milli -= 1000;
        return RATELIMIT_OK;
    }
    if (now_ms - r->window_start_ms >= 1000) {
        r->window_start_ms = now_ms;
        r->refused = 0;
    }
    return ++r->refused > rate ? RATELIMIT_FLOODING : RATELIMIT_REFUSED;
}
