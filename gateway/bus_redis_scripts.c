/* The Redis bus's scripts: key names, loading the Lua scripts (written in
 * gateway/lua/ and embedded at build time) when the command connection
 * comes up, calling them by SHA1, and what every answer goes through: an
 * unknown SHA1 (Redis's script cache was flushed) is retried with EVAL,
 * which caches the script again, a redirection under Redis Cluster is
 * followed, and errors are logged here once. Under Redis Cluster plain
 * commands go the same way (send_command), so that none is lost to a
 * slot that moved. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "clock.h"
#include "cluster_slots.h"
#include "log.h"

static const char *const script_src[S_COUNT_ALL] = {
    lua_chat,     lua_room, lua_leave, lua_count,       lua_reset,
    lua_announce, lua_reap, lua_api,   lua_forget_room, lua_reap_pick};
/* Their names, for the log: gateway/lua/<name>.lua. */
static const char *const script_name[S_COUNT_ALL] = {"chat",        "room",     "leave", "count",
                                                     "reset",       "announce", "reap",  "api",
                                                     "forget_room", "reap_pick"};
/* How many of a script's arguments are KEYS. */
static const int keys_of[S_COUNT_ALL] = {2, 5, 2, 3, 1, 1, 2, 2, 2, 2};
/* Failed requests logged: one line per this long at most. */
#define FAILURE_LOG_MS 1000

/* The hash tag of the keys that belong to no room under Redis Cluster:
 * they live together on the node of its slot. */
#define GLOBAL_TAG "{global}"

size_t make_key_in(char *buf, const struct rbus *rb, const char *room, size_t room_len,
                   const char *kind, const char *s, size_t len)
{
    char tag[sizeof(GLOBAL_TAG) > CLUSTER_TAG_LEN ? sizeof(GLOBAL_TAG) : CLUSTER_TAG_LEN + 1] = "";
    if (rb->cluster && room)
        cluster_room_tag(tag, room, room_len);
    else if (rb->cluster)
        memcpy(tag, GLOBAL_TAG, sizeof(GLOBAL_TAG));
    /* Names hold no NUL (control characters are refused), so %.*s is exact. */
    int n =
        snprintf(buf, KEY_MAX, "%s%s%s%.*s", rb->base.cfg->redis_prefix, kind, tag, (int)len, s);
    return n < KEY_MAX ? (size_t)n : KEY_MAX - 1;
}

size_t make_key(char *buf, const struct rbus *rb, const char *kind, const char *s, size_t len)
{
    return make_key_in(buf, rb, NULL, 0, kind, s, len);
}

size_t room_key(char *buf, const struct rbus *rb, const char *kind, const char *room, size_t len)
{
    return make_key_in(buf, rb, room, len, kind, room, len);
}

int events_args(const struct rbus *rb, const char **argv, size_t *lens, int i)
{
    argv[i] = rb->events, lens[i] = rb->events_len;
    argv[i + 1] = rb->events_cap, lens[i + 1] = strlen(rb->events_cap);
    return i + 2;
}

static void on_script_loaded(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    redisReply *reply = r;
    size_t s = (size_t)(uintptr_t)privdata;
    /* No reply: the connection is going, and its disconnect says so (under
     * Redis Cluster a primary lost alone does not restart the link). */
    if (!rb || !reply)
        return;
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        rb->link_step(rb, reply->type == REDIS_REPLY_ERROR ? reply->str : "could not load scripts");
        return;
    }
    memcpy(rb->sha[s], reply->str, 41);
    rb->scripts_pending--;
    rb->link_step(rb, NULL);
}

void scripts_load(struct rbus *rb, redisAsyncContext *c)
{
    /* The same text has the same SHA1 on every node: one array serves. */
    rb->scripts_pending += S_COUNT_ALL;
    for (size_t s = 0; s < S_COUNT_ALL; s++) {
        const char *argv[3] = {"SCRIPT", "LOAD", script_src[s]};
        size_t lens[3] = {6, 4, strlen(script_src[s])};
        redisAsyncCommandArgv(c, on_script_loaded, (void *)(uintptr_t)s, 3, argv, lens);
    }
}

static void on_reply(redisAsyncContext *c, void *r, void *privdata);

/* Sends q on c, or on the connection of its key's node when c is NULL: a
 * command as it is, a script with EVALSHA, or EVAL (which also caches the
 * script) when the sha is unknown. */
static int send_call(struct rbus *rb, struct request *q, bool eval, redisAsyncContext *c)
{
    const char *argv[3 + MAX_ARGS];
    size_t lens[3 + MAX_ARGS];
    char nkeys[4];
    int n = 0;
    if (!q->command) {
        argv[0] = eval ? "EVAL" : "EVALSHA";
        argv[1] = eval ? script_src[q->script] : rb->sha[q->script];
        snprintf(nkeys, sizeof(nkeys), "%d", keys_of[q->script]);
        argv[2] = nkeys;
        for (; n < 3; n++)
            lens[n] = strlen(argv[n]);
    }
    for (int i = 0; i < q->argc; i++) {
        argv[n + i] = q->argv[i];
        lens[n + i] = q->argvlen[i];
    }
    int key = q->command; /* a command's name comes before its key */
    if (!c)
        c = cmd_for(rb, q->argv[key], q->argvlen[key]);
    if (!c || redisAsyncCommandArgv(c, on_reply, q, n + q->argc, argv, lens) != REDIS_OK)
        return -1;
    return 0;
}

/* A request's first send: behind its slot's waiting requests, if any. */
static int send_new(struct rbus *rb, struct request *q)
{
    if (rb->cluster && cluster_hold(rb, q))
        return 0;
    return send_call(rb, q, false, NULL);
}

int send_script(struct rbus *rb, struct request *q)
{
    return send_new(rb, q);
}

int send_request_to(struct rbus *rb, struct request *q, redisAsyncContext *c)
{
    return send_call(rb, q, false, c);
}

/* A request with copies of argv, or NULL (logged). */
static struct request *request_alloc(struct rbus *rb, int argc, const char **argv,
                                     const size_t *lens, request_done_fn done)
{
    if (argc > MAX_ARGS) { /* a caller's mistake: fail the call rather than overrun */
        log_error("redis: a request with %d arguments, more than %d", argc, MAX_ARGS);
        return NULL;
    }
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens[i];
    struct request *q = malloc(sizeof(*q) + total);
    if (!q) {
        log_error("redis: out of memory: a request was not sent");
        return NULL;
    }
    memset(q, 0, sizeof(*q));
    q->rb = rb;
    q->done = done;
    q->argc = argc;
    char *p = q->data;
    for (int i = 0; i < argc; i++) {
        memcpy(p, argv[i], lens[i]);
        q->argv[i] = p;
        q->argvlen[i] = lens[i];
        p += lens[i];
    }
    return q;
}

struct request *request_new(struct rbus *rb, enum script s, int argc, const char **argv,
                            const size_t *lens, request_done_fn done)
{
    struct request *q = request_alloc(rb, argc, argv, lens, done);
    if (q)
        q->script = s;
    return q;
}

/* Completes a request with a failure (reply NULL) or its reply. */
static void complete(struct request *q, const redisReply *reply)
{
    if (q->done)
        q->done(q, reply);
}

void request_fail(struct request *q)
{
    complete(q, NULL);
    free(q);
}

/* An error answer: one line, unless one was written less than
 * FAILURE_LOG_MS ago (then it is counted, and the next line says so). */
static void log_failure(struct rbus *rb, const struct request *q, const char *err)
{
    int64_t now = clock_mono_ms();
    if (rb->failure_logged_ms && now - rb->failure_logged_ms < FAILURE_LOG_MS) {
        rb->failures_unlogged++;
        return;
    }
    char more[80] = "";
    if (rb->failures_unlogged)
        snprintf(more, sizeof(more), " (and %u more failures not logged since the last line)",
                 rb->failures_unlogged);
    if (q->command)
        log_error("redis: %.*s failed: %s%s", (int)q->argvlen[0], q->argv[0], err, more);
    else
        log_error("redis: script %s failed: %s%s", script_name[q->script], err, more);
    rb->failure_logged_ms = now;
    rb->failures_unlogged = 0;
}

static void on_reply(redisAsyncContext *c, void *r, void *privdata)
{
    struct request *q = privdata;
    struct rbus *rb = q->rb;
    redisReply *reply = r;
    if (reply)
        rb->replies_since_beat++;
    if (reply && rb->cluster)
        cluster_heard(rb, c);
    bool error = reply && reply->type == REDIS_REPLY_ERROR;
    if (error && !q->command && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        send_call(rb, q, true, c) == 0) {
        log_warn("redis: script cache was flushed, loading it again");
        return;
    }
    if (error && rb->cluster && cluster_redirect(rb, q, reply->str, reply->len))
        return;
    if (error)
        log_failure(rb, q, reply->str);
    /* A primary turned replica (a failover, or a DNS name that moved)
     * refuses every write from now on: leave it and find the primary. */
    bool readonly = error && strstr(reply->str, "READONLY");
    complete(q, reply && !error ? reply : NULL);
    free(q);
    if (readonly && ready(rb))
        rb->link_step(rb, "the server is a read-only replica now (READONLY)");
}

void fire_and_forget(struct rbus *rb, enum script s, int argc, const char **argv,
                     const size_t *lens, request_done_fn done)
{
    struct request *q = request_new(rb, s, argc, argv, lens, done);
    if (q && send_script(rb, q) < 0)
        request_fail(q);
}

int send_command(struct rbus *rb, int argc, const char **argv, const size_t *lens,
                 request_done_fn done, void *arg)
{
    if (!rb->cluster && !done) {
        /* One Redis redirects nothing: the command goes as it always
         * did, nothing copied, its answer unread. */
        redisAsyncContext *c = cmd_for(rb, argv[1], lens[1]);
        return c && redisAsyncCommandArgv(c, NULL, NULL, argc, argv, lens) == REDIS_OK ? 0 : -1;
    }
    struct request *q = request_alloc(rb, argc, argv, lens, done);
    if (!q)
        return -1;
    q->command = true;
    q->arg = arg;
    if (send_new(rb, q) < 0) {
        free(q);
        return -1;
    }
    return 0;
}
