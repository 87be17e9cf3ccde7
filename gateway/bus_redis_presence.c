/* The Redis bus's presence and counts: who is in which room (registered,
 * withdrawn, and registered again after an outage), the names of a room,
 * the cluster's client count, the merge of announcements across gateways,
 * and the cleanup after gateways that died without withdrawing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

/* A gateway that missed heartbeats this long is gone from counts and
 * presence. */
#define GATEWAY_TTL_MS 15000
/* Work one call of the reap script may do: rooms plus presence entries
 * looked at. A dead gateway with more is cleaned up over several calls, so
 * that no call holds Redis for long. */
#define REAP_BUDGET "500"

/* The announce script's answer: publish the cluster's merged batch, or
 * ask again once the scope's interval is over. */
static void announced(struct rbus *rb, const char *room, size_t room_len, const redisReply *r)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_INTEGER)
        return;
    if (r->element[0]->integer == 0) {
        if (r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer > 0 &&
            !rb->closing)
            announcer_again(&rb->base.announcer, room, room_len);
        return;
    }
    if (r->elements != 5)
        return;
    struct announce_batch b;
    memset(&b, 0, sizeof(b));
    struct announce_tally *tallies[2] = {&b.arrived, &b.departed};
    for (int t = 0; t < 2; t++) {
        const redisReply *count = r->element[1 + 2 * t], *names = r->element[2 + 2 * t];
        if (count->type != REDIS_REPLY_INTEGER || count->integer <= 0 ||
            names->type != REDIS_REPLY_STRING)
            continue;
        unsigned long left = (unsigned long)count->integer;
        for (const char *p = names->str, *end = names->str + names->len; p < end && left;) {
            const char *tab = memchr(p, '\t', (size_t)(end - p));
            size_t len = tab ? (size_t)(tab - p) : (size_t)(end - p);
            announce_tally_add(tallies[t], p, len);
            left--;
            p += len + 1;
        }
        tallies[t]->count += left;
    }
    struct frame *f[2];
    for (size_t i = 0, n = announce_frames(room, room_len, &b, clock_wall_ms(), f); i < n; i++) {
        redis_publish_frame(&rb->base, room, room_len, f[i]);
        frame_unref(f[i]);
    }
}

/* The answer of the count and reap scripts: {integer, second_type}. */
static bool is_pair(const redisReply *r, int second_type)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == second_type;
}

static void send_leave(struct rbus *rb, const char *room, size_t room_len, const char *name)
{
    char pres[KEY_MAX], pnames[KEY_MAX], field[200];
    const char *argv[7] = {pres, pnames, field, name, room};
    size_t lens[7];
    lens[0] = room_key(pres, rb, "presence:", room, room_len);
    lens[1] = room_key(pnames, rb, "pnames:", room, room_len);
    lens[2] = (size_t)snprintf(field, sizeof(field), "%s\t%s", rb->base.cfg->id, name);
    lens[3] = strlen(name);
    lens[4] = room_len;
    fire_and_forget(rb, S_LEAVE, events_args(rb, argv, lens, 5), argv, lens, NULL);
}

void redis_leave(struct bus *b, const char *room, size_t room_len, const char *name)
{
    struct rbus *rb = (struct rbus *)b;
    presence_remove(&rb->presence, room, room_len, name);
    if (!ready(rb))
        return; /* a reconnect registers what is left anew */
    send_leave(rb, room, room_len, name);
    if (!presence_room(&rb->presence, room, room_len)) {
        /* Its last local member left: out of this gateway's room set, which
         * would otherwise hold every room it ever had until it reconnects.
         * Behind the leave on the same connection, and before any later
         * join's SADD. */
        room_set_command(rb, "SREM", room, room_len);
    }
}

void room_set_command(struct rbus *rb, const char *verb, const char *room, size_t room_len)
{
    char gwrooms[KEY_MAX];
    const char *id = rb->base.cfg->id;
    const char *argv[3] = {verb, gwrooms, room};
    size_t lens[3] = {strlen(verb), make_key(gwrooms, rb, "gwrooms:", id, strlen(id)), room_len};
    send_command(rb, 3, argv, lens, NULL, NULL);
}

/* The room script's answer in presence mode: the sorted names. */
static void names_done(struct request *q, const redisReply *reply)
{
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        q->u.names.cb(q->arg, -1, NULL, 0);
        return;
    }
    const char **names = malloc(sizeof(char *) * (reply->elements + 1));
    size_t n = 0;
    for (size_t i = 0; names && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            names[n++] = reply->element[i]->str;
    q->u.names.cb(q->arg, names ? 0 : -1, names, n);
    free(names);
}

void redis_presence(struct bus *b, const char *room, size_t room_len, bus_names_fn cb, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    struct request *q;
    if (!ready(rb) ||
        room_request(rb, "presence", room, room_len, NULL, NULL, names_done, &q) < 0) {
        cb(arg, -1, NULL, 0);
        return;
    }
    q->u.names.cb = cb;
    q->arg = arg;
    if (send_script(rb, q) < 0) {
        free(q);
        cb(arg, -1, NULL, 0);
    }
}

static void announce_done(struct request *q, const redisReply *reply)
{
    if (reply)
        announced(q->rb, q->room_len ? q->room : NULL, q->room_len, reply);
}

void redis_publish_announcement(struct bus *b, const char *room, size_t room_len,
                                const struct announce_batch *batch)
{
    struct rbus *rb = (struct rbus *)b;
    if (!ready(rb))
        return; /* best effort, as any system frame */
    char key[KEY_MAX], every[16], counts[2][24], keep[8];
    char names[2][ANNOUNCE_NAMES * (PROTO_NAME_MAX + 1)];
    const struct announce_tally *tallies[2] = {&batch->arrived, &batch->departed};
    const char *argv[7];
    size_t lens[7];
    lens[0] = room ? room_key(key, rb, "announce:", room, room_len)
                   : make_key(key, rb, "announce", "", 0);
    lens[1] = (size_t)snprintf(every, sizeof(every), "%d", ANNOUNCE_INTERVAL_MS);
    argv[0] = key, argv[1] = every;
    for (int t = 0; t < 2; t++) {
        size_t at = 0;
        for (unsigned i = 0; i < tallies[t]->n; i++)
            at += (size_t)snprintf(names[t] + at, sizeof(names[t]) - at, "%s%s", i ? "\t" : "",
                                   tallies[t]->names[i]);
        lens[2 + 2 * t] = (size_t)snprintf(counts[t], sizeof(counts[t]), "%lu", tallies[t]->count);
        argv[2 + 2 * t] = counts[t];
        argv[3 + 2 * t] = names[t], lens[3 + 2 * t] = at;
    }
    lens[6] = (size_t)snprintf(keep, sizeof(keep), "%d", ANNOUNCE_NAMES);
    argv[6] = keep;
    struct request *q = request_new(rb, S_ANNOUNCE, 7, argv, lens, announce_done);
    if (!q)
        return;
    if (room) {
        memcpy(q->room, room, room_len);
        q->room[room_len] = '\0';
        q->room_len = room_len;
    }
    if (send_script(rb, q) < 0)
        free(q);
}

static void count_done(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    if (q->arg) /* the heartbeat */
        rb->heartbeats_unanswered = 0;
    if (!reply || !ready(rb))
        return;
    if (!is_pair(reply, REDIS_REPLY_INTEGER)) {
        log_error("redis: unexpected answer to the count script");
        return;
    }
    if (reply->element[0]->integer > 0 && !evtimer_pending(rb->count_retry, NULL)) {
        unsigned ms = (unsigned)reply->element[0]->integer;
        struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
        evtimer_add(rb->count_retry, &tv);
    }
    if (reply->element[1]->integer)
        reregister(rb);
}

void send_count(struct rbus *rb, long local, const char *mode, bool beat)
{
    char gws[KEY_MAX], clients[KEY_MAX], last[KEY_MAX], count[24], ttl[16], every[16];
    const char *id = rb->base.cfg->id;
    const char *argv[13];
    size_t lens[13];
    lens[0] = make_key(gws, rb, "gateways", "", 0);
    lens[1] = make_key(clients, rb, "clients", "", 0);
    lens[2] = make_key(last, rb, "clients:last", "", 0);
    lens[3] = strlen(id);
    lens[4] = (size_t)snprintf(count, sizeof(count), "%ld", local);
    lens[5] = (size_t)snprintf(ttl, sizeof(ttl), "%d", GATEWAY_TTL_MS);
    lens[6] = rb->broadcast_len;
    lens[7] = (size_t)snprintf(every, sizeof(every), "%d", BUS_COUNT_INTERVAL_MS);
    lens[8] = strlen(mode);
    argv[0] = gws, argv[1] = clients, argv[2] = last, argv[3] = id, argv[4] = count;
    argv[5] = ttl, argv[6] = rb->broadcast, argv[7] = every;
    argv[8] = mode;
    /* The frame's shape is proto's; the script splices the total in. */
    for (int i = 0; i < 4; i++) {
        argv[9 + i] = proto_client_count_parts[i];
        lens[9 + i] = strlen(proto_client_count_parts[i]);
    }
    struct request *q = request_new(rb, S_COUNT, 13, argv, lens, count_done);
    if (!q)
        return;
    q->arg = beat ? rb : NULL; /* what count_done tells a heartbeat by */
    if (send_script(rb, q) < 0) {
        free(q);
        return;
    }
    if (beat)
        rb->heartbeats_unanswered++;
}

void redis_publish_count(struct bus *b, long local)
{
    struct rbus *rb = (struct rbus *)b;
    rb->local_clients = local;
    if (ready(rb))
        send_count(rb, local, "beat", false);
}

void redis_count_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (ready(rb))
        send_count(rb, rb->local_clients, "beat", false);
}

static void reap_done(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    if (!reply || !ready(rb))
        return;
    if (!is_pair(reply, REDIS_REPLY_STRING)) {
        log_error("redis: unexpected answer to the reap script");
        return;
    }
    if (reply->element[1]->len) {
        metrics.dead_gateways_reaped++;
        log_info("redis: cleaned up after gateway %s: its heartbeat lapsed",
                 reply->element[1]->str);
    }
    if (reply->element[0]->integer)
        send_reap(rb); /* more to do: right away, in bounded steps */
}

void send_reap(struct rbus *rb)
{
    if (rb->cluster) {
        cluster_reap(rb);
        return;
    }
    char gws[KEY_MAX], clients[KEY_MAX], gwrooms[KEY_MAX], pres[KEY_MAX], pnames[KEY_MAX];
    const char *argv[6] = {gws, clients, gwrooms, pres, REAP_BUDGET, pnames};
    size_t lens[6];
    lens[0] = make_key(gws, rb, "gateways", "", 0);
    lens[1] = make_key(clients, rb, "clients", "", 0);
    lens[2] = make_key(gwrooms, rb, "gwrooms:", "", 0);
    lens[3] = make_key(pres, rb, "presence:", "", 0);
    lens[4] = sizeof(REAP_BUDGET) - 1;
    lens[5] = make_key(pnames, rb, "pnames:", "", 0);
    fire_and_forget(rb, S_REAP, 6, argv, lens, reap_done);
}

void reregister(struct rbus *rb)
{
    if (rb->cluster) {
        cluster_reregister(rb);
        return;
    }
    char gwrooms[KEY_MAX], pres[KEY_MAX], pnames_prefix[KEY_MAX];
    const char *id = rb->base.cfg->id;
    const char *argv[4];
    size_t lens[4];
    lens[0] = make_key(gwrooms, rb, "gwrooms:", id, strlen(id));
    lens[1] = strlen(id);
    lens[2] = make_key(pres, rb, "presence:", "", 0);
    lens[3] = make_key(pnames_prefix, rb, "pnames:", "", 0);
    argv[0] = gwrooms, argv[1] = id, argv[2] = pres, argv[3] = pnames_prefix;
    fire_and_forget(rb, S_RESET, 4, argv, lens, NULL);
    /* Then what this gateway has now, behind the reset on the same
     * connection. */
    register_rooms(rb);
}

void register_room(struct rbus *rb, const struct strmap_slot *room)
{
    const char *id = rb->base.cfg->id;
    char key[KEY_MAX], nkey[KEY_MAX], field[200], count[24];
    size_t klen = room_key(key, rb, "presence:", room->key, room->len);
    size_t nlen = room_key(nkey, rb, "pnames:", room->key, room->len);
    const struct strmap_slot *name;
    for (size_t j = 0; strmap_next(room->value, &j, &name);) {
        int flen = snprintf(field, sizeof(field), "%s\t%s", id, name->key);
        int clen = snprintf(count, sizeof(count), "%lu", (unsigned long)(uintptr_t)name->value);
        const char *hset[4] = {"HSET", key, field, count};
        size_t hl[4] = {4, klen, (size_t)flen, (size_t)clen};
        send_command(rb, 4, hset, hl, NULL, NULL);
        const char *incr[4] = {"HINCRBY", nkey, name->key, count};
        size_t il[4] = {7, nlen, name->len, (size_t)clen};
        send_command(rb, 4, incr, il, NULL, NULL);
    }
}

void register_rooms(struct rbus *rb)
{
    char gwrooms[KEY_MAX];
    const char *id = rb->base.cfg->id;
    size_t glen = make_key(gwrooms, rb, "gwrooms:", id, strlen(id));
    const struct strmap_slot *room;
    for (size_t i = 0; strmap_next(&rb->presence.rooms, &i, &room);) {
        register_room(rb, room);
        const char *sadd[3] = {"SADD", gwrooms, room->key};
        size_t sl[3] = {4, glen, room->len};
        send_command(rb, 3, sadd, sl, NULL, NULL);
    }
}

void redis_connection_event(struct bus *b, bool connected, const char *name)
{
    struct rbus *rb = (struct rbus *)b;
    if (!rb->events_len || !ready(rb))
        return;
    /* One command is one atomic step: no script needed. The shape is
     * event.lua's. */
    const char *argv[12] = {
        "XADD",         rb->events, "MAXLEN",  "~",
        rb->events_cap, "*",        "type",    connected ? "connect" : "disconnect",
        "user",         name,       "gateway", rb->base.cfg->id};
    size_t lens[12];
    for (int i = 0; i < 12; i++)
        lens[i] = strlen(argv[i]);
    send_command(rb, 12, argv, lens, NULL, NULL);
}

/* ---- the server API's views (api.lua) ----
 *
 * The rooms listing takes two steps. api.lua names the rooms of live
 * gateways (at most BUS_ROOMS_MAX) where the gateways' keys are; then
 * room_members.lua counts each room's distinct names where the room's keys
 * are: under Redis Cluster on each room's node, one call per node, all
 * sent at once; on one Redis in one call after the first. The answer is
 * put together when every call has answered. On one Redis too this costs
 * Redis less than one script doing both, and blocks it for less at a time
 * (tests/bench/rooms_listing.py). */

/* An api.lua row: an array of a string and integers after it. */
static bool is_row(const redisReply *r, size_t n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return false;
    for (size_t i = 1; i < n; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER)
            return false;
    return true;
}

static void gateways_done(struct request *q, const redisReply *reply)
{
    size_t n = 0;
    struct bus_gateway *out = NULL;
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY;
    if (ok && reply->elements && !(out = malloc(sizeof(*out) * reply->elements)))
        ok = false;
    for (size_t i = 0; ok && i < reply->elements; i++) {
        const redisReply *r = reply->element[i];
        if (is_row(r, 3))
            out[n++] = (struct bus_gateway){r->element[0]->str, r->element[1]->integer != 0,
                                            (long)r->element[2]->integer};
    }
    q->u.gateways(q->arg, ok ? 0 : -1, out, n);
    free(out);
}

/* One node's share of a listing (the one Redis's, or a cluster primary's):
 * its connection and how many rooms it counts. */
struct rooms_part {
    struct rooms_read *rr;
    redisAsyncContext *c;
    size_t n;
};

/* A listed room's names key and the part that counts it. */
struct room_at {
    const char *key;
    size_t len, part;
};

/* A listing under way. Every part sent is awaited, answered or failed
 * (hiredis calls back with no reply when a connection goes), so that the
 * callback is called once, when nothing is in flight any more. */
struct rooms_read {
    bus_rooms_fn cb;
    void *arg;
    size_t n, n_parts;
    struct bus_room_count *rooms; /* the answer, counted in place */
    struct room_at *at;           /* index for index with rooms */
    struct rooms_part *parts;     /* at most one per room */
    char *bytes;                  /* every room's names key, then its name */
    unsigned pending;             /* parts unanswered, and one while sending */
    bool failed;
};

static void rooms_read_free(struct rooms_read *rr)
{
    free(rr->rooms);
    free(rr->at);
    free(rr->parts);
    free(rr->bytes);
    free(rr);
}

/* Answers with the rooms that have members (none when a part failed). */
static void rooms_read_finish(struct rooms_read *rr)
{
    size_t m = 0;
    for (size_t i = 0; !rr->failed && i < rr->n; i++)
        if (rr->rooms[i].members > 0)
            rr->rooms[m++] = rr->rooms[i];
    rr->cb(rr->arg, rr->failed ? -1 : 0, rr->rooms, m);
    rooms_read_free(rr);
}

/* room_members.lua's answer from one node: a count per room, in the order
 * its keys were sent. */
static void on_room_members(redisAsyncContext *c, void *r, void *privdata)
{
    struct rooms_part *p = privdata;
    struct rooms_read *rr = p->rr;
    const redisReply *reply = r;
    struct rbus *rb = c->data; /* NULL when the bus freed the connection */
    if (rb && reply) {         /* alive, as any answer tells */
        rb->replies_since_beat++;
        if (rb->cluster)
            cluster_heard(rb, c);
    }
    size_t part = (size_t)(p - rr->parts);
    bool ok = reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == p->n;
    for (size_t i = 0, j = 0; ok && i < rr->n; i++) {
        if (rr->at[i].part != part)
            continue;
        const redisReply *e = reply->element[j++];
        ok = e->type == REDIS_REPLY_INTEGER;
        rr->rooms[i].members = ok ? (long)e->integer : 0;
    }
    if (!ok) {
        rr->failed = true;
        /* No reply: the link went, and its loss is logged. An error under
         * Redis Cluster: most likely a slot the node no longer serves, so
         * the map is read again for the next listing. */
        if (reply)
            log_error("redis: could not count the members of the rooms listed: %s",
                      reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
        if (reply && rb && rb->cluster)
            cluster_refresh(rb);
    }
    if (--rr->pending == 0)
        rooms_read_finish(rr);
}

/* The listing of api.lua's room names (reply's strings), each with its
 * names key and the node that serves it; NULL when out of memory (logged)
 * or when a room's node has no connection now (the link is going). */
static struct rooms_read *rooms_read_new(struct rbus *rb, const redisReply *reply)
{
    struct rooms_read *rr = calloc(1, sizeof(*rr));
    size_t n = reply->elements, total = 0;
    char key[KEY_MAX];
    for (size_t i = 0; i < n; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            total += room_key(key, rb, "pnames:", reply->element[i]->str, reply->element[i]->len) +
                     reply->element[i]->len;
    if (!rr || !(rr->rooms = malloc(sizeof(*rr->rooms) * n)) ||
        !(rr->at = malloc(sizeof(*rr->at) * n)) || !(rr->parts = malloc(sizeof(*rr->parts) * n)) ||
        !(rr->bytes = malloc(total ? total : 1))) {
        log_error("redis: out of memory listing the rooms");
        if (rr)
            rooms_read_free(rr);
        return NULL;
    }
    char *p = rr->bytes;
    for (size_t i = 0; i < n; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING)
            continue;
        struct room_at *at = &rr->at[rr->n];
        at->key = p;
        at->len = room_key(p, rb, "pnames:", e->str, e->len);
        p += at->len;
        memcpy(p, e->str, e->len);
        rr->rooms[rr->n] = (struct bus_room_count){p, e->len, 0};
        p += e->len;
        redisAsyncContext *c = cmd_for(rb, at->key, at->len);
        if (!c) {
            rooms_read_free(rr);
            return NULL;
        }
        for (at->part = 0; at->part < rr->n_parts && rr->parts[at->part].c != c; at->part++)
            ;
        if (at->part == rr->n_parts)
            rr->parts[rr->n_parts++] = (struct rooms_part){rr, c, 0};
        rr->parts[at->part].n++;
        rr->n++;
    }
    return rr;
}

/* Sends each part its keys, one script call per node, and answers when
 * nothing was sent. */
static void rooms_read_send(struct rooms_read *rr)
{
    size_t most = 0;
    for (size_t i = 0; i < rr->n_parts; i++)
        most = rr->parts[i].n > most ? rr->parts[i].n : most;
    const char **argv = malloc(sizeof(*argv) * (3 + most));
    size_t *lens = malloc(sizeof(*lens) * (3 + most));
    rr->pending = 1;
    if (!argv || !lens) {
        log_error("redis: out of memory listing the rooms");
        rr->failed = true;
    }
    /* EVAL rather than EVALSHA: the text is short beside the keys, and a
     * flushed script cache needs no second try. */
    for (size_t i = 0; !rr->failed && i < rr->n_parts; i++) {
        struct rooms_part *part = &rr->parts[i];
        argv[0] = "EVAL", lens[0] = 4;
        argv[1] = lua_room_members, lens[1] = strlen(lua_room_members);
        argv[2] = "0", lens[2] = 1;
        int argc = 3;
        for (size_t j = 0; j < rr->n; j++)
            if (rr->at[j].part == i) {
                argv[argc] = rr->at[j].key;
                lens[argc++] = rr->at[j].len;
            }
        if (redisAsyncCommandArgv(part->c, on_room_members, part, argc, argv, lens) == REDIS_OK)
            rr->pending++;
        else
            rr->failed = true;
    }
    free(argv);
    free(lens);
    if (--rr->pending == 0)
        rooms_read_finish(rr);
}

/* api.lua's 'rooms' answer: the names of the rooms of live gateways. */
static void rooms_named(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    struct rooms_read *rr = NULL;
    if (reply && reply->type == REDIS_REPLY_ARRAY && reply->elements == 0) {
        q->u.rooms(q->arg, 0, NULL, 0);
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ARRAY && ready(rb))
        rr = rooms_read_new(rb, reply);
    if (!rr) {
        q->u.rooms(q->arg, -1, NULL, 0);
        return;
    }
    rr->cb = q->u.rooms;
    rr->arg = q->arg;
    rooms_read_send(rr);
}

/* api.lua in a mode; NULL (nothing sent) when Redis is not there. */
static struct request *call_api(struct rbus *rb, const char *mode, request_done_fn done)
{
    char gws[KEY_MAX], clients[KEY_MAX], gwrooms[KEY_MAX], most[16];
    const char *argv[5] = {gws, clients, mode, gwrooms, most};
    size_t lens[5];
    lens[0] = make_key(gws, rb, "gateways", "", 0);
    lens[1] = make_key(clients, rb, "clients", "", 0);
    lens[2] = strlen(mode);
    lens[3] = make_key(gwrooms, rb, "gwrooms:", "", 0);
    lens[4] = (size_t)snprintf(most, sizeof(most), "%d", BUS_ROOMS_MAX);
    struct request *q = ready(rb) ? request_new(rb, S_API, 5, argv, lens, done) : NULL;
    if (q && send_script(rb, q) < 0) {
        free(q);
        q = NULL;
    }
    return q;
}

void redis_rooms(struct bus *b, bus_rooms_fn cb, void *arg)
{
    struct request *q = call_api((struct rbus *)b, "rooms", rooms_named);
    if (!q) {
        cb(arg, -1, NULL, 0);
        return;
    }
    q->u.rooms = cb;
    q->arg = arg;
}

void redis_gateways(struct bus *b, bus_gateways_fn cb, void *arg)
{
    struct request *q = call_api((struct rbus *)b, "gateways", gateways_done);
    if (!q) {
        cb(arg, -1, NULL, 0);
        return;
    }
    q->u.gateways = cb;
    q->arg = arg;
}
