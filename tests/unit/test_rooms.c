/* rooms against a fake bus: its ops write what they were asked into a log
 * and answer subscribe and join either at once (as the in-process bus does)
 * or when the test says (as the Redis bus does). Owners write a summary of
 * every frame they get into their own log. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "metrics.h"
#include "rooms.h"

#define S(lit) lit, sizeof(lit) - 1
#define LOG_MAX 4096

static void logf_(char *log, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(char *log, const char *fmt, ...)
{
    size_t used = strlen(log);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(log + used, LOG_MAX - used, fmt, ap);
    va_end(ap);
}

/* Returns the log so far and empties it. */
static const char *take(char *log)
{
    static char copy[LOG_MAX];
    memcpy(copy, log, LOG_MAX);
    log[0] = '\0';
    return copy;
}

/* How the log shows the system frame saying the history lost messages. */
#define LOST                                                                                       \
    "sys(Messages of this room were lost by the cluster (its history was reset): some you "        \
    "have not seen may never arrive) "

/* --- the fake bus --- */

/* An answer to a join: status, and for success the members count, the
 * history ids ("1-1,1-2") and truncated. */
struct answer {
    int status;
    long members;
    const char *ids;
    bool truncated;
    const char *newest; /* the room's newest id; NULL: newer than anything here */
    bool lost;          /* since is from a history that no longer exists */
};

struct fake_bus {
    struct bus base; /* first: the ops get &base */
    struct rooms *rooms;
    bool sync_subscribe; /* answer subscribe at once with subscribe_status */
    int subscribe_status;
    bool sync_join; /* answer join at once with join_answer */
    struct answer join_answer;
    struct {
        bus_join_fn cb;
        void *arg;
    } pending[16];
    int npending;
    char log[LOG_MAX];
};

static struct fake_bus *fake(struct bus *b)
{
    return (struct fake_bus *)b;
}

static struct frame *chat(const char *room, const char *id_text)
{
    struct msgid id;
    if (!msgid_parse(id_text, strlen(id_text), &id))
        return NULL;
    size_t len;
    char *rest = proto_chat_rest(room, strlen(room), "someone", S("text"), NULL, 0, 0, &len);
    struct frame *f = rest ? proto_chat_assemble(&id, rest, len) : NULL;
    free(rest);
    return f;
}

static void answer_join(bus_join_fn cb, void *arg, const char *room, const struct answer *a)
{
    if (a->status < 0) {
        cb(arg, a->status, NULL);
        return;
    }
    struct frame *hist[16];
    struct bus_join_result r = {.history = hist,
                                .members = a->members,
                                .truncated = a->truncated,
                                .lost = a->lost,
                                .newest = {UINT64_MAX, UINT64_MAX}};
    if (a->newest)
        CHECK(msgid_parse(a->newest, strlen(a->newest), &r.newest));
    char ids[256];
    snprintf(ids, sizeof(ids), "%s", a->ids ? a->ids : "");
    for (char *save, *t = strtok_r(ids, ",", &save); t && r.n < 16; t = strtok_r(NULL, ",", &save))
        hist[r.n++] = chat(room, t);
    cb(arg, 0, &r);
    for (size_t i = 0; i < r.n; i++)
        frame_unref(hist[i]);
}

static void fake_announce(struct bus *b, const char *room, size_t room_len, enum announce_kind k,
                          const char *name)
{
    logf_(fake(b)->log, "pub(%.*s:%s %s the room) ", (int)room_len, room, name,
          k == ANNOUNCE_ARRIVED ? "joined" : "left");
}

static void fake_subscribe(struct bus *b, const char *room, size_t room_len)
{
    struct fake_bus *fb = fake(b);
    logf_(fb->log, "sub(%.*s) ", (int)room_len, room);
    if (fb->sync_subscribe)
        rooms_on_subscribed(fb->rooms, room, room_len, fb->subscribe_status);
}

static void fake_unsubscribe(struct bus *b, const char *room, size_t room_len)
{
    logf_(fake(b)->log, "unsub(%.*s) ", (int)room_len, room);
}

static void fake_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                      const struct msgid *since, bus_join_fn cb, void *arg)
{
    struct fake_bus *fb = fake(b);
    logf_(fb->log, "join(%.*s,%s,%s", (int)room_len, room, name, add ? "add" : "keep");
    if (since)
        logf_(fb->log, ",since=%llu-%llu", (unsigned long long)since->ms,
              (unsigned long long)since->seq);
    logf_(fb->log, ") ");
    if (fb->sync_join) {
        char name_copy[PROTO_ROOM_MAX + 1];
        snprintf(name_copy, sizeof(name_copy), "%.*s", (int)room_len, room);
        answer_join(cb, arg, name_copy, &fb->join_answer);
    } else if (CHECK_INT(fb->npending, <, 16)) {
        fb->pending[fb->npending].cb = cb;
        fb->pending[fb->npending].arg = arg;
        fb->npending++;
    }
}

static void fake_leave(struct bus *b, const char *room, size_t room_len, const char *name)
{
    logf_(fake(b)->log, "leave(%.*s,%s) ", (int)room_len, room, name);
}

/* rooms uses only these; the rest stay NULL so a stray call crashes. */
static const struct bus_ops fake_ops = {
    .announce = fake_announce,
    .subscribe = fake_subscribe,
    .unsubscribe = fake_unsubscribe,
    .join = fake_join,
    .leave = fake_leave,
};

/* Answers the oldest outstanding join. */
static void answer_next(struct fake_bus *fb, const char *room, struct answer a)
{
    if (!CHECK_INT(fb->npending, >, 0))
        return;
    bus_join_fn cb = fb->pending[0].cb;
    void *arg = fb->pending[0].arg;
    fb->npending--;
    memmove(&fb->pending[0], &fb->pending[1], sizeof(fb->pending[0]) * (size_t)fb->npending);
    answer_join(cb, arg, room, &a);
}

/* --- owners --- */

struct owner {
    struct room_set set;
    const char *name;
    int overflows;
    char log[LOG_MAX];
};

static void owner_deliver(void *ctx, void *owner, struct frame *f)
{
    (void)ctx;
    struct owner *o = owner;
    json_t *j = json_loadb((const char *)frame_data(f), f->len, 0, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) {
        logf_(o->log, "garbage ");
    } else if (strcmp(type, "chat") == 0) {
        logf_(o->log, "chat(%s) ", json_string_value(json_object_get(j, "id")));
    } else if (strcmp(type, "system") == 0) {
        logf_(o->log, "sys(%s) ", json_string_value(json_object_get(j, "content")));
    } else if (strcmp(type, "error") == 0) {
        logf_(o->log, "error(%s) ", json_string_value(json_object_get(j, "code")));
    } else if (strcmp(type, "joined") == 0) {
        logf_(o->log, "joined(%s,%lld,[", json_string_value(json_object_get(j, "room")),
              (long long)json_integer_value(json_object_get(j, "members")));
        json_t *h = json_object_get(j, "history");
        for (size_t i = 0; i < json_array_size(h); i++)
            logf_(o->log, "%s%s", i ? "," : "",
                  json_string_value(json_object_get(json_array_get(h, i), "id")));
        logf_(o->log, "]%s) ", json_is_true(json_object_get(j, "truncated")) ? ",truncated" : "");
    } else {
        logf_(o->log, "%s ", type);
    }
    json_decref(j);
}

static void owner_overflow(void *ctx, void *owner)
{
    (void)ctx;
    ((struct owner *)owner)->overflows++;
}

/* Logged, so a test sees it comes after the answer and its held frames. */
static void owner_join_answered(void *ctx, void *owner)
{
    (void)ctx;
    logf_(((struct owner *)owner)->log, "done ");
}

static const struct rooms_owner_ops owner_ops = {
    .overflow = owner_overflow,
    .join_answered = owner_join_answered,
};

/* --- fixture --- */

static struct fake_bus fb;
static struct rooms rooms;
static struct owner alice, bob;

static void setup(bool sync_subscribe, bool sync_join, size_t held_limit)
{
    memset(&fb, 0, sizeof(fb));
    fb.base.ops = &fake_ops;
    fb.rooms = &rooms;
    fb.sync_subscribe = sync_subscribe;
    fb.sync_join = sync_join;
    fb.join_answer = (struct answer){0, 1, "", false, NULL, false};
    rooms_init(&rooms, &fb.base, &owner_ops, NULL, owner_deliver, NULL, held_limit);
    alice = (struct owner){.name = "alice"};
    bob = (struct owner){.name = "bob"};
}

/* Everyone has left: nothing may be left behind. */
static void teardown(void)
{
    rooms_leave_all(&rooms, &alice.set, false);
    rooms_leave_all(&rooms, &bob.set, false);
    CHECK_INT(fb.npending, ==, 0);
    CHECK_INT(rooms_count(&rooms), ==, 0);
    rooms_free(&rooms);
}

static enum proto_error join(struct owner *o, const char *room, const char *since_text)
{
    struct msgid since;
    if (since_text && !msgid_parse(since_text, strlen(since_text), &since))
        return PROTO_BAD_SINCE;
    return rooms_join(&rooms, &o->set, o, o->name, room, strlen(room), since_text ? &since : NULL);
}

static enum proto_error leave(struct owner *o, const char *room)
{
    return rooms_leave(&rooms, &o->set, room, strlen(room));
}

static bool member(struct owner *o, const char *room)
{
    return rooms_is_member(&o->set, room, strlen(room));
}

/* A chat frame reaching the room from the bus; returns it with one
 * reference kept by the caller when keep is set. */
static struct frame *arrive(const char *room, const char *id, bool keep)
{
    struct frame *f = chat(room, id);
    if (!CHECK(f != NULL))
        return NULL;
    rooms_on_frame(&rooms, room, strlen(room), NULL, f);
    if (keep)
        return f;
    frame_unref(f);
    return NULL;
}

/* A chat frame reaching the room from the bus with its id, as the bus
 * delivers them. */
static void arrive_with_id(const char *room, const char *id_text)
{
    struct msgid id;
    struct frame *f = chat(room, id_text);
    if (CHECK(f != NULL) && CHECK(msgid_parse(id_text, strlen(id_text), &id)))
        rooms_on_frame(&rooms, room, strlen(room), &id, f);
    frame_unref(f);
}

static void arrive_system(const char *room, const char *content)
{
    struct frame *f = proto_system(room, strlen(room), content, 0);
    rooms_on_frame(&rooms, room, strlen(room), NULL, f);
    frame_unref(f);
}

static void subscribed(const char *room, int status)
{
    rooms_on_subscribed(&rooms, room, strlen(room), status);
}

/* --- tests --- */

static void test_subscribe_first_unsubscribe_last(void)
{
    setup(false, false, 1 << 20);
    CHECK_INT(join(&alice, "r", NULL), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "sub(r) ");
    CHECK_INT(rooms_count(&rooms), ==, 1);
    CHECK(!member(&alice, "r"));
    /* Not subscribed yet: nothing to hold, nothing delivered. */
    arrive("r", "1-1", false);
    CHECK_STR(take(alice.log), "");

    subscribed("r", 0);
    CHECK_STR(take(fb.log), "join(r,alice,add) ");
    CHECK(!member(&alice, "r"));
    /* The room is live: a second member joins at once, no new subscription. */
    CHECK_INT(join(&bob, "r", NULL), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "join(r,bob,add) ");

    answer_next(&fb, "r", (struct answer){0, 2, "1-1", false, NULL, false});
    CHECK_STR(take(alice.log), "joined(r,2,[1-1]) done ");
    CHECK_STR(take(fb.log), "pub(r:alice joined the room) ");
    CHECK(member(&alice, "r"));
    CHECK(!member(&bob, "r"));
    answer_next(&fb, "r", (struct answer){0, 2, "1-1", true, NULL, false});
    CHECK_STR(take(bob.log), "joined(r,2,[1-1],truncated) done ");
    CHECK_STR(take(fb.log), "pub(r:bob joined the room) ");
    CHECK(member(&bob, "r"));

    arrive("r", "1-2", false);
    CHECK_STR(take(alice.log), "chat(1-2) ");
    CHECK_STR(take(bob.log), "chat(1-2) ");
    arrive("elsewhere", "1-3", false); /* not a room here: ignored */

    CHECK_INT(leave(&alice, "r"), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "leave(r,alice) pub(r:alice left the room) ");
    CHECK(!member(&alice, "r"));
    CHECK_INT(leave(&alice, "r"), ==, PROTO_NOT_IN_ROOM);
    arrive("r", "1-4", false);
    CHECK_STR(take(alice.log), "");
    CHECK_STR(take(bob.log), "chat(1-4) ");

    CHECK_INT(leave(&bob, "r"), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "leave(r,bob) pub(r:bob left the room) unsub(r) ");
    CHECK_INT(rooms_count(&rooms), ==, 0);
    CHECK_INT(alice.set.count + bob.set.count, ==, 0);
    /* A message still in flight after the last member left goes nowhere. */
    arrive("r", "1-5", false);
    CHECK_STR(take(bob.log), "");
    teardown();
}

static void test_synchronous_bus(void)
{
    setup(true, true, 1 << 20);
    fb.join_answer = (struct answer){0, 1, "5-0,6-0", false, NULL, false};
    CHECK_INT(join(&alice, "部屋", NULL), ==, PROTO_OK);
    /* Everything happened before rooms_join returned. */
    CHECK_STR(take(fb.log), "sub(部屋) join(部屋,alice,add) pub(部屋:alice joined the room) ");
    CHECK_STR(take(alice.log), "joined(部屋,1,[5-0,6-0]) done ");
    CHECK(member(&alice, "部屋"));
    arrive("部屋", "7-0", false);
    CHECK_STR(take(alice.log), "chat(7-0) ");
    CHECK_INT(leave(&alice, "部屋"), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "leave(部屋,alice) pub(部屋:alice left the room) unsub(部屋) ");
    teardown();
}

static void test_held_frames_merged(void)
{
    setup(true, false, 1 << 20);
    join(&alice, "r", NULL);
    CHECK_STR(take(fb.log), "sub(r) join(r,alice,add) ");
    /* While the history is fetched, frames are held: some will be in the
     * history, some are newer. */
    struct frame *kept = arrive("r", "1-1", true);
    arrive("r", "1-2", false);
    arrive("r", "1-3", false);
    arrive_system("r", "carol joined the room");
    arrive("r", "1-4", false);
    arrive("r", "2-0", false);
    CHECK_STR(take(alice.log), "");
    CHECK(!member(&alice, "r"));
    CHECK_INT(kept->refs, ==, 2);
    answer_next(&fb, "r", (struct answer){0, 2, "1-1,1-2,1-3", false, NULL, false});
    CHECK_STR(take(alice.log),
              "joined(r,2,[1-1,1-2,1-3]) sys(carol joined the room) chat(1-4) chat(2-0) done ");
    CHECK_INT(kept->refs, ==, 1); /* held references dropped */
    frame_unref(kept);
    arrive("r", "2-1", false);
    CHECK_STR(take(alice.log), "chat(2-1) ");

    /* The history may reach past what was held: nothing twice. */
    join(&bob, "r", NULL);
    arrive("r", "2-2", false);
    arrive("r", "2-3", false);
    answer_next(&fb, "r", (struct answer){0, 2, "2-1,2-2,2-3", false, NULL, false});
    CHECK_STR(take(bob.log), "joined(r,2,[2-1,2-2,2-3]) done ");
    CHECK_STR(take(alice.log), "chat(2-2) chat(2-3) ");
    /* Ids compare as numbers: 10-0 is newer than 9-5. */
    leave(&bob, "r");
    join(&bob, "r", NULL);
    arrive("r", "9-5", false);
    arrive("r", "10-0", false);
    answer_next(&fb, "r", (struct answer){0, 2, "9-5", false, NULL, false});
    CHECK_STR(take(bob.log), "joined(r,2,[9-5]) chat(10-0) done ");
    teardown();
}

static void test_since_in_the_future(void)
{
    setup(true, false, 1 << 20);
    /* A since beyond the room's newest id must not hide what comes next. */
    join(&alice, "r", "99999999999999-0");
    answer_next(&fb, "r", (struct answer){0, 1, "", false, "1-2", false});
    /* It belongs to a history that no longer exists: the client is told. */
    CHECK_STR(take(alice.log), "joined(r,1,[],truncated) " LOST "done ");
    arrive_with_id("r", "1-3");
    CHECK_STR(take(alice.log), "chat(1-3) ");
    teardown();
}

static void test_since_from_a_lost_history(void)
{
    setup(true, false, 1 << 20);
    /* The bus says since is not in the room's history any more: what it
     * has after their common part comes, with ids lower than since, and
     * so do the messages after it. */
    join(&alice, "r", "5-0");
    answer_next(&fb, "r", (struct answer){0, 1, "3-1,3-2", false, "3-2", true});
    CHECK_STR(take(alice.log), "joined(r,1,[3-1,3-2],truncated) " LOST "done ");
    arrive_with_id("r", "3-2");
    arrive_with_id("r", "3-3");
    CHECK_STR(take(alice.log), "chat(3-3) ");
    teardown();
}

static void test_history_lost_while_joined(void)
{
    setup(true, false, 1 << 20);
    join(&alice, "r", NULL);
    answer_next(&fb, "r", (struct answer){0, 1, "", false, "0-0", false});
    take(alice.log);
    arrive_with_id("r", "9-0");
    arrive_with_id("r", "9-0"); /* seen: not again */
    CHECK_STR(take(alice.log), "chat(9-0) ");
    /* The replay after a resubscribe found the history lost: the member is
     * told, and ids lower than what it saw come through. */
    rooms_on_history_lost(&rooms, "r", 1);
    arrive_with_id("r", "4-0");
    CHECK_STR(take(alice.log), LOST "chat(4-0) ");
    rooms_on_history_lost(&rooms, "nowhere", 7); /* no local members: nothing */
    teardown();
}

static void test_held_frames_with_since(void)
{
    setup(true, false, 1 << 20);
    /* since, and nothing newer in the history: held frames up to since
     * are what the client already has. */
    join(&alice, "r", "1-3");
    CHECK_STR(take(fb.log), "sub(r) join(r,alice,add,since=1-3) ");
    arrive("r", "1-2", false);
    arrive("r", "1-3", false);
    arrive("r", "1-4", false);
    answer_next(&fb, "r", (struct answer){0, 1, "", false, NULL, false});
    CHECK_STR(take(alice.log), "joined(r,1,[]) chat(1-4) done ");

    /* No since and an empty history: everything held is new. */
    join(&bob, "r", NULL);
    arrive("r", "1-5", false);
    answer_next(&fb, "r", (struct answer){0, 2, "", false, NULL, false});
    CHECK_STR(take(bob.log), "joined(r,2,[]) chat(1-5) done ");
    teardown();
}

/* A session serialises its requests, so only a disconnect (leave_all)
 * can come while its join is in flight (rooms.h). */
static void disconnect(struct owner *o)
{
    rooms_leave_all(&rooms, &o->set, true);
}

static void test_disconnect_while_join_in_flight(void)
{
    setup(true, false, 1 << 20);
    join(&alice, "r", NULL);
    take(fb.log);
    struct frame *held = arrive("r", "1-1", true);
    disconnect(&alice);
    /* The presence the join registers is undone; nothing was announced. */
    CHECK_STR(take(fb.log), "leave(r,alice) unsub(r) ");
    CHECK(!member(&alice, "r"));
    CHECK_INT(alice.set.count, ==, 0);
    CHECK_INT(rooms_count(&rooms), ==, 0);
    CHECK_INT(leave(&alice, "r"), ==, PROTO_NOT_IN_ROOM);
    /* The late answer reaches nobody, not even as join_answered. */
    answer_next(&fb, "r", (struct answer){0, 1, "1-0", false, NULL, false});
    CHECK_STR(take(alice.log), "");
    CHECK_STR(take(fb.log), "");
    CHECK_INT(held->refs, ==, 1);
    frame_unref(held);

    /* Same with another member staying: the room stays subscribed. */
    fb.sync_join = true;
    join(&bob, "r", NULL);
    fb.sync_join = false;
    join(&alice, "r", NULL);
    take(fb.log);
    disconnect(&alice);
    CHECK_STR(take(fb.log), "leave(r,alice) ");
    answer_next(&fb, "r", (struct answer){-1, 0, NULL, false, NULL, false}); /* a failure, too */
    CHECK_STR(take(alice.log), "");
    CHECK_STR(take(fb.log), "");
    /* A new join on the same set while the old answer is still out is a
     * new membership that the old answer does not touch. */
    join(&alice, "r", NULL);
    disconnect(&alice);
    join(&alice, "r", NULL);
    CHECK_STR(take(fb.log), "join(r,alice,add) leave(r,alice) join(r,alice,add) ");
    answer_next(&fb, "r", (struct answer){0, 2, "", false, NULL, false}); /* the orphan's */
    CHECK_STR(take(alice.log), "");
    CHECK(!member(&alice, "r"));
    answer_next(&fb, "r", (struct answer){0, 2, "", false, NULL, false});
    CHECK_STR(take(alice.log), "joined(r,2,[]) done ");
    CHECK(member(&alice, "r"));
    teardown();
}

static void test_disconnect_while_subscribing(void)
{
    setup(false, false, 1 << 20);
    join(&alice, "r", NULL);
    disconnect(&alice);
    /* No join was sent, so there is no presence to undo. */
    CHECK_STR(take(fb.log), "sub(r) unsub(r) ");
    subscribed("r", 0); /* the late confirmation finds no room */
    CHECK_STR(take(fb.log), "");
    CHECK_STR(take(alice.log), "");
    teardown();
}

static void test_join_failures(void)
{
    /* The subscription cannot be made. */
    setup(false, false, 1 << 20);
    join(&alice, "r", NULL);
    join(&bob, "r", NULL);
    take(fb.log);
    subscribed("r", -1);
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    CHECK_STR(take(bob.log), "error(unavailable) done ");
    CHECK_STR(take(fb.log), "unsub(r) ");
    CHECK(!member(&alice, "r"));
    CHECK_INT(alice.set.count + bob.set.count, ==, 0);
    CHECK_INT(rooms_count(&rooms), ==, 0);
    teardown();

    /* The join itself fails. The bus's registration stands whatever the
     * outcome (bus.h), so it is withdrawn; the client may try again. */
    setup(true, false, 1 << 20);
    join(&alice, "r", NULL);
    take(fb.log);
    answer_next(&fb, "r", (struct answer){-1, 0, NULL, false, NULL, false});
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    CHECK_STR(take(fb.log), "leave(r,alice) unsub(r) ");
    CHECK(!member(&alice, "r"));
    CHECK_INT(leave(&alice, "r"), ==, PROTO_NOT_IN_ROOM);
    fb.sync_join = true;
    CHECK_INT(join(&alice, "r", NULL), ==, PROTO_OK);
    CHECK_STR(take(alice.log), "joined(r,1,[]) done ");
    teardown();

    /* A failing synchronous bus: everything inside rooms_join. */
    setup(true, true, 1 << 20);
    fb.join_answer = (struct answer){-1, 0, NULL, false, NULL, false};
    CHECK_INT(join(&alice, "r", NULL), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "sub(r) join(r,alice,add) leave(r,alice) unsub(r) ");
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    CHECK_INT(rooms_count(&rooms), ==, 0);
    fb.subscribe_status = -1;
    CHECK_INT(join(&alice, "r", NULL), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "sub(r) unsub(r) ");
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    teardown();

    /* Two members waiting for the subscription, whose joins then fail at
     * once: the second failure removes the room in the middle of the walk
     * over its members. */
    setup(false, true, 1 << 20);
    fb.join_answer = (struct answer){-1, 0, NULL, false, NULL, false};
    join(&alice, "r", NULL);
    join(&bob, "r", NULL);
    take(fb.log);
    subscribed("r", 0);
    CHECK_STR(take(fb.log),
              "join(r,bob,add) leave(r,bob) join(r,alice,add) leave(r,alice) unsub(r) ");
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    CHECK_STR(take(bob.log), "error(unavailable) done ");
    CHECK_INT(rooms_count(&rooms), ==, 0);
    teardown();
}

static void test_joined_cannot_be_built(void)
{
    /* A room name jansson refuses (not UTF-8; proto never lets one through)
     * makes building `joined` fail after the bus has registered presence.
     * The membership is dropped and the registration withdrawn. */
    setup(true, true, 1 << 20);
    CHECK_INT(join(&alice, "\xff", NULL), ==, PROTO_OK);
    CHECK_STR(take(alice.log), "error(unavailable) done ");
    CHECK(!member(&alice, "\xff"));
    CHECK_STR(take(fb.log), "sub(\xff) join(\xff,alice,add) leave(\xff,alice) unsub(\xff) ");
    teardown();
}

static void test_rejoin(void)
{
    setup(true, true, 1 << 20);
    join(&alice, "r", NULL);
    take(fb.log);
    take(alice.log);
    /* Joining again answers joined again, with since, and no announcement. */
    fb.sync_join = false;
    CHECK_INT(join(&alice, "r", "1-2"), ==, PROTO_OK);
    CHECK_STR(take(fb.log), "join(r,alice,keep,since=1-2) ");
    CHECK(member(&alice, "r")); /* still a member meanwhile */
    /* Frames meanwhile are held and merged, not sent twice. */
    arrive("r", "1-3", false);
    arrive("r", "1-4", false);
    CHECK_STR(take(alice.log), "");
    answer_next(&fb, "r", (struct answer){0, 1, "1-3", false, NULL, false});
    CHECK_STR(take(alice.log), "joined(r,1,[1-3]) chat(1-4) done ");
    CHECK_STR(take(fb.log), "");
    CHECK_INT(alice.set.count, ==, 1);
    CHECK_INT(rooms_count(&rooms), ==, 1);

    /* A failed re-join keeps the membership and lets the held frames go. */
    join(&alice, "r", NULL);
    take(fb.log);
    arrive("r", "1-5", false);
    answer_next(&fb, "r", (struct answer){-1, 0, NULL, false, NULL, false});
    CHECK_STR(take(alice.log), "error(unavailable) chat(1-5) done ");
    CHECK(member(&alice, "r"));
    arrive("r", "1-6", false);
    CHECK_STR(take(alice.log), "chat(1-6) ");

    /* Disconnecting during a re-join is a real leave: announced. */
    join(&alice, "r", NULL);
    take(fb.log);
    disconnect(&alice);
    CHECK_STR(take(fb.log), "leave(r,alice) pub(r:alice left the room) unsub(r) ");
    answer_next(&fb, "r", (struct answer){0, 1, "", false, NULL, false});
    CHECK_STR(take(alice.log), "");
    teardown();
}

static void test_is_member(void)
{
    setup(true, true, 1 << 20);
    CHECK(!member(&alice, "r"));
    join(&alice, "r", NULL);
    join(&alice, "r2", NULL);
    CHECK(member(&alice, "r"));
    CHECK(member(&alice, "r2"));
    CHECK(!member(&alice, ""));                  /* neither a prefix ... */
    CHECK(!member(&alice, "r22"));               /* ... nor an extension */
    CHECK(rooms_is_member(&alice.set, "r2", 1)); /* the length bounds the name: "r" */
    CHECK(!member(&bob, "r"));                   /* per owner */
    CHECK_INT(alice.set.count, ==, 2);
    CHECK_INT(rooms_count(&rooms), ==, 2);
    /* Joining before the answer is not membership yet. */
    fb.sync_join = false;
    join(&bob, "r", NULL);
    CHECK(!member(&bob, "r"));
    answer_next(&fb, "r", (struct answer){0, 2, "", false, NULL, false});
    CHECK(member(&bob, "r"));
    leave(&alice, "r2");
    CHECK(!member(&alice, "r2"));
    CHECK(member(&alice, "r"));
    teardown();
}

static void test_held_limit(void)
{
    struct frame *probe = chat("r", "1-1");
    size_t one = probe->len;
    frame_unref(probe);
    /* Room for three frames. */
    setup(true, false, 3 * one + one / 2);
    join(&alice, "r", NULL);
    arrive("r", "1-1", false);
    arrive("r", "1-2", false);
    arrive("r", "1-3", false);
    CHECK_INT(alice.overflows, ==, 0);
    arrive("r", "1-4", false);
    CHECK_INT(alice.overflows, ==, 1);
    /* What fit is still delivered; the owner decides what overflow means. */
    answer_next(&fb, "r", (struct answer){0, 1, "", false, NULL, false});
    CHECK_STR(take(alice.log), "joined(r,1,[]) chat(1-1) chat(1-2) chat(1-3) done ");
    /* Once joined, frames go straight through whatever their number. */
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof(id), "2-%d", i);
        arrive("r", id, false);
    }
    CHECK_INT(alice.overflows, ==, 1);
    teardown();
}

static void test_leave_all(void)
{
    setup(false, false, 1 << 20);
    fb.sync_join = true;
    join(&alice, "r1", NULL);
    subscribed("r1", 0);    /* joined */
    join(&bob, "r1", NULL); /* bob keeps r1 alive */
    fb.sync_join = false;
    join(&alice, "r2", NULL);
    subscribed("r2", 0);      /* join in flight */
    join(&alice, "r3", NULL); /* still subscribing */
    take(fb.log);
    take(alice.log);
    CHECK_INT(alice.set.count, ==, 3);
    rooms_leave_all(&rooms, &alice.set, true);
    CHECK_STR(take(fb.log),
              "unsub(r3) leave(r2,alice) unsub(r2) leave(r1,alice) pub(r1:alice left the room) ");
    CHECK_INT(alice.set.count, ==, 0);
    CHECK(alice.set.head == NULL);
    CHECK_INT(rooms_count(&rooms), ==, 1);
    answer_next(&fb, "r2", (struct answer){0, 1, "", false, NULL, false});
    CHECK_STR(take(alice.log), "");
    /* Without telling: presence is still withdrawn, no system frame. */
    fb.sync_join = true;
    join(&alice, "r1", NULL);
    take(fb.log);
    rooms_leave_all(&rooms, &alice.set, false);
    CHECK_STR(take(fb.log), "leave(r1,alice) ");
    teardown();
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_subscribe_first_unsubscribe_last);
    RUN(test_synchronous_bus);
    RUN(test_held_frames_merged);
    RUN(test_held_frames_with_since);
    RUN(test_since_in_the_future);
    RUN(test_disconnect_while_join_in_flight);
    RUN(test_disconnect_while_subscribing);
    RUN(test_join_failures);
    RUN(test_joined_cannot_be_built);
    RUN(test_rejoin);
    RUN(test_is_member);
    RUN(test_held_limit);
    RUN(test_since_from_a_lost_history);
    RUN(test_history_lost_while_joined);
    RUN(test_leave_all);
    return CHECK_DONE("test_rooms");
}
