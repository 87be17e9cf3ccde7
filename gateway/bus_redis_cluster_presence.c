/* Presence's cleanups under Redis Cluster. On one Redis a script withdraws
 * a gateway from every room of its set at once (reset.lua, reap.lua); in a
 * cluster each room's presence is on the node of the room's slot and the
 * set with the gateways' keys on the global tag's node, so the set is read
 * there and each room is cleaned on its own node (forget_room.lua), in
 * order before what is registered there again.
 *
 * The server API's rooms listing is split the same way: api.lua names the
 * rooms of live gateways on the global tag's node, then each node counts
 * the members of the rooms it serves (room_members.lua, one call per node,
 * all sent at once), and the answer is put together when every node has
 * answered. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "log.h"
#include "metrics.h"

/* Rooms one reap step takes out of a dead gateway's set. */
#define REAP_ROOMS "100"

/* Withdraws gateway gw from room's presence, on the room's node. */
static void forget_room(struct rbus *rb, const char *room, size_t room_len, const char *gw,
                        size_t gw_len)
{
    char pres[KEY_MAX], pnames[KEY_MAX];
    const char *argv[3] = {pres, pnames, gw};
    size_t lens[3] = {room_key(pres, rb, "presence:", room, room_len),
                      room_key(pnames, rb, "pnames:", room, room_len), gw_len};
    fire_and_forget(rb, S_FORGET_ROOM, 3, argv, lens, NULL);
}

/* This gateway's room set: its key into buf, the connection of its node. */
static redisAsyncContext *own_rooms(struct rbus *rb, char *buf, size_t *len)
{
    const char *id = rb->base.cfg->id;
    *len = make_key(buf, rb, "gwrooms:", id, strlen(id));
    return cmd_for(rb, buf, *len);
}

/* The rooms this gateway had registered (another life of the process, or
 * before an outage): each is cleaned, then what it has now is registered
 * anew, behind the cleanup on each node. */
static void on_own_rooms(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct rbus *rb = c->data;
    const redisReply *reply = r;
    if (!rb || !reply || !ready(rb))
        return;
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_error("redis: cannot list this gateway's rooms: %s",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "not an array");
        return;
    }
    const char *id = rb->base.cfg->id;
    for (size_t i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            forget_room(rb, reply->element[i]->str, reply->element[i]->len, id, strlen(id));
    cluster_withdraw(rb);
    register_rooms(rb);
}

void cluster_reregister(struct rbus *rb)
{
    char set[KEY_MAX];
    size_t len;
    redisAsyncContext *c = own_rooms(rb, set, &len);
    if (!c || redisAsyncCommand(c, on_own_rooms, NULL, "SMEMBERS %b", set, len) != REDIS_OK)
        log_error("redis: cannot list this gateway's rooms: no connection to their node");
}

void cluster_withdraw(struct rbus *rb)
{
    const char *id = rb->base.cfg->id;
    const struct strmap_slot *room;
    for (size_t i = 0; strmap_next(&rb->presence.rooms, &i, &room);)
        forget_room(rb, room->key, room->len, id, strlen(id));
    char set[KEY_MAX];
    size_t len;
    redisAsyncContext *c = own_rooms(rb, set, &len);
    if (c)
        redisAsyncCommand(c, NULL, NULL, "DEL %b", set, len);
}

/* reap_pick.lua's answer: {}, {gateway, 1} or {gateway, 0, room...}. */
static void reap_picked(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    if (!reply || !ready(rb) || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0)
        return;
    const redisReply *gw = reply->element[0];
    if (reply->elements < 2 || gw->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        log_error("redis: unexpected answer to the reap script");
        return;
    }
    if (reply->element[1]->integer) {
        metrics.dead_gateways_reaped++;
        log_info("redis: cleaned up after gateway %s: its heartbeat lapsed", gw->str);
    }
    for (size_t i = 2; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            forget_room(rb, reply->element[i]->str, reply->element[i]->len, gw->str, gw->len);
    cluster_reap(rb); /* more to do: right away, in bounded steps */
}

void cluster_reap(struct rbus *rb)
{
    char gws[KEY_MAX], clients[KEY_MAX], sets[KEY_MAX];
    const char *argv[4] = {gws, clients, sets, REAP_ROOMS};
    size_t lens[4] = {make_key(gws, rb, "gateways", "", 0), make_key(clients, rb, "clients", "", 0),
                      make_key(sets, rb, "gwrooms:", "", 0), sizeof(REAP_ROOMS) - 1};
    fire_and_forget(rb, S_REAP_PICK, 4, argv, lens, reap_picked);
}

/* ---- the server API's rooms listing ---- */

/* One node's share of a listing: its connection and how many rooms it
 * counts. */
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
    if (rb && reply) {
        rb->replies_since_beat++;
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
        /* No reply: the link went, and its loss is logged. An error: most
         * likely a slot this node no longer serves, so the map is read
         * again for the next listing. */
        if (reply)
            log_error("redis: a node could not count the members of its rooms: %s",
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

/* Sends each part its keys, one script call per node. */
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

void cluster_rooms_named(struct request *q, const redisReply *reply)
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
