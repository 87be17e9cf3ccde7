#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "history.h"

#define S(lit) lit, sizeof(lit) - 1

/* Frames for ids 1-0 .. N-0, owned by the test; history adds its own
 * references, so refs - 1 is what history (and callers) hold. */
enum { NF = 64 };
static struct frame *frames[NF + 1];

static void make_frames(void)
{
    for (int i = 1; i <= NF; i++) {
        char buf[16];
        int len = snprintf(buf, sizeof(buf), "%d", i);
        frames[i] = frame_copy(buf, (size_t)len);
    }
}

static int held_refs(void)
{
    int n = 0;
    for (int i = 1; i <= NF; i++)
        n += (int)frames[i]->refs - 1;
    return n;
}

static void free_frames(void)
{
    for (int i = 1; i <= NF; i++)
        frame_unref(frames[i]);
}

static int append(struct history *h, const char *room, int n)
{
    struct msgid id = {(uint64_t)n, 0};
    return history_append(h, room, strlen(room), &id, frames[n]);
}

/* The kept ids after since (NULL: all) as "a,b,c", and truncated. */
static const char *since(struct history *h, const char *room, const struct msgid *after,
                         bool *truncated)
{
    static char out[512];
    struct frame **arr;
    size_t n = history_since(h, room, strlen(room), after, &arr, truncated);
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (int j = 1; j <= NF; j++)
            if (frames[j] == arr[i])
                k = j;
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%d", i ? "," : "", k);
        frame_unref(arr[i]);
    }
    free(arr);
    return out;
}

static const struct msgid *at(uint64_t ms)
{
    static struct msgid id;
    id = (struct msgid){ms, 0};
    return &id;
}

static void test_per_room_cap(void)
{
    struct history h;
    history_init(&h, 3, 100);
    bool t = true;
    CHECK_STR(since(&h, "r", NULL, &t), "");
    CHECK(!t);
    for (int i = 1; i <= 5; i++)
        CHECK_INT(append(&h, "r", i), ==, 0);
    CHECK_STR(since(&h, "r", NULL, &t), "3,4,5");
    CHECK(!t);                     /* without since nothing is "missed" */
    CHECK_INT(held_refs(), ==, 3); /* the two dropped frames were released */
    CHECK_INT(frames[1]->refs, ==, 1);
    CHECK_INT(frames[5]->refs, ==, 2);
    /* Rooms are independent. */
    append(&h, "other", 6);
    CHECK_STR(since(&h, "other", NULL, &t), "6");
    CHECK_STR(since(&h, "r", NULL, &t), "3,4,5");
    CHECK_STR(since(&h, "nowhere", NULL, &t), "");
    history_free(&h);
    CHECK_INT(held_refs(), ==, 0);
}

static void test_since_and_truncated(void)
{
    struct history h;
    history_init(&h, 3, 100);
    bool t;
    for (int i = 1; i <= 3; i++)
        append(&h, "r", i);
    /* Nothing forgotten yet: never truncated. */
    CHECK_STR(since(&h, "r", at(0), &t), "1,2,3");
    CHECK(!t);
    CHECK_STR(since(&h, "r", at(1), &t), "2,3");
    CHECK(!t);
    for (int i = 4; i <= 5; i++)
        append(&h, "r", i); /* 1 and 2 forgotten; 3,4,5 kept */
    /* since before the last forgotten id: something after it is gone. */
    CHECK_STR(since(&h, "r", at(0), &t), "3,4,5");
    CHECK(t);
    CHECK_STR(since(&h, "r", at(1), &t), "3,4,5");
    CHECK(t);
    /* since = the last forgotten id: everything after it is kept. */
    CHECK_STR(since(&h, "r", at(2), &t), "3,4,5");
    CHECK(!t);
    CHECK_STR(since(&h, "r", at(3), &t), "4,5");
    CHECK(!t);
    CHECK_STR(since(&h, "r", at(4), &t), "5");
    CHECK(!t);
    CHECK_STR(since(&h, "r", at(5), &t), "");
    CHECK(!t);
    CHECK_STR(since(&h, "r", at(99), &t), "");
    CHECK(!t);
    /* Ids compare as numbers, seq included: 2-5 is after 2-0, before 3-0. */
    struct msgid mid = {2, 5};
    CHECK_STR(since(&h, "r", &mid, &t), "3,4,5");
    CHECK(!t);
    struct msgid before = {1, 99};
    since(&h, "r", &before, &t);
    CHECK(t);
    /* Each returned frame was a new reference, all dropped by since(). */
    CHECK_INT(held_refs(), ==, 3);
    history_free(&h);
    CHECK_INT(held_refs(), ==, 0);
}

static void test_same_ms_ids(void)
{
    /* Several messages in one millisecond differ by seq. */
    struct history h;
    history_init(&h, 10, 10);
    for (int i = 1; i <= 4; i++) {
        struct msgid id = {1000, (uint64_t)i - 1};
        history_append(&h, S("r"), &id, frames[i]);
    }
    bool t;
    struct msgid s = {1000, 1};
    CHECK_STR(since(&h, "r", &s, &t), "3,4");
    history_free(&h);
}

static void test_lru_eviction(void)
{
    struct history h;
    history_init(&h, 2, 3);
    bool t;
    append(&h, "a", 1);
    append(&h, "b", 2);
    append(&h, "b", 3);
    append(&h, "c", 4);
    append(&h, "a", 5); /* a becomes the most recent: b is the oldest */
    append(&h, "d", 6); /* a fourth room: b goes */
    CHECK_STR(since(&h, "b", NULL, &t), "");
    CHECK_STR(since(&h, "a", NULL, &t), "1,5");
    CHECK_STR(since(&h, "c", NULL, &t), "4");
    CHECK_STR(since(&h, "d", NULL, &t), "6");
    CHECK_INT(h.rooms.count, ==, 3);
    CHECK_INT(frames[2]->refs, ==, 1); /* b's frames released */
    CHECK_INT(frames[3]->refs, ==, 1);
    /* Reading does not count as use: c is now the oldest. */
    append(&h, "e", 7);
    CHECK_STR(since(&h, "c", NULL, &t), "");
    CHECK_STR(since(&h, "a", NULL, &t), "1,5");
    /* A forgotten room starts afresh. */
    append(&h, "b", 8);
    CHECK_STR(since(&h, "b", NULL, &t), "8");
    CHECK_STR(since(&h, "a", NULL, &t), ""); /* a was the oldest */
    CHECK_INT(held_refs(), ==, 3);
    history_free(&h);
    CHECK_INT(held_refs(), ==, 0);
}

static void test_many_rooms(void)
{
    /* Far more rooms than kept: the map and the LRU list stay in step. */
    struct history h;
    history_init(&h, 1, 16);
    char room[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(room, sizeof(room), "room%d", i);
        append(&h, room, 1 + i % NF);
    }
    CHECK_INT(h.rooms.count, ==, 16);
    CHECK_INT(held_refs(), ==, 16);
    bool t;
    CHECK_STR(since(&h, "room999", NULL, &t), "40"); /* 1 + 999 % 64 */
    CHECK_STR(since(&h, "room984", NULL, &t), "25");
    CHECK_STR(since(&h, "room983", NULL, &t), "");
    history_free(&h);
    CHECK_INT(held_refs(), ==, 0);
}

static void test_disabled(void)
{
    struct history h;
    history_init(&h, 0, 10);
    CHECK_INT(append(&h, "r", 1), ==, 0);
    CHECK_INT(frames[1]->refs, ==, 1);
    bool t = true;
    CHECK_STR(since(&h, "r", NULL, &t), "");
    CHECK(!t);
    history_free(&h);
}

static void test_binary_and_japanese_rooms(void)
{
    struct history h;
    history_init(&h, 4, 10);
    struct msgid id = {1, 0};
    history_append(&h, S("部屋"), &id, frames[1]);
    history_append(&h, S("a\0b"), &id, frames[2]);
    history_append(&h, S("a"), &id, frames[3]);
    struct frame **arr;
    bool t;
    CHECK_INT(history_since(&h, S("a\0b"), NULL, &arr, &t), ==, 1);
    CHECK(arr && arr[0] == frames[2]);
    frame_unref(arr[0]);
    free(arr);
    CHECK_INT(history_since(&h, S("部屋"), NULL, &arr, &t), ==, 1);
    CHECK(arr && arr[0] == frames[1]);
    frame_unref(arr[0]);
    free(arr);
    history_free(&h);
    CHECK_INT(held_refs(), ==, 0);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    make_frames();
    RUN(test_per_room_cap);
    RUN(test_since_and_truncated);
    RUN(test_same_ms_ids);
    RUN(test_lru_eviction);
    RUN(test_many_rooms);
    RUN(test_disabled);
    RUN(test_binary_and_japanese_rooms);
    free_frames();
    return CHECK_DONE("test_history");
}
