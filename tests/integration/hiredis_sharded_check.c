/* Checks deploy/hiredis-patches/0001-async-sharded-pubsub.patch against a
 * real redis-server (sharded pub/sub works on a standalone server too):
 * with hiredis's async API on libevent, the gateway's stack, one connection
 * subscribes channel "x" with SUBSCRIBE and shard channel "x" with
 * SSUBSCRIBE (two subscriptions: the namespaces are apart), another
 * publishes to both, and each message must reach its own callback; then
 * SUNSUBSCRIBE must end the shard subscription alone. Unpatched hiredis
 * aborts on the first smessage.
 *
 * Usage: hiredis_sharded_check PORT [3]   (3: RESP3, messages as pushes)
 * Prints "ok" and exits 0, or says what went wrong and exits 1.
 *
 *        hiredis_sharded_check PORT hold CHANNEL
 * subscribes the shard channel CHANNEL alone, prints "subscribed" and waits
 * (up to a minute) for Redis to end the subscription by itself, as a
 * cluster node does when the channel's slot leaves it: prints "ok" after
 * that sunsubscribe, and a smessage that came before it is printed as
 * "smessage PAYLOAD". */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#define TIMEOUT_S 5
#define HOLD_TIMEOUT_S 60

/* What the subscriber has seen so far; the steps below advance on it. */
static struct {
    struct event_base *base;
    redisAsyncContext *sub, *pub;
    int confirmed;      /* subscribe + ssubscribe confirmations */
    int plain, sharded; /* messages on each callback */
    bool shard_gone;    /* sunsubscribe confirmed */
    bool finished;      /* freeing on purpose: disconnects are expected */
    const char *failure;
} t;

static void fail(const char *why)
{
    if (!t.failure)
        t.failure = why;
    event_base_loopbreak(t.base);
}

static bool is(const redisReply *r, size_t i, const char *s)
{
    return r->elements > i && r->element[i]->type == REDIS_REPLY_STRING &&
           strcmp(r->element[i]->str, s) == 0;
}

static void publish(const char *verb, const char *payload)
{
    redisAsyncCommand(t.pub, NULL, NULL, "%s x %s", verb, payload);
}

/* Once both subscriptions are confirmed: one message each way. */
static void confirmed(void)
{
    if (++t.confirmed == 2) {
        publish("PUBLISH", "plain");
        publish("SPUBLISH", "sharded");
    }
}

static bool pubsub_reply(const redisReply *r)
{
    return r && (r->type == REDIS_REPLY_ARRAY || r->type == REDIS_REPLY_PUSH) && r->elements >= 3;
}

static void on_plain(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)c, (void)privdata;
    const redisReply *r = reply;
    if (!pubsub_reply(r))
        return; /* the connection is going away */
    if (is(r, 0, "subscribe")) {
        confirmed();
    } else if (is(r, 0, "message") && is(r, 2, "plain")) {
        t.plain++;
    } else if (is(r, 0, "message") && is(r, 2, "after")) {
        /* The plain subscription outlived the shard one's end. */
        if (t.shard_gone && t.plain == 1 && t.sharded == 1)
            event_base_loopbreak(t.base);
        else
            fail("message after SUNSUBSCRIBE came out of order");
    } else {
        fail("the channel's callback got a reply of the shard channel");
    }
}

static void on_sharded(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)c, (void)privdata;
    const redisReply *r = reply;
    if (!pubsub_reply(r))
        return;
    if (is(r, 0, "ssubscribe")) {
        confirmed();
    } else if (is(r, 0, "smessage") && is(r, 2, "sharded")) {
        t.sharded++;
        redisAsyncCommand(t.sub, NULL, NULL, "SUNSUBSCRIBE x");
    } else if (is(r, 0, "sunsubscribe")) {
        t.shard_gone = true;
        /* The shard channel has no subscriber left: this SPUBLISH reaches
         * nobody, and the PUBLISH after it only the plain callback. */
        publish("SPUBLISH", "sharded-after");
        publish("PUBLISH", "after");
    } else {
        fail("the shard channel's callback got a reply of the channel");
    }
}

/* hold: the server's sunsubscribe ends the run. */
static void on_held(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)c, (void)privdata;
    const redisReply *r = reply;
    if (!pubsub_reply(r))
        return;
    if (is(r, 0, "ssubscribe")) {
        printf("subscribed\n");
    } else if (is(r, 0, "smessage") && r->element[2]->type == REDIS_REPLY_STRING) {
        printf("smessage %s\n", r->element[2]->str);
    } else if (is(r, 0, "sunsubscribe")) {
        t.shard_gone = true;
        event_base_loopbreak(t.base);
    } else {
        fail("unexpected reply on the held shard channel");
    }
    fflush(stdout);
}

static void on_hello(redisAsyncContext *c, void *reply, void *privdata)
{
    (void)privdata;
    const redisReply *r = reply;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        fail("HELLO 3 refused");
        return;
    }
    redisAsyncCommand(c, on_plain, NULL, "SUBSCRIBE x");
    redisAsyncCommand(c, on_sharded, NULL, "SSUBSCRIBE x");
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    (void)status;
    if (t.finished)
        return;
    if (c == t.sub)
        t.sub = NULL;
    else
        t.pub = NULL;
    fail(c->errstr[0] ? c->errstr : "disconnected");
}

static void timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    fail("timed out");
}

static redisAsyncContext *open_one(int port)
{
    redisAsyncContext *c = redisAsyncConnect("127.0.0.1", port);
    if (!c || c->err) {
        fprintf(stderr, "cannot connect: %s\n", c ? c->errstr : "out of memory");
        exit(1);
    }
    redisLibeventAttach(c, t.base);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [3]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    bool resp3 = argc > 2 && strcmp(argv[2], "3") == 0;
    bool hold = argc > 3 && strcmp(argv[2], "hold") == 0;
    t.base = event_base_new();
    t.sub = open_one(port);
    t.pub = open_one(port);
    if (hold) {
        redisAsyncCommand(t.sub, on_held, NULL, "SSUBSCRIBE %s", argv[3]);
    } else if (resp3) {
        redisAsyncCommand(t.sub, on_hello, NULL, "HELLO 3");
    } else {
        redisAsyncCommand(t.sub, on_plain, NULL, "SUBSCRIBE x");
        redisAsyncCommand(t.sub, on_sharded, NULL, "SSUBSCRIBE x");
    }
    struct event *timer = evtimer_new(t.base, timeout, NULL);
    struct timeval tv = {hold ? HOLD_TIMEOUT_S : TIMEOUT_S, 0};
    evtimer_add(timer, &tv);
    event_base_dispatch(t.base);
    if (!t.failure && (!t.shard_gone || (!hold && !(t.plain == 1 && t.sharded == 1))))
        t.failure = "the loop ended early";
    /* Freeing runs the callbacks with NULL replies: they ignore them. */
    t.finished = true;
    if (t.sub)
        redisAsyncFree(t.sub);
    if (t.pub)
        redisAsyncFree(t.pub);
    event_free(timer);
    event_base_free(t.base);
    if (t.failure) {
        fprintf(stderr, "%s (plain %d, sharded %d)\n", t.failure, t.plain, t.sharded);
        return 1;
    }
    puts("ok");
    return 0;
}
