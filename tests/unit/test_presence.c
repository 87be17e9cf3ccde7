#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "presence.h"

#define S(lit) lit, sizeof(lit) - 1

/* The names of a room joined with commas. */
static const char *names(const struct presence *p, const char *room, size_t room_len)
{
    static char out[1024];
    static const char *sentinel;
    const char **v = &sentinel; /* must be overwritten */
    size_t n = presence_names(p, room, room_len, &v);
    out[0] = '\0';
    if (!n && v != NULL)
        return "(names not NULL when empty)";
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), sizeof(out) - strlen(out), "%s%s", i ? "," : "", v[i]);
    free(v);
    return out;
}

static void test_multiset_counts(void)
{
    struct presence p;
    presence_init(&p);
    CHECK_INT(presence_add(&p, S("r"), "alice"), ==, 1);
    CHECK_INT(presence_add(&p, S("r"), "alice"), ==, 2); /* a second tab */
    CHECK_INT(presence_add(&p, S("r"), "bob"), ==, 1);
    CHECK_INT(presence_add(&p, S("other"), "alice"), ==, 1); /* rooms are separate */
    CHECK_STR(names(&p, S("r")), "alice,bob");
    CHECK_INT(presence_room(&p, S("r"))->count, ==, 2);

    CHECK_INT(presence_remove(&p, S("r"), "alice"), ==, 1);
    CHECK_STR(names(&p, S("r")), "alice,bob"); /* one connection left */
    CHECK_INT(presence_remove(&p, S("r"), "alice"), ==, 0);
    CHECK_STR(names(&p, S("r")), "bob");
    CHECK_INT(presence_remove(&p, S("r"), "alice"), ==, -1); /* not there any more */
    CHECK_INT(presence_remove(&p, S("r"), "carol"), ==, -1);
    CHECK_INT(presence_remove(&p, S("nowhere"), "bob"), ==, -1);
    CHECK_STR(names(&p, S("other")), "alice");
    presence_free(&p);
}

static void test_last_name_frees_room(void)
{
    struct presence p;
    presence_init(&p);
    presence_add(&p, S("r"), "alice");
    presence_add(&p, S("r"), "alice");
    CHECK_INT(p.rooms.count, ==, 1);
    presence_remove(&p, S("r"), "alice");
    CHECK(presence_room(&p, S("r")) != NULL);
    presence_remove(&p, S("r"), "alice");
    CHECK(presence_room(&p, S("r")) == NULL);
    CHECK_INT(p.rooms.count, ==, 0);
    CHECK_STR(names(&p, S("r")), "");
    /* The room comes back on the next add. */
    CHECK_INT(presence_add(&p, S("r"), "alice"), ==, 1);
    CHECK_STR(names(&p, S("r")), "alice");
    presence_free(&p);
}

static void test_names_sorted_distinct(void)
{
    struct presence p;
    presence_init(&p);
    static const char *const in[] = {"zed", "Bob", "alice", "日本",   "bob", "alice",
                                     "_x",  "Zed", "ａ",    "alice2", "zed"};
    for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
        presence_add(&p, S("部屋"), in[i]);
    /* Byte order: upper case, then '_', lower case, then UTF-8. */
    CHECK_STR(names(&p, S("部屋")), "Bob,Zed,_x,alice,alice2,bob,zed,日本,ａ");

    /* Many names, in scrambled order, come out sorted and once each. */
    char name[16];
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 500; i++) {
            snprintf(name, sizeof(name), "u%03d", (i * 7919) % 500);
            presence_add(&p, S("big"), name);
        }
    const char **v;
    size_t n = presence_names(&p, S("big"), &v);
    CHECK_INT(n, ==, 500);
    int unsorted = 0;
    for (size_t i = 1; i < n; i++)
        unsorted += strcmp(v[i - 1], v[i]) >= 0;
    CHECK_INT(unsorted, ==, 0);
    free(v);
    presence_free(&p);
}

static void test_binary_room_names(void)
{
    struct presence p;
    presence_init(&p);
    presence_add(&p, S("a\0b"), "x");
    presence_add(&p, S("a"), "y");
    CHECK_STR(names(&p, S("a\0b")), "x");
    CHECK_STR(names(&p, S("a")), "y");
    CHECK_INT(presence_remove(&p, S("a\0b"), "y"), ==, -1);
    CHECK_INT(presence_remove(&p, S("a\0b"), "x"), ==, 0);
    CHECK_STR(names(&p, S("a")), "y");
    /* Free with rooms still populated releases everything. */
    presence_add(&p, S("c"), "z");
    presence_free(&p);
    CHECK_INT(p.rooms.count, ==, 0);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_multiset_counts);
    RUN(test_last_name_frees_room);
    RUN(test_names_sorted_distinct);
    RUN(test_binary_room_names);
    return CHECK_DONE("test_presence");
}
