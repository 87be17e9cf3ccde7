/* announce: the words of coalesced announcements, and their timing on a
 * real libevent loop (the first event of a quiet scope goes at once, the
 * rest of its interval together when the interval ends). */
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "announce.h"
#include "check.h"

#define LOG_MAX 2048

static char flushed[LOG_MAX];
static struct event_base *base;
static struct announcer ann;

/* Content of each frame of a batch, as the bus would publish them. */
static void record(void *ctx, const char *room, size_t room_len, const struct announce_batch *b)
{
    (void)ctx;
    struct frame *f[2];
    size_t n = announce_frames(room, room_len, b, 1, f);
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_loadb((const char *)frame_data(f[i]), f[i]->len, 0, NULL);
        size_t used = strlen(flushed);
        snprintf(flushed + used, LOG_MAX - used, "[%s%s%s|%s|%lld]",
                 room ? json_string_value(json_object_get(o, "room")) : "", room ? ": " : "",
                 json_string_value(json_object_get(o, "content")),
                 json_string_value(json_object_get(o, "event")),
                 (long long)json_integer_value(json_object_get(o, "count")));
        json_decref(o);
        frame_unref(f[i]);
    }
}

static const char *take(void)
{
    static char copy[LOG_MAX];
    memcpy(copy, flushed, LOG_MAX);
    flushed[0] = '\0';
    return copy;
}

static void setup(void)
{
    base = event_base_new();
    flushed[0] = '\0';
    CHECK_INT(announcer_init(&ann, base, record, NULL), ==, 0);
}

static void teardown(void)
{
    announcer_free(&ann);
    event_base_free(base);
}

/* Runs the loop until the announcer's tick has passed an interval's end. */
static void wait_interval(void)
{
    struct timeval tv = {0, (ANNOUNCE_INTERVAL_MS + ANNOUNCE_INTERVAL_MS / 2) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static const char *text_of(const char *const *names, unsigned long count)
{
    struct announce_batch b;
    memset(&b, 0, sizeof(b));
    for (size_t i = 0; names[i]; i++)
        announce_tally_add(&b.arrived, names[i], strlen(names[i]));
    b.arrived.count = count;
    flushed[0] = '\0';
    record(NULL, NULL, 0, &b);
    return take();
}

static void test_words(void)
{
    CHECK_STR(text_of((const char *[]){"alice", NULL}, 1), "[alice connected|connected|1]");
    CHECK_STR(text_of((const char *[]){"alice", "bob", NULL}, 2),
              "[alice and bob connected|connected|2]");
    CHECK_STR(text_of((const char *[]){"a", "b", "c", NULL}, 3),
              "[a, b and c connected|connected|3]");
    CHECK_STR(text_of((const char *[]){"a", "b", "c", "d", NULL}, 4),
              "[a, b, c and 1 other connected|connected|4]");
    CHECK_STR(text_of((const char *[]){"a", "b", "c", NULL}, 40),
              "[a, b, c and 37 others connected|connected|40]");
    /* The same name twice is one name and two events. */
    CHECK_STR(text_of((const char *[]){"a", "a", NULL}, 2),
              "[a and 1 other connected|connected|2]");
    CHECK_STR(text_of((const char *[]){"日本語", NULL}, 1), "[日本語 connected|connected|1]");
}

static void test_first_goes_at_once_then_coalesced(void)
{
    setup();
    announcer_add(&ann, "r", 1, ANNOUNCE_ARRIVED, "alice");
    CHECK_STR(take(), "[r: alice joined the room|joined|1]");
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof(name), "u%d", i);
        announcer_add(&ann, "r", 1, ANNOUNCE_ARRIVED, name);
    }
    announcer_add(&ann, "r", 1, ANNOUNCE_DEPARTED, "alice");
    announcer_add(&ann, NULL, 0, ANNOUNCE_ARRIVED, "zed"); /* another scope: at once */
    CHECK_STR(take(), "[zed connected|connected|1]");
    wait_interval();
    CHECK_STR(take(), "[r: u0, u1, u2 and 37 others joined the room|joined|40]"
                      "[r: alice left the room|left|1]");
    /* Quiet for an interval: the next event goes at once again. */
    wait_interval();
    CHECK_STR(take(), "");
    announcer_add(&ann, "r", 1, ANNOUNCE_DEPARTED, "u0");
    CHECK_STR(take(), "[r: u0 left the room|left|1]");
    teardown();
}

static void test_again_flushes_even_empty(void)
{
    setup();
    announcer_again(&ann, "r", 1);
    announcer_add(&ann, "r", 1, ANNOUNCE_ARRIVED, "alice"); /* held: the cluster is busy */
    CHECK_STR(take(), "");
    wait_interval();
    CHECK_STR(take(), "[r: alice joined the room|joined|1]");
    teardown();
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_words);
    RUN(test_first_goes_at_once_then_coalesced);
    RUN(test_again_flushes_even_empty);
    return CHECK_DONE("test_announce");
}
