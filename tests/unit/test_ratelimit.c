#include <stdint.h>

#include "check.h"
#include "ratelimit.h"

/* The defaults' shape, small: 20 a second (a token every 50 ms), a burst
 * of 5, 3 frames of grace. */
static const struct ratelimit_limits lim = {20, 5, 3};

static enum ratelimit_verdict take(struct ratelimit *r, int64_t now, uint32_t *retry)
{
    *retry = 0;
    return ratelimit_take(r, now, &lim, retry);
}

static void test_burst_then_rate(void)
{
    struct ratelimit r;
    uint32_t retry;
    ratelimit_init(&r, 1000, lim.burst);
    for (int i = 0; i < 5; i++)
        CHECK_INT(take(&r, 1000, &retry), ==, RATELIMIT_OK);
    CHECK_INT(take(&r, 1000, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(retry, ==, 50);
    /* 20 ms later, 400 milli-tokens are back: 30 ms to go. */
    CHECK_INT(take(&r, 1020, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(retry, ==, 30);
    CHECK_INT(take(&r, 1050, &retry), ==, RATELIMIT_OK);
    /* Tokens come back up to the burst, no further. */
    for (int i = 0; i < 5; i++)
        CHECK_INT(take(&r, 10000, &retry), ==, RATELIMIT_OK);
    CHECK_INT(take(&r, 10000, &retry), ==, RATELIMIT_REFUSED);
}

static void test_retry_after_rounds_up_to_a_token(void)
{
    const struct ratelimit_limits odd = {3, 1, 3}; /* a token every 333.3 ms */
    struct ratelimit r;
    uint32_t retry = 0;
    ratelimit_init(&r, 0, odd.burst);
    CHECK_INT(ratelimit_take(&r, 0, &odd, &retry), ==, RATELIMIT_OK);
    CHECK_INT(ratelimit_take(&r, 0, &odd, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(retry, ==, 334);
    CHECK_INT(ratelimit_take(&r, 333, &odd, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(retry, ==, 1); /* never 0, even with one milli-token missing */
    CHECK_INT(ratelimit_take(&r, 334, &odd, &retry), ==, RATELIMIT_OK);
    /* A fast rate: less than a millisecond per token still says 1. */
    const struct ratelimit_limits fast = {5000, 1, 3};
    ratelimit_init(&r, 0, fast.burst);
    CHECK_INT(ratelimit_take(&r, 0, &fast, &retry), ==, RATELIMIT_OK);
    CHECK_INT(ratelimit_take(&r, 0, &fast, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(retry, ==, 1);
}

/* A client that always waits what it was told is never flooding, however
 * many frames it sends each time (each a pipeline of 20, of which one or
 * none gets through). */
static void test_waiting_client_is_never_flooding(void)
{
    const struct ratelimit_limits l = {20, 5, 30};
    struct ratelimit r;
    ratelimit_init(&r, 0, l.burst);
    int64_t now = 0;
    unsigned ok = 0;
    for (int round = 0; round < 500; round++) {
        uint32_t told = 0;
        for (int i = 0; i < 20; i++) {
            uint32_t retry = 0;
            enum ratelimit_verdict v = ratelimit_take(&r, now, &l, &retry);
            if (!CHECK_INT(v, !=, RATELIMIT_FLOODING))
                return;
            ok += v == RATELIMIT_OK;
            if (v == RATELIMIT_REFUSED)
                told = retry;
        }
        now += told ? told : 1;
    }
    CHECK_INT(ok, >=, 500);
}

/* Spends the burst at 0, then the refusal that opens a window and as many
 * frames as the grace allows in flight, at `at`. */
static void refused_up_to_the_grace(struct ratelimit *r, int64_t at)
{
    uint32_t retry;
    ratelimit_init(r, 0, lim.burst);
    for (unsigned i = 0; i < lim.burst; i++)
        take(r, 0, &retry);
    CHECK_INT(take(r, 0, &retry), ==, RATELIMIT_REFUSED);
    for (unsigned i = 0; i < lim.grace; i++)
        CHECK_INT(take(r, at, &retry), ==, RATELIMIT_REFUSED);
}

static void test_sending_while_refused_is_flooding(void)
{
    struct ratelimit r;
    uint32_t retry;
    refused_up_to_the_grace(&r, 10);
    CHECK_INT(take(&r, 20, &retry), ==, RATELIMIT_FLOODING);
    CHECK_INT(retry, ==, 30);
}

/* A frame after the told time is never a violation, even when refused
 * again: it opens a new window with a new count. */
static void test_waiting_opens_a_new_window(void)
{
    struct ratelimit r;
    uint32_t retry;
    refused_up_to_the_grace(&r, 1);
    /* At the told time a token is back; the frame right after it finds
     * none and is refused, but opens a fresh window. */
    CHECK_INT(take(&r, 50, &retry), ==, RATELIMIT_OK);
    CHECK_INT(take(&r, 50, &retry), ==, RATELIMIT_REFUSED);
    for (unsigned i = 0; i < lim.grace; i++)
        CHECK_INT(take(&r, 51, &retry), ==, RATELIMIT_REFUSED);
    CHECK_INT(take(&r, 52, &retry), ==, RATELIMIT_FLOODING);
}

static void test_rate_zero_is_off(void)
{
    const struct ratelimit_limits off = {0, 0, 0};
    struct ratelimit r;
    uint32_t retry = 0;
    ratelimit_init(&r, 0, 0);
    for (int i = 0; i < 10000; i++)
        CHECK_INT(ratelimit_take(&r, 0, &off, &retry), ==, RATELIMIT_OK);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_burst_then_rate);
    RUN(test_retry_after_rounds_up_to_a_token);
    RUN(test_waiting_client_is_never_flooding);
    RUN(test_sending_while_refused_is_flooding);
    RUN(test_waiting_opens_a_new_window);
    RUN(test_rate_zero_is_off);
    return CHECK_DONE("test_ratelimit");
}
