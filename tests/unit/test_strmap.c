#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "strmap.h"

#define VAL(n) ((void *)(uintptr_t)(n))

/* The map's own invariant for linear probing without tombstones: every
 * slot between an entry's home and the entry is occupied, or a lookup
 * would stop early at the hole. */
static bool probe_runs_intact(const struct strmap *m)
{
    size_t mask = m->cap - 1;
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->slots[j].key)
            continue;
        for (size_t i = m->slots[j].hash & mask; i != j; i = (i + 1) & mask)
            if (!m->slots[i].key)
                return false;
    }
    return true;
}

static size_t home_of(const struct strmap *m, const char *key)
{
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(m, &i, &s);)
        if (s->len == strlen(key) && memcmp(s->key, key, s->len) == 0)
            return s->hash & (m->cap - 1);
    return SIZE_MAX;
}

static void test_empty(void)
{
    struct strmap m;
    strmap_init(&m);
    CHECK(strmap_get(&m, "a", 1) == NULL);
    CHECK(strmap_del(&m, "a", 1) == NULL);
    size_t i = 0;
    const struct strmap_slot *s;
    CHECK(!strmap_next(&m, &i, &s));
    strmap_free(&m);
    CHECK(m.cap == 0 && m.count == 0 && m.slots == NULL);
}

static void test_put_get_replace(void)
{
    struct strmap m;
    strmap_init(&m);
    const char *k1 = strmap_put(&m, "alice", 5, VAL(1));
    CHECK(k1 != NULL);
    CHECK_STR(k1, "alice");
    CHECK(strmap_put(&m, "bob", 3, VAL(2)) != NULL);
    CHECK(strmap_get(&m, "alice", 5) == VAL(1));
    CHECK(strmap_get(&m, "bob", 3) == VAL(2));
    CHECK(strmap_get(&m, "ali", 3) == NULL);
    CHECK(strmap_get(&m, "alicex", 6) == NULL);
    /* Replacing keeps the key copy and the count. */
    CHECK(strmap_put(&m, "alice", 5, VAL(3)) == k1);
    CHECK(strmap_get(&m, "alice", 5) == VAL(3));
    CHECK_INT(m.count, ==, 2);
    /* The key is copied: the caller's buffer may change. */
    char buf[] = "carol";
    strmap_put(&m, buf, 5, VAL(4));
    buf[0] = 'x';
    CHECK(strmap_get(&m, "carol", 5) == VAL(4));
    CHECK(strmap_get(&m, buf, 5) == NULL);
    CHECK(strmap_del(&m, "bob", 3) == VAL(2));
    CHECK(strmap_get(&m, "bob", 3) == NULL);
    CHECK(strmap_del(&m, "bob", 3) == NULL);
    CHECK_INT(m.count, ==, 2);
    strmap_free(&m);
}

/* Replacing the value of a key that is there allocates nothing, so it
 * cannot fail: presence_remove counts down with a put it does not check. */
static void test_replace_never_grows(void)
{
    struct strmap m;
    strmap_init(&m);
    char key[8];
    for (int i = 0; i < 6; i++) {
        snprintf(key, sizeof(key), "n%d", i);
        strmap_put(&m, key, strlen(key), VAL(1));
    }
    CHECK_INT(m.cap, ==, 8); /* full: the next new key grows the map */
    CHECK(strmap_put(&m, "n3", 2, VAL(2)) != NULL);
    CHECK_INT(m.cap, ==, 8);
    CHECK(strmap_get(&m, "n3", 2) == VAL(2));
    strmap_free(&m);
}

static void test_binary_keys(void)
{
    struct strmap m;
    strmap_init(&m);
    strmap_put(&m, "a\0b", 3, VAL(1));
    strmap_put(&m, "a\0c", 3, VAL(2));
    strmap_put(&m, "a", 1, VAL(3));
    strmap_put(&m, "", 0, VAL(4));
    strmap_put(&m, "\xff\xfe", 2, VAL(5));
    strmap_put(&m, "日本語", strlen("日本語"), VAL(6));
    CHECK_INT(m.count, ==, 6);
    CHECK(strmap_get(&m, "a\0b", 3) == VAL(1));
    CHECK(strmap_get(&m, "a\0c", 3) == VAL(2));
    CHECK(strmap_get(&m, "a", 1) == VAL(3));
    CHECK(strmap_get(&m, "", 0) == VAL(4));
    CHECK(strmap_get(&m, "\xff\xfe", 2) == VAL(5));
    CHECK(strmap_get(&m, "日本語", strlen("日本語")) == VAL(6));
    CHECK(strmap_get(&m, "a\0", 2) == NULL);
    /* Key copies are NUL-terminated even when the key holds NULs. */
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&m, &i, &s);)
        CHECK(s->key[s->len] == '\0');
    CHECK(strmap_del(&m, "", 0) == VAL(4));
    CHECK(strmap_get(&m, "", 0) == NULL);
    CHECK(strmap_get(&m, "a", 1) == VAL(3));
    strmap_free(&m);
}

static void test_growth_and_iteration(void)
{
    enum { N = 5000 };
    struct strmap m;
    strmap_init(&m);
    static const char *copies[N];
    char key[32];
    int failed = 0;
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "room-%d", i);
        copies[i] = strmap_put(&m, key, (size_t)len, VAL(i + 1));
        failed += !copies[i];
    }
    CHECK_INT(failed, ==, 0);
    CHECK_INT(m.count, ==, N);
    CHECK((m.cap & (m.cap - 1)) == 0);
    CHECK(m.count * 4 <= m.cap * 3);
    CHECK(probe_runs_intact(&m));
    int missing = 0;
    for (int i = 0; i < N; i++) {
        int len = snprintf(key, sizeof(key), "room-%d", i);
        if (strmap_get(&m, key, (size_t)len) != VAL(i + 1))
            missing++;
    }
    CHECK_INT(missing, ==, 0);

    /* Iteration sees every entry once, and the key copies handed out by
     * put survived every growth. */
    static unsigned char seen[N];
    memset(seen, 0, sizeof(seen));
    size_t visits = 0;
    int bad = 0;
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&m, &i, &s);) {
        uintptr_t v = (uintptr_t)s->value;
        visits++;
        if (v < 1 || v > N || seen[v - 1]++ || s->key != copies[v - 1])
            bad++;
    }
    CHECK_INT(visits, ==, N);
    CHECK_INT(bad, ==, 0);
    strmap_free(&m);
}

/* Finds keys "c<n>" by the home slot the map gives them at its current
 * capacity, reading the hash back from the map rather than assuming it. */
static int keys_by_home(struct strmap *scratch, size_t home, char out[][16], int want)
{
    int got = 0;
    for (int n = 0; got < want && n < 100000; n++) {
        char key[16];
        int len = snprintf(key, sizeof(key), "c%d", n);
        strmap_put(scratch, key, (size_t)len, VAL(1));
        if (home_of(scratch, key) == home)
            memcpy(out[got++], key, (size_t)len + 1);
        strmap_del(scratch, key, (size_t)len);
    }
    return got;
}

static void test_backward_shift(void)
{
    /* Capacity 16 holds 12 entries; the scratch map has the same capacity
     * so homes computed there hold in the real one. */
    struct strmap scratch, m;
    strmap_init(&scratch);
    strmap_init(&m);
    for (int i = 0; i < 9; i++) {
        char key[8];
        snprintf(key, sizeof(key), "f%d", i);
        strmap_put(&scratch, key, strlen(key), VAL(1));
    }
    CHECK_INT(scratch.cap, ==, 16);
    char at3[3][16], at4[1][16], at15[3][16];
    if (!CHECK_INT(keys_by_home(&scratch, 3, at3, 3), ==, 3) ||
        !CHECK_INT(keys_by_home(&scratch, 4, at4, 1), ==, 1) ||
        !CHECK_INT(keys_by_home(&scratch, 15, at15, 3), ==, 3)) {
        strmap_free(&scratch);
        return;
    }
    strmap_free(&scratch);

    /* Grow m to capacity 16 with filler, then remove the filler so only
     * the chosen keys remain: a run 3,3,3,4 at slots 3..6 and a run that
     * wraps from slot 15 to slots 0 and 1. */
    for (int i = 0; i < 9; i++) {
        char key[8];
        snprintf(key, sizeof(key), "f%d", i);
        strmap_put(&m, key, strlen(key), VAL(1));
    }
    for (int i = 0; i < 9; i++) {
        char key[8];
        snprintf(key, sizeof(key), "f%d", i);
        strmap_del(&m, key, strlen(key));
    }
    CHECK_INT(m.cap, ==, 16);
    CHECK_INT(m.count, ==, 0);
    const char *keys[] = {at3[0], at3[1], at3[2], at4[0], at15[0], at15[1], at15[2]};
    enum { NK = sizeof(keys) / sizeof(keys[0]) };
    for (int i = 0; i < NK; i++)
        strmap_put(&m, keys[i], strlen(keys[i]), VAL(i + 1));
    CHECK_STR(m.slots[6].key, at4[0]);  /* displaced behind its run */
    CHECK_STR(m.slots[1].key, at15[2]); /* wrapped */

    /* Delete the head of the first run: the run and the displaced key
     * shift back by one. */
    CHECK(strmap_del(&m, at3[0], strlen(at3[0])) == VAL(1));
    CHECK(probe_runs_intact(&m));
    CHECK_STR(m.slots[5].key, at4[0]);
    CHECK(m.slots[6].key == NULL);
    for (int i = 1; i < NK; i++)
        CHECK(strmap_get(&m, keys[i], strlen(keys[i])) == VAL(i + 1));

    /* Delete inside the wrapped run: its tail moves back across the end. */
    CHECK(strmap_del(&m, at15[0], strlen(at15[0])) == VAL(5));
    CHECK(probe_runs_intact(&m));
    CHECK_STR(m.slots[15].key, at15[1]);
    CHECK_STR(m.slots[0].key, at15[2]);
    CHECK(m.slots[1].key == NULL);
    CHECK(strmap_get(&m, at15[2], strlen(at15[2])) == VAL(7));

    /* A key at its home stays when a hole opens before it; a later key
     * of the earlier run still moves back past it. */
    for (int i = 0; i < NK; i++)
        strmap_del(&m, keys[i], strlen(keys[i]));
    CHECK_INT(m.count, ==, 0);
    strmap_put(&m, at3[0], strlen(at3[0]), VAL(1));
    strmap_put(&m, at4[0], strlen(at4[0]), VAL(4));
    strmap_put(&m, at3[1], strlen(at3[1]), VAL(2));
    CHECK_STR(m.slots[5].key, at3[1]);
    CHECK(strmap_del(&m, at3[0], strlen(at3[0])) == VAL(1));
    CHECK(probe_runs_intact(&m));
    CHECK_STR(m.slots[3].key, at3[1]);
    CHECK_STR(m.slots[4].key, at4[0]);
    CHECK(m.slots[5].key == NULL);
    CHECK_INT(m.count, ==, 2);
    strmap_free(&m);
}

/* Random puts and deletes over a small key space, so runs collide and
 * wrap constantly, against a plain array. */
static void test_against_model(void)
{
    enum { KEYS = 300, OPS = 200000 };
    struct strmap m;
    strmap_init(&m);
    uintptr_t model[KEYS] = {0};
    size_t live = 0;
    uint32_t rng = 12345;
    int wrong = 0, broken = 0;
    for (int op = 0; op < OPS; op++) {
        rng = rng * 1103515245u + 12345u;
        int k = (int)((rng >> 8) % KEYS);
        char key[16];
        int len = snprintf(key, sizeof(key), "k%d", k);
        if ((rng >> 24) & 1) {
            uintptr_t v = (uintptr_t)op + 1;
            strmap_put(&m, key, (size_t)len, VAL(v));
            live += model[k] == 0;
            model[k] = v;
        } else {
            if ((uintptr_t)strmap_del(&m, key, (size_t)len) != model[k])
                wrong++;
            live -= model[k] != 0;
            model[k] = 0;
        }
        if (op % 1000 == 0) {
            broken += !probe_runs_intact(&m);
            for (int j = 0; j < KEYS; j++) {
                len = snprintf(key, sizeof(key), "k%d", j);
                wrong += (uintptr_t)strmap_get(&m, key, (size_t)len) != model[j];
            }
        }
    }
    CHECK_INT(wrong, ==, 0);
    CHECK_INT(broken, ==, 0);
    CHECK_INT(m.count, ==, live);
    strmap_free(&m);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_empty);
    RUN(test_put_get_replace);
    RUN(test_replace_never_grows);
    RUN(test_binary_keys);
    RUN(test_growth_and_iteration);
    RUN(test_backward_shift);
    RUN(test_against_model);
    return CHECK_DONE("test_strmap");
}
