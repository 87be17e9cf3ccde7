/* ratelimit: a token bucket per connection. Each frame a client sends
 * takes a token; tokens come back at `rate` per second up to `burst`. A
 * client whose refused frames within one second outnumber `rate` is
 * flooding (it sends at more than twice the limit for a whole second). */
#ifndef GATEWAY_RATELIMIT_H
#define GATEWAY_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
    int64_t last_ms;         /* when tokens were last added */
    int64_t window_start_ms; /* the second in which refusals are counted */
    uint32_t tokens_milli;   /* tokens x 1000 */
    uint32_t refused;        /* refusals in the current window */
};

enum ratelimit_verdict { RATELIMIT_OK, RATELIMIT_REFUSED, RATELIMIT_FLOODING };

void ratelimit_init(struct ratelimit *r, int64_t now_ms, unsigned burst);
/* rate 0 turns the limit off (always OK). */
enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int64_t now_ms, unsigned rate,
                                      unsigned burst);

#endif
