/* The Redis bus's subscription canary. A subscriber connection can stay up
 * while it no longer delivers (the peers' most reported failure:
 * anycable#275, nchan#442, the Socket.IO streams adapter's #32), and then
 * rooms go quiet with nothing failing. So every --redis-canary-interval
 * the command connection publishes a numbered canary to this gateway's own
 * channel, which the subscriber connection subscribes to before anything
 * else. Once Redis has answered the PUBLISH the canary is in the
 * subscriber's output; if it is not back within another interval while
 * nothing else came either, the link is restarted, which resubscribes
 * every room and replays its stream.
 *
 * Under Redis Cluster the rooms are on each primary's sharded subscriber,
 * so each primary gets a canary of its own too: a shard channel
 * "<prefix>canary:{cN}<id>" whose tag lands in a slot that primary serves
 * (cluster_canary_find), SSUBSCRIBEd on its sharded subscriber and
 * SPUBLISHed on its command connection. The seed's subscriber (the
 * broadcast channel's) keeps the canary above. A primary's canary that
 * does not come back fails that primary alone, as its connection closing
 * does (cluster_node_failed), and it gets a canary again when it, or the
 * primary that replaces it, is up. A slot that moves is not a miss: Redis refuses the SPUBLISH
 * (MOVED) or ends the subscription, and the primary gets another channel
 * when the slot map has been read again. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "cluster_slots.h"
#include "config.h"
#include "log.h"
#include "metrics.h"

/* A primary's channel always fits. */
_Static_assert(sizeof(((struct config *)0)->redis_prefix) + sizeof("canary:") +
                       CLUSTER_CANARY_TAG_MAX + GATEWAY_ID_MAX <=
                   KEY_MAX,
               "a canary channel name fits in KEY_MAX");

/* One primary's canary (Redis Cluster). */
struct shard_canary {
    struct rbus *rb;
    size_t node;           /* its index in the slot map */
    unsigned tag;          /* the candidate the channel's tag is */
    char channel[KEY_MAX]; /* "<prefix>canary:{c<tag>}<id>"; "" when none */
    size_t channel_len;
    bool subscribed; /* SSUBSCRIBE sent, and Redis did not end it since */
    uint64_t seq;    /* of the newest canary sent */
    bool out, heard; /* as the seed's canary's */
    struct event *deadline;
};

static struct timeval interval(const struct rbus *rb)
{
    unsigned ms = rb->base.cfg->redis_canary_interval_ms;
    return (struct timeval){ms / 1000, (suseconds_t)(ms % 1000) * 1000};
}

static size_t format_seq(char *buf, size_t len, uint64_t seq)
{
    return (size_t)snprintf(buf, len, "%" PRIu64, seq);
}

/* Whether payload is canary seq. */
static bool is_seq(const redisReply *payload, uint64_t seq)
{
    char buf[24];
    size_t len = format_seq(buf, sizeof(buf), seq);
    return payload->type == REDIS_REPLY_STRING && payload->len == len &&
           memcmp(payload->str, buf, len) == 0;
}

/* Redis took a canary: from now on it is due back. */
static void due(const struct rbus *rb, bool *heard, struct event *deadline)
{
    struct timeval tv = interval(rb);
    *heard = false;
    evtimer_add(deadline, &tv);
}

/* Redis refused a canary: the link works, but cannot be checked (an ACL
 * without the canary's channel). Said once per link. */
static void refused(struct rbus *rb, const redisReply *reply)
{
    if (!rb->canary.refused)
        log_warn("redis: the subscription canary cannot be published (%s); the README's ACL "
                 "line allows it",
                 reply->str);
    rb->canary.refused = true;
}

/* A canary's deadline passed; conn names its subscriber connection. True
 * when it is stuck (why said in why, len bytes): a miss. */
static bool deadline_passed(struct rbus *rb, bool *heard, struct event *deadline, const char *conn,
                            char *why, size_t len)
{
    if (!ready(rb))
        return false;
    /* A subscriber that delivered something meanwhile is alive, only
     * behind (a busy loop, a burst ahead of the canary in the same
     * order): it gets another interval. Only one that delivers nothing is
     * stuck. */
    if (*heard) {
        due(rb, heard, deadline);
        return false;
    }
    metrics.redis_canary_misses++;
    snprintf(why, len,
             "the subscription canary did not come back within %u ms: %s stopped delivering",
             rb->base.cfg->redis_canary_interval_ms, conn);
    return true;
}

/* ---- the seed's subscriber (the only one on one Redis) ---- */

/* Redis's answer to the canary's PUBLISH. */
static void on_published(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    const redisReply *reply = r;
    /* No answer: the link went down, and took the canary with it. */
    if (!rb || !reply || !rb->canary.out || (uintptr_t)privdata != rb->canary.seq)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        refused(rb, reply);
        rb->canary.out = false;
        return;
    }
    due(rb, &rb->canary.heard, rb->canary.deadline);
}

/* One canary at a time: the one out has its deadline. One whose PUBLISH is
 * not answered waits on Redis, which the heartbeat checks. */
static void send_seed_canary(struct rbus *rb)
{
    if (rb->canary.out)
        return;
    char seq[24];
    rb->canary.seq++;
    const char *argv[3] = {"PUBLISH", rb->canary.channel, seq};
    size_t lens[3] = {7, rb->canary.channel_len, format_seq(seq, sizeof(seq), rb->canary.seq)};
    if (redisAsyncCommandArgv(rb->cmd, on_published, (void *)(uintptr_t)rb->canary.seq, 3, argv,
                              lens) == REDIS_OK)
        rb->canary.out = true;
}

static void canary_missed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    char why[CLUSTER_HOST_MAX + 200];
    if (deadline_passed(rb, &rb->canary.heard, rb->canary.deadline, "the subscriber connection",
                        why, sizeof(why)))
        rb->link_step(rb, why);
}

bool canary_message(struct rbus *rb, const redisReply *kind, const redisReply *chan,
                    const redisReply *payload)
{
    if (chan->len != rb->canary.channel_len ||
        memcmp(chan->str, rb->canary.channel, chan->len) != 0)
        return false;
    /* Anything but the one out (a late one of an earlier link) is dropped. */
    if (strcmp(kind->str, "message") == 0 && rb->canary.out && is_seq(payload, rb->canary.seq)) {
        rb->canary.out = false;
        evtimer_del(rb->canary.deadline);
    }
    return true;
}

/* ---- each primary's sharded subscriber (Redis Cluster) ---- */

static struct shard_canary *shard_of(struct rbus *rb, const redisAsyncContext *c)
{
    long i = cluster_node_index(rb, c);
    return i >= 0 && (size_t)i < rb->canary.n_shards ? &rb->canary.shards[i] : NULL;
}

static void on_shard_reply(redisAsyncContext *c, void *r, void *privdata);

/* Subscribes the primary's channel: the first candidate from tag on whose
 * slot it serves. Without one (it serves no slot now) it has no canary
 * until the map changes. */
static void shard_subscribe(struct shard_canary *s, unsigned tag)
{
    struct rbus *rb = s->rb;
    const struct cluster_map *m = cluster_map_now(rb);
    redisAsyncContext *sub = cluster_node_conn(rb, s->node, true);
    evtimer_del(s->deadline);
    s->out = s->subscribed = false;
    s->channel_len = 0;
    if (!m || !sub || !cluster_canary_find(m, s->node, &tag))
        return;
    char t[CLUSTER_CANARY_TAG_MAX];
    cluster_canary_tag(t, tag);
    s->tag = tag;
    s->channel_len = (size_t)snprintf(s->channel, sizeof(s->channel), "%scanary:%s%s",
                                      rb->base.cfg->redis_prefix, t, rb->base.cfg->id);
    const char *argv[2] = {"SSUBSCRIBE", s->channel};
    size_t lens[2] = {10, s->channel_len};
    s->subscribed = redisAsyncCommandArgv(sub, on_shard_reply, NULL, 2, argv, lens) == REDIS_OK;
}

/* The replies on a primary's canary channel (only ever seen here: hiredis
 * hands a shard channel's replies to the callback that subscribed it, so
 * they never reach the rooms). */
static void on_shard_reply(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct rbus *rb = c->data;
    const redisReply *reply = r;
    if (!rb || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    canary_heard(rb, c);
    struct shard_canary *s = shard_of(rb, c);
    const char *kind = reply->element[0]->str;
    const redisReply *chan = reply->element[1];
    /* A channel of an earlier tag: what is left of it is dropped. */
    if (!s || chan->len != s->channel_len || memcmp(chan->str, s->channel, chan->len) != 0)
        return;
    if (strcmp(kind, "smessage") == 0) {
        if (s->out && is_seq(reply->element[2], s->seq)) {
            s->out = false;
            evtimer_del(s->deadline);
        }
    } else if (strcmp(kind, "ssubscribe") == 0) {
        /* A canary sent before the subscription took is not coming: the
         * next one is. */
        s->out = false;
        evtimer_del(s->deadline);
    } else if (strcmp(kind, "sunsubscribe") == 0 && s->subscribed) {
        /* Redis ended it: the channel's slot left the primary. Another
         * channel when the map says what the primary serves now. */
        s->subscribed = s->out = false;
        evtimer_del(s->deadline);
        cluster_refresh(rb);
    }
}

/* The primary's answer to the canary's SPUBLISH. */
static void on_shard_published(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    const redisReply *reply = r;
    struct shard_canary *s = rb && reply ? shard_of(rb, c) : NULL;
    if (!s || !s->out || (uintptr_t)privdata != s->seq)
        return;
    struct cluster_redirect d;
    if (reply->type == REDIS_REPLY_ERROR) {
        s->out = false;
        /* MOVED or ASK: the channel's slot is leaving the primary; the
         * map read again gives it another. Not a miss. */
        if (cluster_redirect_parse(reply->str, reply->len, &d))
            cluster_refresh(rb);
        else
            refused(rb, reply);
        return;
    }
    /* Taken, whatever count of subscribers Redis gave. 0 is a subscription
     * Redis has not taken yet, whose confirmation then drops this canary,
     * or one gone on Redis's side, as stuck as one that does not deliver. */
    due(rb, &s->heard, s->deadline);
}

static void send_shard_canary(struct shard_canary *s)
{
    redisAsyncContext *cmd = cluster_node_conn(s->rb, s->node, false);
    if (!s->subscribed || s->out || !cmd)
        return;
    char seq[24];
    s->seq++;
    const char *argv[3] = {"SPUBLISH", s->channel, seq};
    size_t lens[3] = {8, s->channel_len, format_seq(seq, sizeof(seq), s->seq)};
    if (redisAsyncCommandArgv(cmd, on_shard_published, (void *)(uintptr_t)s->seq, 3, argv, lens) ==
        REDIS_OK)
        s->out = true;
}

static void shard_missed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct shard_canary *s = arg;
    const struct cluster_map *m = cluster_map_now(s->rb);
    char conn[CLUSTER_HOST_MAX + 64] = "a primary's sharded-subscriber connection";
    if (m)
        snprintf(conn, sizeof(conn), "node %s:%d's sharded-subscriber connection",
                 m->nodes[s->node].host, m->nodes[s->node].port);
    char why[CLUSTER_HOST_MAX + 200];
    /* Only this primary is left, as one whose connection closed. */
    if (deadline_passed(s->rb, &s->heard, s->deadline, conn, why, sizeof(why)) &&
        !cluster_node_failed(s->rb, s->node, why))
        s->rb->link_step(s->rb, why);
}

static void shards_free(struct rbus *rb)
{
    for (size_t i = 0; i < rb->canary.n_shards; i++)
        if (rb->canary.shards[i].deadline)
            event_free(rb->canary.shards[i].deadline);
    free(rb->canary.shards);
    rb->canary.shards = NULL;
    rb->canary.n_shards = 0;
}

/* Every primary of the link gets its canary, subscribed now. */
static void shards_up(struct rbus *rb)
{
    const struct cluster_map *m = cluster_map_now(rb);
    if (!m)
        return;
    rb->canary.shards = calloc(m->n_nodes, sizeof(*rb->canary.shards));
    rb->canary.n_shards = rb->canary.shards ? m->n_nodes : 0;
    for (size_t i = 0; i < rb->canary.n_shards; i++) {
        struct shard_canary *s = &rb->canary.shards[i];
        s->rb = rb;
        s->node = i;
        if (!(s->deadline = evtimer_new(rb->base.base, shard_missed, s))) {
            shards_free(rb);
            break;
        }
    }
    if (!rb->canary.shards) {
        log_error("redis: out of memory: the primaries' subscription canaries are off until "
                  "the link is restarted");
        return;
    }
    for (size_t i = 0; i < rb->canary.n_shards; i++)
        shard_subscribe(&rb->canary.shards[i], 0);
}

void canary_map_changed(struct rbus *rb)
{
    const struct cluster_map *m = cluster_map_now(rb);
    for (size_t i = 0; m && i < rb->canary.n_shards; i++) {
        struct shard_canary *s = &rb->canary.shards[i];
        /* Kept while Redis keeps it and the map says it is still there:
         * a new channel would leave the old subscription behind. */
        if (s->subscribed && m->owner[cluster_key_slot(s->channel, s->channel_len)] == s->node)
            continue;
        /* The next candidate: the one whose slot just left may still be
         * the primary's in a map read from a node that has not heard. */
        shard_subscribe(s, s->channel_len ? s->tag + 1 : 0);
    }
}

void canary_node_down(struct rbus *rb, size_t node)
{
    /* Without its connection: no channel, no deadline. */
    if (node < rb->canary.n_shards)
        shard_subscribe(&rb->canary.shards[node], 0);
}

void canary_heard(struct rbus *rb, const redisAsyncContext *c)
{
    struct shard_canary *s;
    if (c == rb->sub)
        rb->canary.heard = true;
    else if ((s = shard_of(rb, c)))
        s->heard = true;
}

/* ---- the link ---- */

static void send_canary(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (!ready(rb))
        return;
    send_seed_canary(rb);
    for (size_t i = 0; i < rb->canary.n_shards; i++)
        send_shard_canary(&rb->canary.shards[i]);
}

void canary_link_up(struct rbus *rb)
{
    struct timeval tv = interval(rb);
    rb->canary.out = rb->canary.refused = false;
    shards_up(rb);
    evtimer_add(rb->canary.tick, &tv);
}

void canary_link_down(struct rbus *rb)
{
    rb->canary.out = false;
    evtimer_del(rb->canary.tick);
    evtimer_del(rb->canary.deadline);
    shards_free(rb);
}

int canary_init(struct rbus *rb)
{
    const char *id = rb->base.cfg->id;
    rb->canary.channel_len = make_key(rb->canary.channel, rb, "canary:", id, strlen(id));
    rb->canary.tick = event_new(rb->base.base, -1, EV_PERSIST, send_canary, rb);
    rb->canary.deadline = evtimer_new(rb->base.base, canary_missed, rb);
    return rb->canary.tick && rb->canary.deadline ? 0 : -1;
}

void canary_free(struct rbus *rb)
{
    shards_free(rb);
    if (rb->canary.tick)
        event_free(rb->canary.tick);
    if (rb->canary.deadline)
        event_free(rb->canary.deadline);
}
