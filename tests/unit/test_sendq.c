#include <stdio.h>
#include <string.h>

#include "check.h"
#include "sendq.h"

/* A frame whose payload is its number, so order is visible. */
static struct frame *numbered(int n)
{
    char buf[16];
    int len = snprintf(buf, sizeof(buf), "%d", n);
    return frame_copy(buf, (size_t)len);
}

static int number_of(const struct sendq_entry *e)
{
    int n = -1;
    return e && sscanf((const char *)frame_data(e->frame), "%d", &n) == 1 ? n : -1;
}

static void test_empty(void)
{
    struct sendq q;
    sendq_init(&q);
    CHECK(sendq_peek(&q) == NULL);
    sendq_pop(&q); /* harmless */
    CHECK_INT(q.count, ==, 0);
    CHECK_INT(q.bytes, ==, 0);
    sendq_shrink(&q);
    sendq_clear(&q);
    CHECK(q.ring == NULL);
}

static void test_push_peek_pop(void)
{
    struct sendq q;
    sendq_init(&q);
    struct frame *a = frame_copy("hello", 5);
    struct frame *b = frame_copy("binary!", 7);
    CHECK_INT(sendq_push(&q, a, false), ==, 0);
    CHECK_INT(sendq_push(&q, b, true), ==, 0);
    CHECK_INT(sendq_push(&q, a, false), ==, 0); /* the same frame twice */
    CHECK_INT(q.count, ==, 3);
    CHECK_INT(q.bytes, ==, 17);
    CHECK_INT(a->refs, ==, 3);
    CHECK_INT(b->refs, ==, 2);

    const struct sendq_entry *e = sendq_peek(&q);
    CHECK(e && e->frame == a && !e->binary);
    CHECK(sendq_peek(&q) == e); /* peeking takes nothing */
    sendq_pop(&q);
    CHECK_INT(a->refs, ==, 2);
    CHECK_INT(q.bytes, ==, 12);
    e = sendq_peek(&q);
    CHECK(e && e->frame == b && e->binary);
    sendq_pop(&q);
    CHECK_INT(b->refs, ==, 1);
    e = sendq_peek(&q);
    CHECK(e && e->frame == a && !e->binary);
    sendq_pop(&q);
    CHECK_INT(a->refs, ==, 1);
    CHECK_INT(q.bytes, ==, 0);
    CHECK(sendq_peek(&q) == NULL);
    sendq_clear(&q);
    frame_unref(a);
    frame_unref(b);
}

static void test_growth_keeps_order(void)
{
    enum { N = 1000 };
    struct sendq q;
    sendq_init(&q);
    size_t bytes = 0;
    int failed = 0;
    for (int i = 0; i < N; i++) {
        struct frame *f = numbered(i);
        bytes += f->len;
        failed += sendq_push(&q, f, i % 2) != 0;
        frame_unref(f); /* the queue holds the only reference now */
    }
    CHECK_INT(failed, ==, 0);
    CHECK_INT(q.count, ==, N);
    CHECK_INT(q.bytes, ==, bytes);
    CHECK((q.cap & (q.cap - 1)) == 0 && q.cap >= N);
    int out_of_order = 0;
    for (int i = 0; i < N; i++) {
        const struct sendq_entry *e = sendq_peek(&q);
        out_of_order += number_of(e) != i || e->binary != (i % 2);
        sendq_pop(&q);
    }
    CHECK_INT(out_of_order, ==, 0);
    CHECK_INT(q.bytes, ==, 0);
    sendq_clear(&q);
}

/* Pushes and pops so the ring wraps, then grows it while wrapped. */
static void test_wraparound(void)
{
    struct sendq q;
    sendq_init(&q);
    int next_in = 0, next_out = 0, wrong = 0;
    for (int i = 0; i < 3; i++) {
        struct frame *f = numbered(next_in++);
        sendq_push(&q, f, false);
        frame_unref(f);
    }
    uint32_t cap = q.cap;
    CHECK_INT(cap, ==, 4);
    for (int round = 0; round < 50; round++) {
        struct frame *f = numbered(next_in++);
        sendq_push(&q, f, false);
        frame_unref(f);
        wrong += number_of(sendq_peek(&q)) != next_out++;
        sendq_pop(&q);
    }
    CHECK_INT(q.cap, ==, cap); /* a steady flow does not grow the ring */
    CHECK(q.head != 0);
    /* Grow while head is mid-ring: the copy must unwrap in order. */
    for (int i = 0; i < 6; i++) {
        struct frame *f = numbered(next_in++);
        sendq_push(&q, f, false);
        frame_unref(f);
    }
    CHECK_INT(q.cap, ==, 16);
    while (sendq_peek(&q)) {
        wrong += number_of(sendq_peek(&q)) != next_out++;
        sendq_pop(&q);
    }
    CHECK_INT(wrong, ==, 0);
    CHECK_INT(next_out, ==, next_in);
    sendq_clear(&q);
}

static void test_shrink(void)
{
    struct sendq q;
    sendq_init(&q);
    struct frame *f = frame_copy("x", 1);
    sendq_push(&q, f, false);
    sendq_shrink(&q); /* not empty: nothing happens */
    CHECK(q.ring != NULL);
    CHECK_INT(q.count, ==, 1);
    CHECK(sendq_peek(&q) && sendq_peek(&q)->frame == f);
    sendq_pop(&q);
    CHECK(q.ring != NULL); /* pop keeps the ring for the next frame */
    sendq_shrink(&q);
    CHECK(q.ring == NULL);
    CHECK_INT(q.cap, ==, 0);
    CHECK_INT(q.bytes, ==, 0);
    /* Usable again after shrinking. */
    CHECK_INT(sendq_push(&q, f, true), ==, 0);
    CHECK(sendq_peek(&q) && sendq_peek(&q)->binary);
    CHECK_INT(f->refs, ==, 2);
    sendq_clear(&q);
    CHECK_INT(f->refs, ==, 1);
    frame_unref(f);
}

static void test_clear_drops_references(void)
{
    struct sendq q;
    sendq_init(&q);
    struct frame *f[5];
    for (int i = 0; i < 5; i++)
        f[i] = numbered(i);
    /* Wrap first so clear walks a ring whose head is not slot 0. */
    for (int i = 0; i < 3; i++)
        sendq_push(&q, f[0], false);
    sendq_pop(&q);
    sendq_pop(&q);
    for (int i = 1; i < 5; i++)
        sendq_push(&q, f[i], false);
    sendq_push(&q, f[4], false);
    CHECK_INT(f[0]->refs, ==, 2);
    CHECK_INT(f[4]->refs, ==, 3);
    sendq_clear(&q);
    CHECK(q.ring == NULL && q.count == 0 && q.bytes == 0 && q.cap == 0);
    int held = 0;
    for (int i = 0; i < 5; i++) {
        held += f[i]->refs != 1;
        frame_unref(f[i]);
    }
    CHECK_INT(held, ==, 0);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_empty);
    RUN(test_push_peek_pop);
    RUN(test_growth_keeps_order);
    RUN(test_wraparound);
    RUN(test_shrink);
    RUN(test_clear_drops_references);
    return CHECK_DONE("test_sendq");
}
