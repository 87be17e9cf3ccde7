/* The Redis bus's channels: the subscriber connection, the subscription of
 * each room with local members, publishing, joins (presence registration
 * with the history after since) and the replay of a room's stream after a
 * resubscribe.
 *
 * A subscribe and an unsubscribe of the same channel are never in flight
 * together (hiredis 0.14 lost track of a channel's callback when they
 * overlapped; 1.x asserts that a subscribe reply has one), and the
 * broadcast channel stays subscribed for the life of the connection, so
 * hiredis never leaves subscribed mode behind our back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "clock.h"
#include "cluster_slots.h"
#include "dedupe.h"
#include "log.h"
#include "metrics.h"
#include "sendq.h"

/* Streams of rooms idle this long expire. */
#define STREAM_TTL_MS "604800000"

enum sub_state { SUB_NONE, SUB_PENDING, SUB_LIVE, UNSUB_PENDING };

/* One room channel. Lives while it is wanted or a command about it is in
 * flight. */
struct channel {
    const char *room; /* the map's key copy */
    size_t room_len;
    bool wanted;
    enum sub_state state;
    bool have_last;
    struct msgid last; /* newest id delivered to local members */
    /* Newest id ever delivered here: last goes back with a history that
     * lost messages, this does not (the chat script's floor). */
    struct msgid highest;
    bool probing;      /* channel_subscribe's probe is in flight: it holds this */
    bool filling;      /* replaying the stream after a resubscribe */
    struct sendq held; /* messages that arrived while filling */
};

static size_t room_channel(char *buf, const struct rbus *rb, const char *room, size_t len)
{
    return room_key(buf, rb, "room:", room, len);
}

static void on_sub_message(redisAsyncContext *c, void *r, void *privdata);

/* verb (SUBSCRIBE or UNSUBSCRIBE) of chan: on the subscriber connection, or
 * for a room under Redis Cluster its sharded form on the node of the
 * channel's slot. False when no connection serves it now. */
static bool sub_command(struct rbus *rb, const char *verb, const char *chan, size_t len, bool room)
{
    char sharded[16];
    redisAsyncContext *c = rb->sub;
    if (rb->cluster && room) {
        snprintf(sharded, sizeof(sharded), "S%s", verb);
        verb = sharded;
        c = sub_for(rb, chan, len);
    }
    const char *argv[2] = {verb, chan};
    size_t lens[2] = {strlen(verb), len};
    return c && redisAsyncCommandArgv(c, on_sub_message, rb, 2, argv, lens) == REDIS_OK;
}

/* Subscribes a channel; when its node is unknown the slot map is asked for
 * again, which renews it. */
static void subscribe_now(struct rbus *rb, struct channel *ch)
{
    char chan[KEY_MAX];
    size_t len = room_channel(chan, rb, ch->room, ch->room_len);
    ch->state = SUB_PENDING;
    if (!sub_command(rb, "SUBSCRIBE", chan, len, true)) {
        ch->state = SUB_NONE;
        if (rb->cluster)
            cluster_refresh(rb);
    }
}

static void channel_step(struct rbus *rb, struct channel *ch);

/* The probe's answer, whatever it was: the map names the node of the
 * channel's slot as well as it can now. */
static void probed(struct request *q, const redisReply *reply)
{
    (void)reply;
    struct rbus *rb = q->rb;
    struct channel *ch = q->arg; /* kept while probing */
    ch->probing = false;
    /* The end of the link (or of the channel's node) passed over it while
     * it probed: it is reset here, or it would stay pending for good when
     * the probe's connection was freed after that end (a teardown from
     * within one of its own callbacks). */
    if (!ready(rb) || !ch->wanted) {
        ch->state = SUB_NONE;
        channel_step(rb, ch);
        return;
    }
    subscribe_now(rb, ch);
}

/* Subscribes a wanted channel. Under Redis Cluster a read on the node of
 * its slot (the room stream's length) goes first: a node that lost the
 * slot since the map was read answers an SSUBSCRIBE with MOVED, which
 * hiredis takes for the end of the subscriber connection (and the whole
 * link with it), while the read follows the MOVED like any command and
 * corrects the map. During a move (ASK) the old owner keeps the slot's
 * subscriptions until it ends them, which sends the channel here again. */
static void channel_subscribe(struct rbus *rb, struct channel *ch)
{
    ch->state = SUB_PENDING;
    if (!rb->cluster) {
        subscribe_now(rb, ch);
        return;
    }
    char stream[KEY_MAX];
    const char *argv[2] = {"XLEN", stream};
    size_t lens[2] = {4, room_key(stream, rb, "history:", ch->room, ch->room_len)};
    ch->probing = true;
    if (send_command(rb, 2, argv, lens, probed, ch) < 0) {
        ch->probing = false;
        ch->state = SUB_NONE;
        cluster_refresh(rb);
    }
}

static void channel_free(struct channel *ch)
{
    sendq_clear(&ch->held);
    free(ch);
}

static void channel_drop(struct rbus *rb, struct channel *ch)
{
    strmap_del(&rb->channels, ch->room, ch->room_len);
    channel_free(ch);
}

/* Moves a channel toward what is wanted, one command at a time. */
static void channel_step(struct rbus *rb, struct channel *ch)
{
    char chan[KEY_MAX];
    if (!ready(rb)) {
        if (!ch->wanted && ch->state == SUB_NONE)
            channel_drop(rb, ch);
        return;
    }
    size_t len = room_channel(chan, rb, ch->room, ch->room_len);
    if (ch->wanted && ch->state == SUB_NONE) {
        channel_subscribe(rb, ch);
    } else if (!ch->wanted && ch->state == SUB_LIVE) {
        ch->state = UNSUB_PENDING;
        if (!sub_command(rb, "UNSUBSCRIBE", chan, len, true))
            ch->state = SUB_LIVE; /* its connection is gone: so is the subscription soon */
    } else if (!ch->wanted && ch->state == SUB_NONE) {
        channel_drop(rb, ch);
    }
}

static void deliver_room(struct rbus *rb, struct channel *ch, const struct msgid *id,
                         struct frame *f)
{
    if (id) {
        if (!ch->have_last || msgid_cmp(id, &ch->last) > 0)
            ch->last = *id;
        if (msgid_cmp(id, &ch->highest) > 0)
            ch->highest = *id;
        ch->have_last = true;
    }
    bus_deliver_room(&rb->base, ch->room, ch->room_len, id, f);
}

static void start_fill(struct rbus *rb, struct channel *ch);

static void on_subscribed(struct rbus *rb, struct channel *ch)
{
    ch->state = SUB_LIVE;
    if (!ch->wanted) {
        channel_step(rb, ch);
        return;
    }
    if (ch->have_last)
        start_fill(rb, ch); /* a resubscribe: replay what was missed first */
    else
        rb->base.h.subscribed(rb->base.h.ctx, ch->room, ch->room_len, 0);
}

static void on_sub_message(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    canary_heard(rb, c);
    const char *kind = reply->element[0]->str;
    const redisReply *name = reply->element[1];
    if (canary_message(rb, reply->element[0], name, reply->element[2]))
        return;
    bool is_broadcast =
        name->len == rb->broadcast_len && memcmp(name->str, rb->broadcast, rb->broadcast_len) == 0;
    size_t pre = strlen(rb->base.cfg->redis_prefix) + 5; /* "room:" */
    if (rb->cluster && !is_broadcast) {
        /* smessage, ssubscribe, sunsubscribe; the channel holds the tag. */
        kind += kind[0] == 's';
        pre += CLUSTER_TAG_LEN;
    }
    struct channel *ch = NULL;
    if (!is_broadcast && name->len > pre)
        ch = strmap_get(&rb->channels, name->str + pre, name->len - pre);

    if (strcmp(kind, "message") == 0) {
        const redisReply *payload = reply->element[2];
        if (payload->type != REDIS_REPLY_STRING)
            return;
        if (!is_broadcast && (!ch || ch->state != SUB_LIVE))
            return; /* the last local member left while this was on its way */
        struct frame *f = frame_copy(payload->str, payload->len);
        if (!f) {
            log_error("redis: out of memory: a message was not delivered");
            return;
        }
        if (is_broadcast) {
            bus_deliver_broadcast(&rb->base, f);
        } else if (ch->filling) {
            if (sendq_push(&ch->held, f, false) < 0)
                log_error("redis: out of memory holding a message during replay");
        } else {
            struct msgid id;
            bool has_id = proto_chat_id(frame_data(f), f->len, &id);
            deliver_room(rb, ch, has_id ? &id : NULL, f);
        }
        frame_unref(f);
    } else if (strcmp(kind, "subscribe") == 0) {
        if (is_broadcast) {
            rb->broadcast_live = true;
            rb->link_step(rb, NULL);
        } else if (ch && ch->state == SUB_PENDING)
            on_subscribed(rb, ch);
    } else if (strcmp(kind, "unsubscribe") == 0) {
        if (ch && ch->state == UNSUB_PENDING) {
            ch->state = SUB_NONE;
            ch->filling = false;
            sendq_clear(&ch->held);
            channel_step(rb, ch); /* wanted again meanwhile, or gone */
        } else if (ch && rb->cluster && ch->state != SUB_NONE) {
            /* Not asked for: the channel's slot left the node (resharding
             * or failover). Subscribed again on the new owner once the map
             * says which it is, then the stream replays what was published
             * meanwhile: a resubscribe as after an outage. */
            log_info("redis: room %.*s's slot moved, subscribing on its new node",
                     (int)ch->room_len, ch->room);
            ch->state = SUB_NONE;
            ch->filling = false;
            sendq_clear(&ch->held);
            cluster_refresh(rb);
        }
    }
}

void redis_subscribe(struct bus *b, const char *room, size_t room_len)
{
    struct rbus *rb = (struct rbus *)b;
    struct channel *ch = strmap_get(&rb->channels, room, room_len);
    if (!ch) {
        ch = calloc(1, sizeof(*ch));
        if (!ch || !(ch->room = strmap_put(&rb->channels, room, room_len, ch))) {
            free(ch);
            b->h.subscribed(b->h.ctx, room, room_len, -1);
            return;
        }
        ch->room_len = room_len;
        sendq_init(&ch->held);
    }
    ch->wanted = true;
    if (!ready(rb)) {
        /* Kept wanted: it is subscribed when Redis is back. */
        b->h.subscribed(b->h.ctx, room, room_len, -1);
        return;
    }
    if (ch->state == SUB_LIVE && !ch->filling)
        b->h.subscribed(b->h.ctx, room, room_len, 0);
    else
        channel_step(rb, ch);
}

void redis_unsubscribe(struct bus *b, const char *room, size_t room_len)
{
    struct rbus *rb = (struct rbus *)b;
    struct channel *ch = strmap_get(&rb->channels, room, room_len);
    if (!ch)
        return;
    ch->wanted = false;
    channel_step(rb, ch);
}

/* ---- the room script: joins and replay ---- */

int room_request(struct rbus *rb, const char *mode, const char *room, size_t room_len,
                 const char *name, const struct msgid *since, request_done_fn done,
                 struct request **out)
{
    char stream[KEY_MAX], pres[KEY_MAX], gws[KEY_MAX], gwrooms[KEY_MAX], pnames[KEY_MAX],
        field[200], sincebuf[MSGID_STR_MAX], keep[16];
    const char *id = rb->base.cfg->id;
    const char *argv[13];
    size_t lens[13];
    lens[0] = room_key(stream, rb, "history:", room, room_len);
    lens[1] = room_key(pres, rb, "presence:", room, room_len);
    lens[2] = make_key(gws, rb, "gateways", "", 0);
    lens[3] = make_key(gwrooms, rb, "gwrooms:", id, strlen(id));
    lens[4] = room_key(pnames, rb, "pnames:", room, room_len);
    int flen = snprintf(field, sizeof(field), "%s\t%s", id, name ? name : "");
    size_t slen = since ? msgid_format(since, sincebuf) : 0;
    argv[0] = stream, argv[1] = pres, argv[2] = gws, argv[3] = gwrooms, argv[4] = pnames;
    if (rb->cluster) { /* on another node: see room.lua */
        argv[2] = argv[3] = stream;
        lens[2] = lens[3] = lens[0];
    }
    argv[5] = mode, lens[5] = strlen(mode);
    argv[6] = field, lens[6] = (size_t)flen;
    argv[7] = sincebuf, lens[7] = slen;
    argv[8] = room, lens[8] = room_len;
    argv[9] = keep, lens[9] = (size_t)snprintf(keep, sizeof(keep), "%u", rb->base.cfg->history);
    argv[10] = rb->cluster ? "1" : "", lens[10] = rb->cluster ? 1 : 0;
    int argc = events_args(rb, argv, lens, 11);
    struct request *q = request_new(rb, S_ROOM, argc, argv, lens, done);
    if (!q)
        return -1;
    memcpy(q->room, room, room_len);
    q->room[room_len] = '\0';
    q->room_len = room_len;
    *out = q;
    return 0;
}

/* Parses the room script's reply: {members, truncated, last, entries}. */
static bool parse_room_reply(const redisReply *r, struct bus_join_result *res)
{
    memset(res, 0, sizeof(*res));
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
        r->element[0]->type != REDIS_REPLY_INTEGER || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[2]->type != REDIS_REPLY_STRING || r->element[3]->type != REDIS_REPLY_ARRAY)
        return false;
    res->members = (long)r->element[0]->integer;
    res->truncated = r->element[1]->integer != 0;
    res->lost = r->element[1]->integer == 2; /* room.lua's answer */
    if (!msgid_parse(r->element[2]->str, r->element[2]->len, &res->newest))
        return false;
    const redisReply *entries = r->element[3];
    res->history = entries->elements ? calloc(entries->elements, sizeof(struct frame *)) : NULL;
    if (entries->elements && !res->history)
        return false;
    for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *e = entries->element[i];
        struct msgid id;
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
            e->element[0]->type != REDIS_REPLY_STRING || e->element[1]->type != REDIS_REPLY_ARRAY ||
            e->element[1]->elements != 2 ||
            !msgid_parse(e->element[0]->str, e->element[0]->len, &id))
            continue;
        const redisReply *rest = e->element[1]->element[1];
        struct frame *f = proto_chat_assemble(&id, rest->str, rest->len);
        if (f)
            res->history[res->n++] = f;
    }
    return true;
}

static void free_result(struct bus_join_result *res)
{
    for (size_t i = 0; i < res->n; i++)
        frame_unref(res->history[i]);
    free(res->history);
}

static void finish_fill(struct rbus *rb, struct channel *ch, const struct bus_join_result *res)
{
    ch->filling = false;
    bool lost = res && res->lost;
    if (lost) {
        /* The newest id delivered is not in the stream any more: what the
         * stream answered follows what it shares with the members, and ids
         * may continue lower than those they saw. */
        log_warn("redis: room %.*s: its history lost messages delivered or due here (Redis "
                 "restarted empty or a failover lost writes); members are told",
                 (int)ch->room_len, ch->room);
        metrics.redis_history_lost++;
        rb->base.h.history_lost(rb->base.h.ctx, ch->room, ch->room_len);
        ch->last = res->newest;
    } else if (res && res->truncated) {
        struct frame *f = proto_system(ch->room, ch->room_len,
                                       "Some messages of this room could not be recovered "
                                       "after a connection loss",
                                       clock_wall_ms());
        if (f) {
            bus_deliver_room(&rb->base, ch->room, ch->room_len, NULL, f);
            frame_unref(f);
        }
    }
    for (size_t i = 0; res && i < res->n; i++) {
        struct msgid id;
        if (proto_chat_id(frame_data(res->history[i]), res->history[i]->len, &id) &&
            (lost || msgid_cmp(&id, &ch->last) > 0))
            deliver_room(rb, ch, &id, res->history[i]);
    }
    const struct sendq_entry *e;
    while ((e = sendq_peek(&ch->held))) {
        struct msgid id;
        bool has_id = proto_chat_id(frame_data(e->frame), e->frame->len, &id);
        if (!has_id || msgid_cmp(&id, &ch->last) > 0)
            deliver_room(rb, ch, has_id ? &id : NULL, e->frame);
        sendq_pop(&ch->held);
    }
    sendq_clear(&ch->held);
    if (res) {
        metrics.redis_replays++;
        log_info("redis: room %.*s resubscribed, %zu missed messages replayed", (int)ch->room_len,
                 ch->room, res->n);
    }
    rb->base.h.subscribed(rb->base.h.ctx, ch->room, ch->room_len, 0);
}

/* The room script's answer to a join, a re-join or a replay. */
static void room_done(struct request *q, const redisReply *reply)
{
    struct rbus *rb = q->rb;
    struct bus_join_result res;
    bool ok = parse_room_reply(reply, &res);
    struct channel *ch = strmap_get(&rb->channels, q->room, q->room_len);
    if (q->argvlen[5] == 4 && memcmp(q->argv[5], "fill", 4) == 0) {
        if (ch && ch->filling)
            finish_fill(rb, ch, ok ? &res : NULL);
    } else {
        /* A channel with no delivery yet counts from the stream's end at
         * join time, so a later replay starts there. */
        if (ok && ch && !ch->have_last) {
            ch->last = res.newest;
            ch->have_last = true;
        }
        /* The joiner got the history up to there. */
        if (ok && ch && msgid_cmp(&res.newest, &ch->highest) > 0)
            ch->highest = res.newest;
        q->u.join.cb(q->arg, ok ? 0 : -1, ok ? &res : NULL);
    }
    if (ok)
        free_result(&res);
}

static void start_fill(struct rbus *rb, struct channel *ch)
{
    struct request *q;
    ch->filling = true;
    if (room_request(rb, "fill", ch->room, ch->room_len, NULL, &ch->last, room_done, &q) < 0) {
        finish_fill(rb, ch, NULL);
        return;
    }
    if (send_script(rb, q) < 0) {
        free(q);
        finish_fill(rb, ch, NULL);
    }
}

/* The chat script's answer: the new id, or {id, rest} of the original of a
 * resend. */
static void chat_published(struct request *q, const redisReply *r)
{
    struct msgid id;
    if (r && r->type == REDIS_REPLY_STRING) {
        bool ok = msgid_parse(r->str, r->len, &id);
        q->u.chat.done(q->arg, 0, ok ? &id : NULL, NULL);
        return;
    }
    struct frame *original = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        msgid_parse(r->element[0]->str, r->element[0]->len, &id))
        original = proto_chat_assemble(&id, r->element[1]->str, r->element[1]->len);
    else if (r)
        log_error("redis: unexpected answer to a chat");
    /* Without the original to show, the sender is told nothing was
     * delivered now, which is true: it was delivered before. */
    q->u.chat.done(q->arg, original ? 0 : -1, original ? &id : NULL, original);
    if (original)
        frame_unref(original);
}

/* Sends the room script for a join or a reader; cb gets -1 when it cannot
 * go. */
static void call_room(struct rbus *rb, const char *mode, const char *room, size_t room_len,
                      const char *name, const struct msgid *since, request_done_fn done,
                      bus_join_fn cb, void *arg)
{
    struct request *q;
    if (!ready(rb) || room_request(rb, mode, room, room_len, name, since, done, &q) < 0) {
        cb(arg, -1, NULL);
        return;
    }
    q->u.join.cb = cb;
    q->arg = arg;
    if (send_script(rb, q) < 0) {
        free(q);
        cb(arg, -1, NULL);
    }
}

void redis_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                const struct msgid *since, bus_join_fn cb, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    /* Registered whatever happens next: the caller's leave undoes it. */
    if (add && presence_add(&rb->presence, room, room_len, name) < 0)
        log_error("redis: out of memory tracking presence");
    /* The room script cannot reach this gateway's room set under Redis
     * Cluster: the set learns the room first, so that a reaper finds it. */
    if (add && rb->cluster && ready(rb))
        room_set_command(rb, "SADD", room, room_len);
    call_room(rb, add ? "join" : "rejoin", room, room_len, name, since, room_done, cb, arg);
}

/* The room script's answer for a reader: no channel is involved. */
static void history_done(struct request *q, const redisReply *reply)
{
    struct bus_join_result res;
    bool ok = parse_room_reply(reply, &res);
    q->u.join.cb(q->arg, ok ? 0 : -1, ok ? &res : NULL);
    if (ok)
        free_result(&res);
}

void redis_history(struct bus *b, const char *room, size_t room_len, const struct msgid *since,
                   bus_join_fn cb, void *arg)
{
    /* A re-join registers nothing: the mode for a reader. */
    call_room((struct rbus *)b, "rejoin", room, room_len, NULL, since, history_done, cb, arg);
}

/* ---- publishing ---- */

void redis_publish_chat(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    if (!ready(rb)) {
        done(arg, -1, NULL, NULL);
        return;
    }
    char stream[KEY_MAX], chan[KEY_MAX], maxlen[16], cidkey[KEY_MAX], window[16];
    char body[DEDUPE_KEY_MAX], floor[MSGID_STR_MAX];
    const char *argv[13];
    size_t lens[13];
    lens[8] = 0;
    if (m->room) {
        lens[0] = room_key(stream, rb, "history:", m->room, m->room_len);
        lens[2] = room_channel(chan, rb, m->room, m->room_len);
        /* Ids never go below what this gateway's members saw (chat.lua). */
        const struct channel *ch = strmap_get(&rb->channels, m->room, m->room_len);
        if (ch && ch->have_last)
            lens[8] = msgid_format(&ch->highest, floor);
    } else {
        lens[0] = make_key(stream, rb, "history", "", 0);
        lens[2] = (size_t)snprintf(chan, sizeof(chan), "%s", rb->broadcast);
    }
    bool dedupe = m->cid && b->cfg->dedupe_window_ms;
    size_t blen =
        dedupe ? dedupe_key(body, m->room, m->room_len, m->sender, m->cid, m->cid_len) : 0;
    lens[1] = make_key_in(cidkey, rb, m->room, m->room_len, "cid:", body, blen);
    lens[3] = (size_t)snprintf(maxlen, sizeof(maxlen), "%u", b->cfg->history);
    lens[7] = dedupe ? (size_t)snprintf(window, sizeof(window), "%u", b->cfg->dedupe_window_ms) : 0;
    argv[0] = stream, argv[1] = cidkey, argv[2] = chan, argv[3] = maxlen;
    argv[4] = m->rest, lens[4] = m->len;
    argv[5] = STREAM_TTL_MS, lens[5] = sizeof(STREAM_TTL_MS) - 1;
    argv[6] = PROTO_CHAT_PREFIX, lens[6] = strlen(PROTO_CHAT_PREFIX);
    argv[7] = window;
    argv[8] = floor;
    /* A room's channel is a shard channel under Redis Cluster; the
     * broadcast channel stays classic, which reaches every node. */
    argv[9] = rb->cluster && m->room ? "SPUBLISH" : "PUBLISH", lens[9] = strlen(argv[9]);
    int argc = events_args(rb, argv, lens, 10);
    argv[argc] = m->room ? m->room : "", lens[argc] = m->room_len;
    struct request *q = request_new(rb, S_CHAT, argc + 1, argv, lens, chat_published);
    if (!q) {
        done(arg, -1, NULL, NULL);
        return;
    }
    q->u.chat.done = done;
    q->arg = arg;
    if (send_script(rb, q) < 0) {
        free(q);
        done(arg, -1, NULL, NULL);
    }
}

int redis_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f)
{
    struct rbus *rb = (struct rbus *)b;
    if (!ready(rb))
        return -1;
    char chan[KEY_MAX];
    size_t clen = room ? room_channel(chan, rb, room, room_len)
                       : (size_t)snprintf(chan, sizeof(chan), "%s", rb->broadcast);
    bool sharded = rb->cluster && room;
    const char *argv[3] = {sharded ? "SPUBLISH" : "PUBLISH", chan, (const char *)frame_data(f)};
    size_t lens[3] = {strlen(argv[0]), clen, f->len};
    /* A shard channel is on its slot's node, which a resharding moves: a
     * command that follows it. Classic pub/sub reaches every node from
     * any. */
    if (sharded)
        return send_command(rb, 3, argv, lens, NULL, NULL);
    if (!rb->cmd || redisAsyncCommandArgv(rb->cmd, NULL, NULL, 3, argv, lens) != REDIS_OK)
        return -1;
    return 0;
}

/* ---- the link ---- */

void channels_connected(struct rbus *rb)
{
    /* The canary's first: the broadcast's answer, which makes the link
     * ready, then says both are live. */
    sub_command(rb, "SUBSCRIBE", rb->canary.channel, rb->canary.channel_len, false);
    sub_command(rb, "SUBSCRIBE", rb->broadcast, rb->broadcast_len, false);
}

void channels_link_up(struct rbus *rb)
{
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        struct channel *ch = s->value;
        if (ch->wanted && ch->state == SUB_NONE)
            channel_subscribe(rb, ch);
    }
}

/* Whether ch's channel is on primary node (node -1: any). */
static bool on_node(const struct rbus *rb, const struct channel *ch, long node)
{
    char chan[KEY_MAX];
    return node < 0 ||
           cluster_node_of(rb, chan, room_channel(chan, rb, ch->room, ch->room_len)) == node;
}

/* The subscriptions of node's channels (every channel's: -1) died with
 * their connection. A channel whose probe is still in flight (it went to
 * another node, before the map moved the channel's slot) is left to the
 * probe's answer, which moves it on. */
static void channels_lost(struct rbus *rb, long node)
{
    /* What is wanted comes back on reconnect. Joins waiting for a
     * subscription that was not live yet are answered now rather than
     * after the outage. */
    const struct strmap_slot *s;
    struct strmap pending;
    strmap_init(&pending);
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        struct channel *ch = s->value;
        if (!on_node(rb, ch, node) || ch->probing)
            continue;
        if (ch->wanted && (ch->state != SUB_LIVE || ch->filling))
            strmap_put(&pending, ch->room, ch->room_len, NULL);
        ch->state = SUB_NONE;
        ch->filling = false;
        sendq_clear(&ch->held);
    }
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        const struct channel *ch = s->value;
        if (!ch->wanted && !ch->probing && on_node(rb, ch, node)) {
            channel_drop(rb, s->value);
            i = 0; /* the map changed under the iteration */
        }
    }
    /* Handlers may unsubscribe, so they run on a copy of the names. */
    for (size_t i = 0; strmap_next(&pending, &i, &s);)
        rb->base.h.subscribed(rb->base.h.ctx, s->key, s->len, -1);
    strmap_free(&pending);
}

void channels_link_down(struct rbus *rb)
{
    channels_lost(rb, -1);
}

void channels_node_down(struct rbus *rb, size_t node)
{
    channels_lost(rb, (long)node);
}

void channels_free(struct rbus *rb)
{
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);)
        channel_free(s->value);
    strmap_free(&rb->channels);
}
