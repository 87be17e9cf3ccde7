/* peers: open connections counted per client address against a limit. */
#include <string.h>

#include "check.h"
#include "peers.h"

static void test_no_limit_counts_nothing(void)
{
    struct peers p;
    peers_init(&p, 0);
    for (int i = 0; i < 1000; i++)
        CHECK(peers_acquire(&p, "10.0.0.1") == NULL);
    CHECK(peers_allowed(&p, "10.0.0.1"));
    CHECK_INT(p.by_addr.count, ==, 0);
    peers_release(&p, NULL); /* what a session without a count gives back */
    peers_free(&p);
}

static void test_limit_per_address(void)
{
    struct peers p;
    peers_init(&p, 2);
    CHECK(peers_allowed(&p, "10.0.0.1"));
    const char *a1 = peers_acquire(&p, "10.0.0.1");
    if (!CHECK(a1 != NULL))
        return;
    CHECK_STR(a1, "10.0.0.1");
    CHECK(peers_allowed(&p, "10.0.0.1"));
    /* One stored copy per address, whatever buffer the caller used. */
    char addr[] = "10.0.0.1";
    const char *a2 = peers_acquire(&p, addr);
    CHECK(a2 == a1);
    CHECK(!peers_allowed(&p, "10.0.0.1"));
    /* Another address has its own count. */
    CHECK(peers_allowed(&p, "10.0.0.2"));
    const char *b1 = peers_acquire(&p, "10.0.0.2");
    CHECK(b1 != NULL && b1 != a1);
    CHECK(peers_allowed(&p, "10.0.0.2"));
    CHECK(!peers_allowed(&p, "10.0.0.1"));
    /* Addresses are compared whole: a prefix is another address. */
    CHECK(peers_allowed(&p, "10.0.0.10"));
    CHECK(peers_allowed(&p, "10.0.0."));

    peers_release(&p, a2);
    CHECK(peers_allowed(&p, "10.0.0.1"));
    CHECK_INT(p.by_addr.count, ==, 2);
    peers_release(&p, a1);
    peers_release(&p, b1);
    /* The last release forgets the address: nothing is kept per address
     * that has no connection left. */
    CHECK_INT(p.by_addr.count, ==, 0);
    CHECK(peers_allowed(&p, "10.0.0.1"));
    peers_free(&p);
}

static void test_acquire_past_the_limit_still_counts(void)
{
    /* http checks peers_allowed at the upgrade; the session is counted
     * when it opens. Counts stay exact even if more got through. */
    struct peers p;
    peers_init(&p, 1);
    const char *a[3];
    for (int i = 0; i < 3; i++)
        a[i] = peers_acquire(&p, "::1");
    CHECK(a[0] && a[0] == a[1] && a[1] == a[2]);
    for (int i = 0; i < 2; i++) {
        peers_release(&p, a[i]);
        CHECK(!peers_allowed(&p, "::1"));
    }
    peers_release(&p, a[2]);
    CHECK(peers_allowed(&p, "::1"));
    CHECK_INT(p.by_addr.count, ==, 0);
    peers_free(&p);
}

static void test_release_of_an_unknown_address(void)
{
    struct peers p;
    peers_init(&p, 3);
    const char *a = peers_acquire(&p, "192.0.2.1");
    peers_release(&p, "198.51.100.7");
    CHECK_INT(p.by_addr.count, ==, 1);
    CHECK(peers_allowed(&p, "192.0.2.1"));
    peers_release(&p, a);
    CHECK_INT(p.by_addr.count, ==, 0);
    peers_free(&p);
}

static void test_many_addresses(void)
{
    struct peers p;
    peers_init(&p, 1);
    const char *held[500];
    char addr[32];
    for (int i = 0; i < 500; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        held[i] = peers_acquire(&p, addr);
        CHECK(held[i] != NULL);
    }
    CHECK_INT(p.by_addr.count, ==, 500);
    for (int i = 0; i < 500; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        CHECK(!peers_allowed(&p, addr));
        /* The copies stay valid while the map grows. */
        CHECK_STR(held[i], addr);
    }
    for (int i = 0; i < 500; i++)
        peers_release(&p, held[i]);
    CHECK_INT(p.by_addr.count, ==, 0);
    peers_free(&p);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_no_limit_counts_nothing);
    RUN(test_limit_per_address);
    RUN(test_acquire_past_the_limit_still_counts);
    RUN(test_release_of_an_unknown_address);
    RUN(test_many_addresses);
    return CHECK_DONE("test_peers");
}
