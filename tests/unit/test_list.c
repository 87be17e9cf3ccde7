#include "check.h"
#include "list.h"

struct item {
    int n;
    struct list node;
};

/* The numbers of h's items, in order, as one int (digits). */
static int digits(struct list *h)
{
    int v = 0;
    struct list *it;
    list_foreach(it, h) v = v * 10 + list_entry(it, struct item, node)->n;
    return v;
}

static void test_empty_and_unlinked(void)
{
    struct list h;
    struct item a = {1, {0}};
    list_init(&h);
    list_init(&a.node);
    CHECK(list_empty(&h));
    CHECK(!list_linked(&a.node));
    list_remove(&a.node); /* harmless */
    CHECK(!list_linked(&a.node));
    CHECK_INT(digits(&h), ==, 0);
}

static void test_order_and_remove(void)
{
    struct list h;
    struct item it[4];
    list_init(&h);
    for (int i = 0; i < 4; i++) {
        it[i].n = i + 1;
        list_init(&it[i].node);
    }
    list_insert_tail(&h, &it[1].node);
    list_insert_tail(&h, &it[2].node);
    list_insert_head(&h, &it[0].node);
    list_insert_tail(&h, &it[3].node);
    CHECK_INT(digits(&h), ==, 1234);
    CHECK(list_linked(&it[2].node));
    list_remove(&it[2].node); /* middle */
    CHECK(!list_linked(&it[2].node));
    CHECK_INT(digits(&h), ==, 124);
    list_remove(&it[0].node); /* first */
    list_remove(&it[3].node); /* last */
    CHECK_INT(digits(&h), ==, 2);
    CHECK(list_entry(h.next, struct item, node) == &it[1]);
    list_remove(&it[1].node);
    CHECK(list_empty(&h));
    /* A removed node can go on a list again. */
    list_insert_tail(&h, &it[2].node);
    CHECK_INT(digits(&h), ==, 3);
}

/* Draining from the head while taking each node off: the flush loop's
 * shape, where a node taken off may be put back on. */
static void test_drain_from_head(void)
{
    struct list h;
    struct item it[3];
    list_init(&h);
    for (int i = 0; i < 3; i++) {
        it[i].n = i + 1;
        list_init(&it[i].node);
        list_insert_tail(&h, &it[i].node);
    }
    int seen = 0, requeued = 0;
    while (!list_empty(&h)) {
        struct list *n = h.next;
        list_remove(n);
        struct item *x = list_entry(n, struct item, node);
        seen = seen * 10 + x->n;
        if (x->n == 2 && !requeued++)
            list_insert_tail(&h, n);
    }
    CHECK_INT(seen, ==, 1232);
}

static void test_move_all(void)
{
    struct list from, to;
    struct item it[2] = {{1, {0}}, {2, {0}}};
    list_init(&from);
    list_move_all(&from, &to); /* empty to empty */
    CHECK(list_empty(&from) && list_empty(&to));
    for (int i = 0; i < 2; i++)
        list_insert_tail(&from, &it[i].node);
    list_move_all(&from, &to);
    CHECK(list_empty(&from));
    CHECK_INT(digits(&to), ==, 12);
    /* from is usable again, apart from to. */
    list_remove(&it[0].node);
    list_insert_tail(&from, &it[0].node);
    CHECK_INT(digits(&from), ==, 1);
    CHECK_INT(digits(&to), ==, 2);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_empty_and_unlinked);
    RUN(test_order_and_remove);
    RUN(test_drain_from_head);
    RUN(test_move_all);
    return CHECK_DONE("test_list");
}
