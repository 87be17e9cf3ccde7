/* Presence's cleanups under Redis Cluster. On one Redis a script withdraws
 * a gateway from every room of its set at once (reset.lua, reap.lua); in a
 * cluster each room's presence is on the node of the room's slot and the
 * set with the gateways' keys on the global tag's node, so the set is read
 * there and each room is cleaned on its own node (forget_room.lua), in
 * order before what is registered there again. */
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

/* verb (SMEMBERS or DEL) of this gateway's room set, done with the answer. */
static int own_rooms(struct rbus *rb, const char *verb, request_done_fn done)
{
    char set[KEY_MAX];
    const char *id = rb->base.cfg->id;
    const char *argv[2] = {verb, set};
    size_t lens[2] = {strlen(verb), make_key(set, rb, "gwrooms:", id, strlen(id))};
    return send_command(rb, 2, argv, lens, done, NULL);
}

/* The rooms this gateway had registered (another life of the process, or
 * before an outage): each is cleaned, then what it has now is registered
 * anew, behind the cleanup on each node. */
static void own_rooms_listed(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    if (!reply || !ready(rb))
        return; /* a failure is logged; a reconnect registers anew */
    if (reply->type != REDIS_REPLY_ARRAY) {
        log_error("redis: cannot list this gateway's rooms: not an array");
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
    if (own_rooms(rb, "SMEMBERS", own_rooms_listed) < 0)
        log_error("redis: cannot list this gateway's rooms: no connection to their node");
}

void cluster_withdraw(struct rbus *rb)
{
    const char *id = rb->base.cfg->id;
    const struct strmap_slot *room;
    for (size_t i = 0; strmap_next(&rb->presence.rooms, &i, &room);)
        forget_room(rb, room->key, room->len, id, strlen(id));
    own_rooms(rb, "DEL", NULL);
}

void cluster_reregister_node(struct rbus *rb, size_t i)
{
    const char *id = rb->base.cfg->id;
    redisAsyncContext *node = cluster_node_conn(rb, i, false);
    const struct strmap_slot *room;
    for (size_t r = 0; node && strmap_next(&rb->presence.rooms, &r, &room);) {
        char key[KEY_MAX];
        size_t len = room_key(key, rb, "presence:", room->key, room->len);
        if (cmd_for(rb, key, len) != node)
            continue;
        /* In this order on the node's one connection: the withdrawal
         * before the entries. */
        forget_room(rb, room->key, room->len, id, strlen(id));
        register_room(rb, room);
    }
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
