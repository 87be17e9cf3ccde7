/* ratelimit: a token bucket per connection. Each frame a client sends
 * takes a token; tokens come back at `rate` per second up to `burst`. A
 * refused frame is told when a token is back (retry_after_ms). A client
 * that waits that long is never flooding, however much it sends. Frames
 * that arrive before the time last told are violations: up to `grace` of
 * them per refusal window are frames the client had in flight when the
 * first refusal reached it; one more is flooding. The window ends when a
 * frame arrives after the told time (the client waited). */
#ifndef GATEWAY_RATELIMIT_H
#define GATEWAY_RATELIMIT_H

#include <stdint.h>

struct ratelimit {
    int64_t last_ms;       /* when tokens were last added */
    int64_t told_ms;       /* the time last told to the client, 0: none */
    uint32_t tokens_milli; /* tokens x 1000 */
    uint32_t violations;   /* frames before told_ms in the current window */
};

struct ratelimit_limits {
    unsigned rate;  /* tokens per second, 0: no limit */
    unsigned burst; /* at least 1 with a rate */
    unsigned grace; /* violations per window before flooding */
};

enum ratelimit_verdict { RATELIMIT_OK, RATELIMIT_REFUSED, RATELIMIT_FLOODING };

void ratelimit_init(struct ratelimit *r, int64_t now_ms, unsigned burst);
/* Takes a token for a frame that arrived at now_ms. When refused (or
 * flooding), *retry_after_ms is the time until a token is back, at least 1. */
enum ratelimit_verdict ratelimit_take(struct ratelimit *r, int64_t now_ms,
                                      const struct ratelimit_limits *lim, uint32_t *retry_after_ms);

#endif
