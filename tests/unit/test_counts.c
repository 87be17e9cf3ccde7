/* The client_count coalescing (counts.c), on a real libevent base with a
 * fake bus whose publish_count records what it was given and when.
 * Connects and disconnects in a storm must cost at most one client_count
 * publish per BUS_COUNT_INTERVAL_MS, and the last one carries the newest
 * count. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "counts.h"

#define PUBLISHES_MAX 16

struct fake_bus {
    struct bus base; /* first: the ops get &base */
    int n;
    long value[PUBLISHES_MAX];
    int64_t at_ms[PUBLISHES_MAX]; /* since the test's start */
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t start_ms;

static void fake_publish_count(struct bus *b, long local)
{
    struct fake_bus *fb = (struct fake_bus *)b;
    if (!CHECK_INT(fb->n, <, PUBLISHES_MAX))
        return;
    fb->value[fb->n] = local;
    fb->at_ms[fb->n] = mono_ms() - start_ms;
    fb->n++;
}

/* Only what the coalescing calls: any other op would crash the test. */
static const struct bus_ops fake_ops = {.publish_count = fake_publish_count};

/* Each case's counts, bus and loop, made by setup and undone by teardown. */
static struct fake_bus f;
static struct counts counts;
static struct event_base *base;

static bool setup(void)
{
    memset(&f, 0, sizeof(f));
    f.base.ops = &fake_ops;
    base = event_base_new();
    start_ms = mono_ms();
    return CHECK(base != NULL) && CHECK_INT(counts_init(&counts, base, &f.base), ==, 0);
}

static void teardown(void)
{
    counts_free(&counts);
    event_base_free(base);
}

static void run_for(unsigned ms)
{
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static void test_burst_is_one_publish(void)
{
    if (!setup())
        return;
    for (long n = 1; n <= 50; n++)
        counts_changed(&counts, n);
    counts_changed(&counts, 42); /* a disconnect: the newest wins */
    CHECK_INT(f.n, ==, 0);       /* nothing at once */
    run_for(BUS_COUNT_INTERVAL_MS + 500);
    if (CHECK_INT(f.n, ==, 1)) {
        CHECK_INT(f.value[0], ==, 42);
        CHECK_INT(f.at_ms[0], >=, BUS_COUNT_INTERVAL_MS - 10);
        CHECK_INT(f.at_ms[0], <, BUS_COUNT_INTERVAL_MS + 400);
    }
    teardown();
}

struct churn {
    struct event *ev;
    long clients;
    int64_t until_ms;
};

static void churn_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct churn *c = arg;
    if (mono_ms() - start_ms >= c->until_ms) {
        event_del(c->ev);
        return;
    }
    counts_changed(&counts, ++c->clients);
}

static void test_steady_churn_at_most_once_per_interval(void)
{
    if (!setup())
        return;
    /* A change every 20 ms for 1.5 intervals, then quiet for 1.7. */
    struct churn c = {NULL, 0, BUS_COUNT_INTERVAL_MS * 3 / 2};
    c.ev = event_new(base, -1, EV_PERSIST, churn_tick, &c);
    const struct timeval every = {0, 20 * 1000};
    if (!CHECK(c.ev != NULL) || !CHECK_INT(event_add(c.ev, &every), ==, 0))
        return;
    run_for(BUS_COUNT_INTERVAL_MS * 16 / 5);
    event_free(c.ev);
    /* One publish an interval after the first change, one an interval
     * after the first change that followed it, then none. */
    if (CHECK_INT(f.n, ==, 2)) {
        CHECK_INT(f.at_ms[1] - f.at_ms[0], >=, BUS_COUNT_INTERVAL_MS - 10);
        CHECK_INT(f.value[0], <, f.value[1]);
        CHECK_INT(f.value[1], ==, c.clients); /* the count after the churn */
    }
    teardown();
}

static void test_free_with_a_publish_due(void)
{
    if (!setup())
        return;
    counts_changed(&counts, 3);
    teardown(); /* the timer goes with the counts: nothing fires later */
    CHECK_INT(f.n, ==, 0);
}

static struct frame *text_frame(const char *s)
{
    return frame_copy(s, strlen(s));
}

static void test_last_count_kept_for_newcomers(void)
{
    if (!setup())
        return;
    CHECK(counts_last(&counts) == NULL);
    struct frame *one = proto_client_count(1, 10);
    struct frame *chat = text_frame("{\"type\":\"chat\",\"content\":\"client_count\"}");
    struct frame *two = proto_client_count(2, 20);
    counts_seen(&counts, one);
    CHECK(counts_last(&counts) == one);
    counts_seen(&counts, chat);
    CHECK(counts_last(&counts) == one);
    counts_seen(&counts, two);
    CHECK(counts_last(&counts) == two);
    frame_unref(one);
    frame_unref(chat);
    frame_unref(two); /* the counts keep their own reference until freed */
    teardown();
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_burst_is_one_publish);
    RUN(test_steady_churn_at_most_once_per_interval);
    RUN(test_free_with_a_publish_due);
    RUN(test_last_count_kept_for_newcomers);
    return CHECK_DONE("test_counts");
}
