#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "keepalive.h"

/* An entry with what the test wants to observe about it. */
struct conn {
    struct ka_entry ka; /* first: fire gets &ka */
    int fired;
    uint64_t fired_at;         /* the wheel's tick when it last fired */
    uint64_t expect_tick;      /* for the many-entries test */
    uint32_t reschedule_ms;    /* fire schedules it again after this, when set */
    struct conn *cancel_other; /* fire cancels this one, when set */
};

static struct keepalive wheel;
static int total_fired;
static int odd_fires; /* fire with a wrong ctx or a still-linked entry */

static void on_fire(struct ka_entry *e, void *ctx)
{
    struct conn *c = (struct conn *)e;
    odd_fires += ctx != &wheel || keepalive_scheduled(e);
    c->fired++;
    c->fired_at = wheel.tick;
    total_fired++;
    if (c->cancel_other)
        keepalive_cancel(&c->cancel_other->ka);
    if (c->reschedule_ms)
        keepalive_schedule(&wheel, &c->ka, c->reschedule_ms);
}

/* A wheel of 100 ms ticks for delays up to 1 s: 12 slots. */
static void setup(void)
{
    total_fired = odd_fires = 0;
    CHECK_INT(keepalive_init(&wheel, 100, 1000, on_fire, &wheel), ==, 0);
    CHECK_INT(wheel.nslots, ==, 12);
}

static void teardown(void)
{
    CHECK_INT(odd_fires, ==, 0);
    keepalive_free(&wheel);
}

static void ticks(int n)
{
    for (int i = 0; i < n; i++)
        keepalive_tick(&wheel);
}

static void test_fires_at_its_tick(void)
{
    setup();
    struct conn a = {0}, b = {0}, c = {0}, d = {0};
    keepalive_schedule(&wheel, &a.ka, 250); /* rounds up: 3 ticks */
    keepalive_schedule(&wheel, &b.ka, 300); /* exactly 3 ticks */
    keepalive_schedule(&wheel, &c.ka, 0);   /* at the next tick, not now */
    keepalive_schedule(&wheel, &d.ka, 1);
    CHECK(keepalive_scheduled(&a.ka));
    ticks(1);
    CHECK_INT(c.fired, ==, 1);
    CHECK_INT(d.fired, ==, 1);
    CHECK_INT(a.fired + b.fired, ==, 0);
    ticks(1);
    CHECK_INT(a.fired + b.fired, ==, 0);
    ticks(1);
    CHECK(a.fired == 1 && a.fired_at == 3);
    CHECK(b.fired == 1 && b.fired_at == 3);
    CHECK(!keepalive_scheduled(&a.ka)); /* fired entries are no longer scheduled */
    ticks(30);
    CHECK_INT(total_fired, ==, 4); /* once each */
    teardown();
}

static void test_cancel_and_reschedule(void)
{
    setup();
    struct conn a = {0}, b = {0}, idle = {0};
    keepalive_cancel(&idle.ka); /* never scheduled: harmless */
    keepalive_schedule(&wheel, &a.ka, 200);
    keepalive_cancel(&a.ka);
    keepalive_cancel(&a.ka); /* twice: harmless */
    keepalive_schedule(&wheel, &b.ka, 200);
    keepalive_schedule(&wheel, &b.ka, 500); /* moves, does not duplicate */
    ticks(4);
    CHECK_INT(b.fired, ==, 0);
    ticks(1);
    CHECK(b.fired == 1 && b.fired_at == 5);
    ticks(20);
    CHECK_INT(a.fired, ==, 0);
    CHECK_INT(total_fired, ==, 1);
    /* Rescheduling earlier than before works too. */
    keepalive_schedule(&wheel, &b.ka, 900);
    keepalive_schedule(&wheel, &b.ka, 100);
    ticks(1);
    CHECK_INT(b.fired, ==, 2);
    ticks(20);
    CHECK_INT(b.fired, ==, 2);
    teardown();
}

static void test_reschedule_inside_fire(void)
{
    setup();
    struct conn a = {.reschedule_ms = 200};
    struct conn full = {.reschedule_ms = 1000}; /* a whole revolution less one slot */
    keepalive_schedule(&wheel, &a.ka, 200);
    keepalive_schedule(&wheel, &full.ka, 1000);
    ticks(40);
    CHECK_INT(a.fired, ==, 20); /* ticks 2, 4, ..., 40 */
    CHECK_INT(a.fired_at, ==, 40);
    CHECK_INT(full.fired, ==, 4); /* ticks 10, 20, 30, 40 */
    CHECK_INT(full.fired_at, ==, 40);
    /* Still scheduled after all that; free detaches it. */
    CHECK(keepalive_scheduled(&a.ka));
    teardown();
    CHECK(!keepalive_scheduled(&a.ka) && !keepalive_scheduled(&full.ka));
}

static void test_cancel_inside_fire(void)
{
    setup();
    /* Two entries due on the same tick: whichever fires first cancels the
     * other, so exactly one fires. */
    struct conn a = {0}, b = {0};
    a.cancel_other = &b;
    b.cancel_other = &a;
    keepalive_schedule(&wheel, &a.ka, 300);
    keepalive_schedule(&wheel, &b.ka, 300);
    /* And one due later, cancelled by an earlier one. */
    struct conn later = {0}, killer = {.cancel_other = &later};
    keepalive_schedule(&wheel, &later.ka, 500);
    keepalive_schedule(&wheel, &killer.ka, 100);
    ticks(20);
    CHECK_INT(a.fired + b.fired, ==, 1);
    CHECK_INT(killer.fired, ==, 1);
    CHECK_INT(later.fired, ==, 0);
    teardown();
}

static void test_long_delays_clamped(void)
{
    setup();
    /* 12 slots: the longest delay the wheel holds is 11 ticks. */
    struct conn a = {0}, b = {0}, c = {0};
    keepalive_schedule(&wheel, &a.ka, 1000); /* the declared maximum: 10 ticks */
    keepalive_schedule(&wheel, &b.ka, 5000);
    keepalive_schedule(&wheel, &c.ka, UINT32_MAX);
    ticks(10);
    CHECK(a.fired == 1 && a.fired_at == 10);
    ticks(1);
    CHECK_INT(b.fired, ==, 1);
    CHECK_INT(b.fired_at, ==, 11);
    /* Longer delays are clamped, never wrapped round to a short one. */
    CHECK_INT(c.fired, ==, 1);
    CHECK_INT(c.fired_at, ==, 11);
    teardown();
}

static void test_many_entries(void)
{
    /* Many entries with assorted delays, scheduled while the wheel has
     * already turned many times, each fire exactly once at its tick. */
    enum { N = 20000 };
    setup();
    ticks(1000);
    struct conn *c = calloc(N, sizeof(*c));
    if (!CHECK(c != NULL))
        return;
    uint32_t rng = 99;
    for (int i = 0; i < N; i++) {
        rng = rng * 1664525u + 1013904223u;
        uint32_t delay = (rng >> 8) % 1101; /* 0 .. 1100 ms, past the max */
        uint64_t t = (delay + 99) / 100;
        t = t < 1 ? 1 : t > 11 ? 11 : t;
        c[i].expect_tick = wheel.tick + t;
        keepalive_schedule(&wheel, &c[i].ka, delay);
        /* Schedule a few twice so the second one counts. */
        if (i % 7 == 0) {
            keepalive_schedule(&wheel, &c[i].ka, 100);
            c[i].expect_tick = wheel.tick + 1;
        }
    }
    /* Cancel every tenth. */
    for (int i = 0; i < N; i += 10)
        keepalive_cancel(&c[i].ka);
    ticks(30);
    int wrong = 0, expected = 0;
    for (int i = 0; i < N; i++) {
        bool cancelled = i % 10 == 0;
        expected += !cancelled;
        if (cancelled ? c[i].fired != 0 : c[i].fired != 1 || c[i].fired_at != c[i].expect_tick)
            wrong++;
    }
    CHECK_INT(wrong, ==, 0);
    CHECK_INT(total_fired, ==, expected);
    teardown();
    free(c);
}

static void test_free_detaches(void)
{
    setup();
    struct conn a = {0}, b = {0};
    keepalive_schedule(&wheel, &a.ka, 100);
    keepalive_schedule(&wheel, &b.ka, 700);
    teardown();
    CHECK(!keepalive_scheduled(&a.ka) && !keepalive_scheduled(&b.ka));
    keepalive_cancel(&a.ka); /* still safe on a detached entry */
    CHECK(wheel.slots == NULL);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_fires_at_its_tick);
    RUN(test_cancel_and_reschedule);
    RUN(test_reschedule_inside_fire);
    RUN(test_cancel_inside_fire);
    RUN(test_long_delays_clamped);
    RUN(test_many_entries);
    RUN(test_free_detaches);
    return CHECK_DONE("test_keepalive");
}
