#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cluster_slots.h"

/* Slots that redis-server 7.0.15 gave with CLUSTER KEYSLOT, including
 * Redis's own hash-tag examples. */
static void test_key_slot_as_redis(void)
{
    static const struct {
        const char *key;
        unsigned slot;
    } known[] = {
        {"", 0},
        {"123456789", 12739},
        {"foo", 12182},
        {"bar", 5061},
        {"{user1000}.following", 3443},
        {"foo{}{bar}", 8363},    /* empty tag: the whole key */
        {"foo{{bar}}zap", 4015}, /* the tag is "{bar" */
        {"foo{bar}{zap}", 5061}, /* the first tag only: "bar" */
        {"{", 4092},
        {"}", 12090},
        {"a{b", 13340},
        {"chat:history:{1a2b3c4d}room{x}", 9114},
    };
    CHECK(cluster_crc16("123456789", 9) == 0x31c3); /* CRC16-CCITT's check value */
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        CHECK(cluster_key_slot(known[i].key, strlen(known[i].key)) == known[i].slot);
}

/* Every key of a room, whatever braces its name holds, is on the tag's slot. */
static void test_room_tag_holds_any_name(void)
{
    static const char *rooms[] = {"general", "{", "}", "}{", "a{b}c", "{x}", "{}", "%7B"};
    for (size_t i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
        const char *room = rooms[i];
        char tag[CLUSTER_TAG_LEN + 1], key[128];
        cluster_room_tag(tag, room, strlen(room));
        CHECK(strlen(tag) == CLUSTER_TAG_LEN && tag[0] == '{' && tag[5] == '}');
        unsigned slot = cluster_key_slot(tag, strlen(tag));
        static const char *kinds[] = {"chat:history:", "chat:presence:", "chat:room:", "p:"};
        for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
            int n = snprintf(key, sizeof(key), "%s%s%s", kinds[k], tag, room);
            CHECK(cluster_key_slot(key, (size_t)n) == slot);
        }
    }
    char a[CLUSTER_TAG_LEN + 1], b[CLUSTER_TAG_LEN + 1];
    cluster_room_tag(a, "general", 7);
    cluster_room_tag(b, "random", 6);
    CHECK(strcmp(a, b) != 0);
}

/* A reply as a redis-server sends it, parsed by hiredis's own reader. */
static redisReply *reply_of(const char *resp)
{
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(r, resp, strlen(resp));
    if (redisReaderGetReply(r, &reply) != REDIS_OK)
        reply = NULL;
    redisReaderFree(r);
    return reply;
}

/* CLUSTER SLOTS of a 3 + 3 cluster made with redis-cli --cluster create:
 * [first, last, primary, replicas...], node = [host, port, id]. */
static const char slots_3x2[] = "*3\r\n"
                                "*4\r\n:0\r\n:5460\r\n"
                                "*3\r\n$9\r\n127.0.0.1\r\n:36871\r\n$2\r\nid\r\n"
                                "*3\r\n$9\r\n127.0.0.1\r\n:43815\r\n$2\r\nr1\r\n"
                                "*4\r\n:5461\r\n:10922\r\n"
                                "*3\r\n$9\r\n127.0.0.1\r\n:39423\r\n$2\r\nid\r\n"
                                "*3\r\n$9\r\n127.0.0.1\r\n:35577\r\n$2\r\nr2\r\n"
                                "*4\r\n:10923\r\n:16383\r\n"
                                "*3\r\n$0\r\n\r\n:35021\r\n$2\r\nid\r\n"
                                "*3\r\n$9\r\n127.0.0.1\r\n:60849\r\n$2\r\nr3\r\n";

static void test_map_of_cluster_slots(void)
{
    struct cluster_map *m = malloc(sizeof(*m));
    cluster_map_init(m);
    redisReply *r = reply_of(slots_3x2);
    char why[200] = "";
    CHECK(r && cluster_map_parse(m, r, "10.0.0.9", why, sizeof(why)));
    CHECK(m->n_nodes == 3);
    CHECK(cluster_map_owner(m, 0)->port == 36871);
    CHECK(cluster_map_owner(m, 5460)->port == 36871);
    CHECK(cluster_map_owner(m, 5461)->port == 39423);
    CHECK(cluster_map_owner(m, 16383)->port == 35021);
    /* A node that does not say its host is on the host that answered. */
    CHECK(strcmp(cluster_map_owner(m, 16383)->host, "10.0.0.9") == 0);
    CHECK(strcmp(cluster_map_owner(m, 0)->host, "127.0.0.1") == 0);
    CHECK(cluster_map_owner(m, CLUSTER_SLOTS) == NULL);
    freeReplyObject(r);

    /* Slots no range names have no owner (a cluster being set up). */
    r = reply_of("*1\r\n*3\r\n:100\r\n:100\r\n*2\r\n$1\r\nh\r\n:7000\r\n");
    CHECK(r && cluster_map_parse(m, r, "x", why, sizeof(why)));
    CHECK(m->n_nodes == 1 && cluster_map_owner(m, 100)->port == 7000);
    CHECK(cluster_map_owner(m, 0) == NULL && cluster_map_owner(m, 101) == NULL);
    freeReplyObject(r);
    cluster_map_free(m);
    free(m);
}

/* A bad reply leaves the map as it was and says why. */
static void test_map_refuses_bad_replies(void)
{
    struct cluster_map *m = malloc(sizeof(*m));
    cluster_map_init(m);
    redisReply *good = reply_of(slots_3x2);
    char why[200];
    CHECK(cluster_map_parse(m, good, "h", why, sizeof(why)));
    freeReplyObject(good);
    static const char *bad[] = {
        "-ERR This instance has cluster support disabled\r\n",
        ":1\r\n",
        "*1\r\n:5\r\n",
        "*1\r\n*3\r\n:10\r\n:5\r\n*2\r\n$1\r\nh\r\n:7000\r\n",    /* first > last */
        "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\nh\r\n:7000\r\n", /* past the slots */
        "*1\r\n*3\r\n:-1\r\n:5\r\n*2\r\n$1\r\nh\r\n:7000\r\n",
        "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:0\r\n", /* port 0 */
        "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n$1\r\nh\r\n:65536\r\n",
        "*1\r\n*3\r\n:0\r\n:5\r\n*1\r\n$1\r\nh\r\n",
        "*1\r\n*3\r\n:0\r\n:5\r\n*2\r\n:1\r\n:7000\r\n",
        "*1\r\n*2\r\n:0\r\n:5\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *r = reply_of(bad[i]);
        why[0] = '\0';
        CHECK(r && !cluster_map_parse(m, r, "h", why, sizeof(why)));
        CHECK(why[0] != '\0');
        freeReplyObject(r);
    }
    CHECK(!cluster_map_parse(m, NULL, "h", why, sizeof(why)));
    CHECK(strstr(why, "not an array"));
    CHECK(m->n_nodes == 3 && cluster_map_owner(m, 0)->port == 36871);
    cluster_map_free(m);
    free(m);
}

static void test_redirects(void)
{
    struct cluster_redirect d;
    const char moved[] = "MOVED 3999 127.0.0.1:6381";
    CHECK(cluster_redirect_parse(moved, strlen(moved), &d));
    CHECK(!d.ask && d.slot == 3999 && d.to.port == 6381 && strcmp(d.to.host, "127.0.0.1") == 0);
    const char ask[] = "ASK 12182 redis-2.example:7000";
    CHECK(cluster_redirect_parse(ask, strlen(ask), &d));
    CHECK(d.ask && d.slot == 12182 && d.to.port == 7000 &&
          strcmp(d.to.host, "redis-2.example") == 0);
    static const char *bad[] = {"ERR unknown",
                                "MOVED",
                                "MOVED 3999",
                                "MOVED 16384 h:1",
                                "MOVED -1 h:1",
                                "MOVED 1 h:0",
                                "MOVED 1 h",
                                "ASKING 1 h:1",
                                "MOVED x h:1",
                                "MOVED 1 h:1x",
                                "NOSCRIPT No matching script"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(!cluster_redirect_parse(bad[i], strlen(bad[i]), &d));
    char longer[600];
    memset(longer, 'a', sizeof(longer));
    memcpy(longer, "MOVED 1 ", 8);
    CHECK(!cluster_redirect_parse(longer, sizeof(longer), &d));
}

/* The canary's candidates reach every slot, so each primary serving a slot
 * gets a tag of its own, found from where the last one was. */
static void test_canary_tags(void)
{
    static bool hit[CLUSTER_SLOTS];
    char tag[CLUSTER_CANARY_TAG_MAX];
    size_t hits = 0;
    for (unsigned k = 0; k < CLUSTER_CANARY_TAGS; k++) {
        size_t len = cluster_canary_tag(tag, k);
        CHECK(len < CLUSTER_CANARY_TAG_MAX && tag[0] == '{' && tag[len - 1] == '}');
        unsigned slot = cluster_key_slot(tag, len);
        hits += !hit[slot];
        hit[slot] = true;
    }
    CHECK(hits == CLUSTER_SLOTS);
    CHECK(cluster_canary_tag(tag, CLUSTER_CANARY_TAGS + 2) == 4 && strcmp(tag, "{c2}") == 0);

    struct cluster_map *m = malloc(sizeof(*m));
    cluster_map_init(m);
    redisReply *r = reply_of(slots_3x2);
    char why[200];
    CHECK(r && cluster_map_parse(m, r, "h", why, sizeof(why)));
    freeReplyObject(r);
    for (size_t node = 0; node < m->n_nodes; node++) {
        unsigned k = 0;
        CHECK(cluster_canary_find(m, node, &k));
        unsigned first = k;
        CHECK(m->owner[cluster_key_slot(tag, cluster_canary_tag(tag, k))] == node);
        /* The next one is another candidate of the same node... */
        k++;
        CHECK(cluster_canary_find(m, node, &k) && k > first);
        CHECK(m->owner[cluster_key_slot(tag, cluster_canary_tag(tag, k))] == node);
        /* ...and past the last candidate the search starts over. */
        k = CLUSTER_CANARY_TAGS - 1;
        CHECK(cluster_canary_find(m, node, &k));
        CHECK(m->owner[cluster_key_slot(tag, cluster_canary_tag(tag, k))] == node);
    }
    /* A node with one slot has a tag; one without slots has none. */
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        m->owner[s] = 0;
    m->owner[12345] = 1;
    unsigned k = 0;
    CHECK(cluster_canary_find(m, 1, &k));
    CHECK(cluster_key_slot(tag, cluster_canary_tag(tag, k)) == 12345);
    k = 0;
    CHECK(!cluster_canary_find(m, 2, &k) && k == 0);
    cluster_map_free(m);
    free(m);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_key_slot_as_redis);
    RUN(test_room_tag_holds_any_name);
    RUN(test_map_of_cluster_slots);
    RUN(test_map_refuses_bad_replies);
    RUN(test_redirects);
    RUN(test_canary_tags);
    return CHECK_DONE("test_cluster_slots");
}
