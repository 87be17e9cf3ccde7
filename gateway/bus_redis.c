/* The Redis bus. Two hiredis async connections on the gateway's event_base:
 * one for commands and Lua scripts, one subscribed to the broadcast channel
 * and to the channel of every room with local members.
 *
 * Chat messages go through one script that appends to the room's stream
 * and publishes in the same atomic step, so the stream id is the message id
 * and ids increase in publish order. A subscribe and an unsubscribe of the
 * same channel are never in flight together (hiredis 0.14 loses track of a
 * channel's callback when they overlap), and the broadcast channel stays
 * subscribed for the life of the connection, so hiredis never leaves
 * subscribed mode behind our back.
 *
 * When Redis goes away, every request in flight fails (the sender gets
 * `unavailable`), the gateway keeps its clients, reconnects with capped
 * exponential backoff and jitter, re-registers its presence and count,
 * resubscribes its rooms and replays from the streams what was published
 * while it was away. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bus.h"
#include "bus_redis_internal.h"
#include "dedupe.h"
#include "log.h"
#include "metrics.h"
#include "presence.h"
#include "sendq.h"
#include "strmap.h"

/* A gateway that missed heartbeats this long is gone from counts and
 * presence. */
#define GATEWAY_TTL_MS 15000
/* Reconnect backoff: doubles from the first to the cap, with jitter. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_CAP_MS 3000
/* Heartbeat period; also how long a connection attempt or an answer from
 * Redis may take before the connection is given up and started again. */
#define HEARTBEAT_MS 5000
#define HEARTBEATS_MISSED_MAX 2
#define CLOSE_TIMEOUT_MS 1000
/* Streams of rooms idle this long expire. */
#define STREAM_TTL_MS "604800000"
#define KEY_MAX 256
/* Most arguments (keys and ARGV) a script takes. */
#define MAX_ARGS 10
/* Work one call of the reap script may do: rooms plus presence entries
 * looked at. A dead gateway with more is cleaned up over several calls, so
 * that no call holds Redis for long. */
#define REAP_BUDGET "500"

enum script { S_CHAT, S_ROOM, S_LEAVE, S_COUNT, S_RESET, S_ANNOUNCE, S_REAP, S_COUNT_ALL };
static const char *const script_src[S_COUNT_ALL] = {lua_chat,  lua_room,     lua_leave, lua_count,
                                                    lua_reset, lua_announce, lua_reap};

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_READY };
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
    bool filling;      /* replaying the stream after a resubscribe */
    struct sendq held; /* messages that arrived while filling */
};

struct rbus {
    struct bus base;
    redisAsyncContext *cmd, *sub;
    enum link_state state;
    bool cmd_up, broadcast_live;
    unsigned scripts_pending;
    char sha[S_COUNT_ALL][41];
    unsigned attempt;
    struct event *reconnect_timer, *heartbeat_timer, *close_timer;
    unsigned heartbeats_unanswered;
    unsigned replies_since_beat; /* script answers since the last heartbeat */
    bool closing;
    bus_done_fn close_done;
    void *close_arg;
    struct strmap channels;
    struct presence presence; /* what this gateway registered, to redo it */
    char broadcast[KEY_MAX];
    size_t broadcast_len;
};

/* A request in flight on the command connection. */
struct request {
    struct rbus *rb;
    enum script script;
    union {
        struct {
            bus_chat_fn done;
        } chat;
        struct {
            bus_join_fn cb;
        } join;
        struct {
            bus_names_fn cb;
        } names;
    } u;
    void *arg;
    /* For a retry after NOSCRIPT: the arguments, copied. */
    int argc;
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    char room[PROTO_ROOM_MAX + 1];
    size_t room_len;
    char data[]; /* argument bytes */
};

static void teardown(struct rbus *rb, const char *why);
static void start_connect(struct rbus *rb);
static void reregister(struct rbus *rb);
static void send_reap(struct rbus *rb);

static size_t make_key(char *buf, const struct rbus *rb, const char *kind, const char *s,
                       size_t len)
{
    /* Names hold no NUL (control characters are refused), so %.*s is exact. */
    int n = snprintf(buf, KEY_MAX, "%s%s%.*s", rb->base.cfg->redis_prefix, kind, (int)len, s);
    return n < KEY_MAX ? (size_t)n : KEY_MAX - 1;
}

static bool ready(struct rbus *rb)
{
    return rb->state == LINK_READY && !rb->closing;
}

/* ---- sending commands ---- */

static void on_script_reply(redisAsyncContext *c, void *r, void *privdata);

/* Sends a script call; the request is freed by on_script_reply. Falls back
 * to EVAL (which also caches the script) when the sha is unknown. */
static int send_script(struct rbus *rb, struct request *q, bool eval)
{
    const char *argv[3 + MAX_ARGS];
    size_t lens[3 + MAX_ARGS];
    char nkeys[4];
    static const int keys_of[S_COUNT_ALL] = {2, 5, 2, 3, 1, 1, 2};
    argv[0] = eval ? "EVAL" : "EVALSHA";
    argv[1] = eval ? script_src[q->script] : rb->sha[q->script];
    snprintf(nkeys, sizeof(nkeys), "%d", keys_of[q->script]);
    argv[2] = nkeys;
    for (int i = 0; i < 3; i++)
        lens[i] = strlen(argv[i]);
    for (int i = 0; i < q->argc; i++) {
        argv[3 + i] = q->argv[i];
        lens[3 + i] = q->argvlen[i];
    }
    if (!rb->cmd ||
        redisAsyncCommandArgv(rb->cmd, on_script_reply, q, 3 + q->argc, argv, lens) != REDIS_OK)
        return -1;
    return 0;
}

/* A request with copies of its arguments (keys first, then ARGV). */
static struct request *request_new(struct rbus *rb, enum script s, int argc, const char **argv,
                                   const size_t *lens)
{
    size_t total = 0;
    for (int i = 0; i < argc; i++)
        total += lens[i];
    struct request *q = malloc(sizeof(*q) + total);
    if (!q)
        return NULL;
    memset(q, 0, sizeof(*q));
    q->rb = rb;
    q->script = s;
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

/* Completes a request with a failure (reply NULL) or its reply. */
static void complete(struct request *q, redisReply *reply);

static void on_script_reply(redisAsyncContext *c, void *r, void *privdata)
{
    (void)c;
    struct request *q = privdata;
    redisReply *reply = r;
    if (reply)
        q->rb->replies_since_beat++;
    if (reply && reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        send_script(q->rb, q, true) == 0) {
        log_warn("redis: script cache was flushed, loading it again");
        return;
    }
    if (reply && reply->type == REDIS_REPLY_ERROR)
        log_error("redis: script failed: %s", reply->str);
    complete(q, reply && reply->type != REDIS_REPLY_ERROR ? reply : NULL);
    free(q);
}

static void fire_and_forget(struct rbus *rb, enum script s, int argc, const char **argv,
                            const size_t *lens)
{
    struct request *q = request_new(rb, s, argc, argv, lens);
    if (q && send_script(rb, q, false) < 0) {
        complete(q, NULL);
        free(q);
    }
}

/* ---- channels and subscriptions ---- */

static size_t room_channel(char *buf, const struct rbus *rb, const char *room, size_t len)
{
    return make_key(buf, rb, "room:", room, len);
}

static void on_sub_message(redisAsyncContext *c, void *r, void *privdata);

static void sub_command(struct rbus *rb, const char *verb, const char *chan, size_t len)
{
    const char *argv[2] = {verb, chan};
    size_t lens[2] = {strlen(verb), len};
    if (rb->sub)
        redisAsyncCommandArgv(rb->sub, on_sub_message, rb, 2, argv, lens);
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
        ch->state = SUB_PENDING;
        sub_command(rb, "SUBSCRIBE", chan, len);
    } else if (!ch->wanted && ch->state == SUB_LIVE) {
        ch->state = UNSUB_PENDING;
        sub_command(rb, "UNSUBSCRIBE", chan, len);
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

static void check_ready(struct rbus *rb);

static void on_sub_message(redisAsyncContext *c, void *r, void *privdata)
{
    (void)c;
    struct rbus *rb = privdata;
    redisReply *reply = r;
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    const redisReply *name = reply->element[1];
    bool is_broadcast =
        name->len == rb->broadcast_len && memcmp(name->str, rb->broadcast, rb->broadcast_len) == 0;
    size_t pre = strlen(rb->base.cfg->redis_prefix) + 5; /* "room:" */
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
            bus_note_count(&rb->base, f);
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
            check_ready(rb);
        } else if (ch && ch->state == SUB_PENDING)
            on_subscribed(rb, ch);
    } else if (strcmp(kind, "unsubscribe") == 0) {
        if (ch && ch->state == UNSUB_PENDING) {
            ch->state = SUB_NONE;
            ch->filling = false;
            sendq_clear(&ch->held);
            channel_step(rb, ch); /* wanted again meanwhile, or gone */
        }
    }
}

static void redis_subscribe(struct bus *b, const char *room, size_t room_len)
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

static void redis_unsubscribe(struct bus *b, const char *room, size_t room_len)
{
    struct rbus *rb = (struct rbus *)b;
    struct channel *ch = strmap_get(&rb->channels, room, room_len);
    if (!ch)
        return;
    ch->wanted = false;
    channel_step(rb, ch);
}

/* ---- room scripts: join, presence, replay ---- */

static int room_request(struct rbus *rb, const char *mode, const char *room, size_t room_len,
                        const char *name, const struct msgid *since, struct request **out)
{
    char stream[KEY_MAX], pres[KEY_MAX], gws[KEY_MAX], gwrooms[KEY_MAX], pnames[KEY_MAX],
        field[200], sincebuf[MSGID_STR_MAX], keep[16];
    const char *id = rb->base.cfg->id;
    const char *argv[10];
    size_t lens[10];
    lens[0] = make_key(stream, rb, "history:", room, room_len);
    lens[1] = make_key(pres, rb, "presence:", room, room_len);
    lens[2] = make_key(gws, rb, "gateways", "", 0);
    lens[3] = make_key(gwrooms, rb, "gwrooms:", id, strlen(id));
    lens[4] = make_key(pnames, rb, "pnames:", room, room_len);
    int flen = snprintf(field, sizeof(field), "%s\t%s", id, name ? name : "");
    size_t slen = since ? msgid_format(since, sincebuf) : 0;
    argv[0] = stream, argv[1] = pres, argv[2] = gws, argv[3] = gwrooms, argv[4] = pnames;
    argv[5] = mode, lens[5] = strlen(mode);
    argv[6] = field, lens[6] = (size_t)flen;
    argv[7] = sincebuf, lens[7] = slen;
    argv[8] = room, lens[8] = room_len;
    argv[9] = keep, lens[9] = (size_t)snprintf(keep, sizeof(keep), "%u", rb->base.cfg->history);
    struct request *q = request_new(rb, S_ROOM, 10, argv, lens);
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
    if (res && res->truncated) {
        struct frame *f = proto_system(ch->room, ch->room_len,
                                       "Some messages of this room could not be recovered "
                                       "after a connection loss",
                                       bus_now_ms());
        if (f) {
            bus_deliver_room(&rb->base, ch->room, ch->room_len, NULL, f);
            frame_unref(f);
        }
    }
    for (size_t i = 0; res && i < res->n; i++) {
        struct msgid id;
        if (proto_chat_id(frame_data(res->history[i]), res->history[i]->len, &id) &&
            msgid_cmp(&id, &ch->last) > 0)
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
    if (res)
        log_info("redis: room %.*s resubscribed, %zu missed messages replayed", (int)ch->room_len,
                 ch->room, res->n);
    rb->base.h.subscribed(rb->base.h.ctx, ch->room, ch->room_len, 0);
}

static void start_fill(struct rbus *rb, struct channel *ch)
{
    struct request *q;
    ch->filling = true;
    if (room_request(rb, "fill", ch->room, ch->room_len, NULL, &ch->last, &q) < 0) {
        finish_fill(rb, ch, NULL);
        return;
    }
    if (send_script(rb, q, false) < 0) {
        free(q);
        finish_fill(rb, ch, NULL);
    }
}

static int redis_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f);

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
    for (size_t i = 0, n = announce_frames(room, room_len, &b, bus_now_ms(), f); i < n; i++) {
        redis_publish_frame(&rb->base, room, room_len, f[i]);
        frame_unref(f[i]);
    }
}

/* The chat script's answer: the new id, or {id, rest} of the original of a
 * resend. */
static void chat_published(struct request *q, const redisReply *r)
{
    if (r && r->type == REDIS_REPLY_STRING) {
        q->u.chat.done(q->arg, 0, NULL);
        return;
    }
    struct msgid id;
    struct frame *original = NULL;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        msgid_parse(r->element[0]->str, r->element[0]->len, &id))
        original = proto_chat_assemble(&id, r->element[1]->str, r->element[1]->len);
    else if (r)
        log_error("redis: unexpected answer to a chat");
    /* Without the original to show, the sender is told nothing was
     * delivered now, which is true: it was delivered before. */
    q->u.chat.done(q->arg, original ? 0 : -1, original);
    if (original)
        frame_unref(original);
}

/* The answer of the count and reap scripts: {integer, second_type}. */
static bool is_pair(const redisReply *r, int second_type)
{
    return r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
           r->element[0]->type == REDIS_REPLY_INTEGER && r->element[1]->type == second_type;
}

static void complete(struct request *q, redisReply *reply)
{
    struct rbus *rb = q->rb;
    switch (q->script) {
    case S_CHAT:
        chat_published(q, reply);
        break;
    case S_ROOM: {
        const char *mode = q->argv[5];
        size_t mlen = q->argvlen[5];
        if (mlen == 8 && memcmp(mode, "presence", 8) == 0) {
            if (!reply || reply->type != REDIS_REPLY_ARRAY) {
                q->u.names.cb(q->arg, -1, NULL, 0);
                break;
            }
            const char **names = malloc(sizeof(char *) * (reply->elements + 1));
            size_t n = 0;
            for (size_t i = 0; names && i < reply->elements; i++)
                if (reply->element[i]->type == REDIS_REPLY_STRING)
                    names[n++] = reply->element[i]->str;
            q->u.names.cb(q->arg, names ? 0 : -1, names, n);
            free(names);
            break;
        }
        struct bus_join_result res;
        bool ok = parse_room_reply(reply, &res);
        struct channel *ch = strmap_get(&rb->channels, q->room, q->room_len);
        if (mlen == 4 && memcmp(mode, "fill", 4) == 0) {
            if (ch && ch->filling)
                finish_fill(rb, ch, ok ? &res : NULL);
        } else {
            /* A channel with no delivery yet counts from the stream's end at
             * join time, so a later replay starts there. */
            if (ok && ch && !ch->have_last) {
                ch->last = res.newest;
                ch->have_last = true;
            }
            q->u.join.cb(q->arg, ok ? 0 : -1, ok ? &res : NULL);
        }
        if (ok)
            free_result(&res);
        break;
    }
    case S_COUNT:
        if (q->arg) /* the heartbeat */
            rb->heartbeats_unanswered = 0;
        if (!reply || !ready(rb))
            break;
        if (!is_pair(reply, REDIS_REPLY_INTEGER)) {
            log_error("redis: unexpected answer to the count script");
            break;
        }
        if (reply->element[0]->integer > 0)
            bus_count_again(&rb->base, (unsigned)reply->element[0]->integer);
        if (reply->element[1]->integer)
            reregister(rb);
        break;
    case S_REAP:
        if (!reply || !ready(rb))
            break;
        if (!is_pair(reply, REDIS_REPLY_STRING)) {
            log_error("redis: unexpected answer to the reap script");
            break;
        }
        if (reply->element[1]->len) {
            metrics.dead_gateways_reaped++;
            log_info("redis: cleaned up after gateway %s: its heartbeat lapsed",
                     reply->element[1]->str);
        }
        if (reply->element[0]->integer)
            send_reap(rb); /* more to do: right away, in bounded steps */
        break;
    case S_ANNOUNCE:
        if (reply)
            announced(rb, q->room_len ? q->room : NULL, q->room_len, reply);
        break;
    case S_LEAVE:
    case S_RESET:
    case S_COUNT_ALL:
        break;
    }
}

static void redis_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                       const struct msgid *since, bus_join_fn cb, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    struct request *q;
    /* Registered whatever happens next: the caller's leave undoes it. */
    if (add && presence_add(&rb->presence, room, room_len, name) < 0)
        log_error("redis: out of memory tracking presence");
    if (!ready(rb) ||
        room_request(rb, add ? "join" : "rejoin", room, room_len, name, since, &q) < 0) {
        cb(arg, -1, NULL);
        return;
    }
    q->u.join.cb = cb;
    q->arg = arg;
    if (send_script(rb, q, false) < 0) {
        free(q);
        cb(arg, -1, NULL);
    }
}

static void send_leave(struct rbus *rb, const char *room, size_t room_len, const char *name)
{
    char pres[KEY_MAX], pnames[KEY_MAX], field[200];
    const char *argv[4] = {pres, pnames, field, name};
    size_t lens[4];
    lens[0] = make_key(pres, rb, "presence:", room, room_len);
    lens[1] = make_key(pnames, rb, "pnames:", room, room_len);
    lens[2] = (size_t)snprintf(field, sizeof(field), "%s\t%s", rb->base.cfg->id, name);
    lens[3] = strlen(name);
    fire_and_forget(rb, S_LEAVE, 4, argv, lens);
}

static void redis_leave(struct bus *b, const char *room, size_t room_len, const char *name)
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
        char gwrooms[KEY_MAX];
        const char *id = rb->base.cfg->id;
        const char *srem[3] = {"SREM", gwrooms, room};
        size_t lens[3] = {4, make_key(gwrooms, rb, "gwrooms:", id, strlen(id)), room_len};
        redisAsyncCommandArgv(rb->cmd, NULL, NULL, 3, srem, lens);
    }
}

static void redis_presence(struct bus *b, const char *room, size_t room_len, bus_names_fn cb,
                           void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    struct request *q;
    if (!ready(rb) || room_request(rb, "presence", room, room_len, NULL, NULL, &q) < 0) {
        cb(arg, -1, NULL, 0);
        return;
    }
    q->u.names.cb = cb;
    q->arg = arg;
    if (send_script(rb, q, false) < 0) {
        free(q);
        cb(arg, -1, NULL, 0);
    }
}

/* ---- publishing ---- */

static void redis_publish_chat(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    if (!ready(rb)) {
        done(arg, -1, NULL);
        return;
    }
    char stream[KEY_MAX], chan[KEY_MAX], maxlen[16], cidkey[KEY_MAX], window[16];
    char body[DEDUPE_KEY_MAX];
    const char *argv[8];
    size_t lens[8];
    if (m->room) {
        lens[0] = make_key(stream, rb, "history:", m->room, m->room_len);
        lens[2] = room_channel(chan, rb, m->room, m->room_len);
    } else {
        lens[0] = make_key(stream, rb, "history", "", 0);
        lens[2] = (size_t)snprintf(chan, sizeof(chan), "%s", rb->broadcast);
    }
    bool dedupe = m->cid && b->cfg->dedupe_window_ms;
    size_t blen =
        dedupe ? dedupe_key(body, m->room, m->room_len, m->sender, m->cid, m->cid_len) : 0;
    lens[1] = make_key(cidkey, rb, "cid:", body, blen);
    lens[3] = (size_t)snprintf(maxlen, sizeof(maxlen), "%u", b->cfg->history);
    lens[7] = dedupe ? (size_t)snprintf(window, sizeof(window), "%u", b->cfg->dedupe_window_ms) : 0;
    argv[0] = stream, argv[1] = cidkey, argv[2] = chan, argv[3] = maxlen;
    argv[4] = m->rest, lens[4] = m->len;
    argv[5] = STREAM_TTL_MS, lens[5] = sizeof(STREAM_TTL_MS) - 1;
    argv[6] = PROTO_CHAT_PREFIX, lens[6] = strlen(PROTO_CHAT_PREFIX);
    argv[7] = window;
    struct request *q = request_new(rb, S_CHAT, 8, argv, lens);
    if (!q) {
        done(arg, -1, NULL);
        return;
    }
    q->u.chat.done = done;
    q->arg = arg;
    if (send_script(rb, q, false) < 0) {
        free(q);
        done(arg, -1, NULL);
    }
}

static int redis_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f)
{
    struct rbus *rb = (struct rbus *)b;
    if (!ready(rb))
        return -1;
    char chan[KEY_MAX];
    size_t clen = room ? room_channel(chan, rb, room, room_len)
                       : (size_t)snprintf(chan, sizeof(chan), "%s", rb->broadcast);
    const char *argv[3] = {"PUBLISH", chan, (const char *)frame_data(f)};
    size_t lens[3] = {7, clen, f->len};
    return redisAsyncCommandArgv(rb->cmd, NULL, NULL, 3, argv, lens) == REDIS_OK ? 0 : -1;
}

static void redis_publish_announcement(struct bus *b, const char *room, size_t room_len,
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
    lens[0] = room ? make_key(key, rb, "announce:", room, room_len)
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
    struct request *q = request_new(rb, S_ANNOUNCE, 7, argv, lens);
    if (!q)
        return;
    if (room) {
        memcpy(q->room, room, room_len);
        q->room[room_len] = '\0';
        q->room_len = room_len;
    }
    if (send_script(rb, q, false) < 0)
        free(q);
}

/* mode: "withdraw", "connect" or "beat" (lua_count). */
static void send_count(struct rbus *rb, long local, const char *mode, void *tag)
{
    char gws[KEY_MAX], clients[KEY_MAX], last[KEY_MAX], count[24], ttl[16], every[16];
    const char *id = rb->base.cfg->id;
    const char *argv[9];
    size_t lens[9];
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
    struct request *q = request_new(rb, S_COUNT, 9, argv, lens);
    if (!q)
        return;
    q->arg = tag;
    if (send_script(rb, q, false) < 0) {
        free(q);
        return;
    }
    if (tag)
        rb->heartbeats_unanswered++;
}

static void redis_publish_count(struct bus *b, long local)
{
    struct rbus *rb = (struct rbus *)b;
    if (ready(rb))
        send_count(rb, local, "beat", NULL);
}

static void send_reap(struct rbus *rb)
{
    char gws[KEY_MAX], clients[KEY_MAX], gwrooms[KEY_MAX], pres[KEY_MAX], pnames[KEY_MAX];
    const char *argv[6] = {gws, clients, gwrooms, pres, REAP_BUDGET, pnames};
    size_t lens[6];
    lens[0] = make_key(gws, rb, "gateways", "", 0);
    lens[1] = make_key(clients, rb, "clients", "", 0);
    lens[2] = make_key(gwrooms, rb, "gwrooms:", "", 0);
    lens[3] = make_key(pres, rb, "presence:", "", 0);
    lens[4] = sizeof(REAP_BUDGET) - 1;
    lens[5] = make_key(pnames, rb, "pnames:", "", 0);
    fire_and_forget(rb, S_REAP, 6, argv, lens);
}

/* ---- connection life ---- */

static void heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (rb->state == LINK_CONNECTING) {
        teardown(rb, "connection attempt timed out");
        return;
    }
    if (rb->state != LINK_READY || rb->closing)
        return;
    /* Answers came since the last beat: Redis is alive, only behind (in a
     * connect storm thousands of joins queue up ahead of the heartbeat).
     * Only a Redis that answers nothing at all is gone. */
    if (rb->replies_since_beat)
        rb->heartbeats_unanswered = 0;
    rb->replies_since_beat = 0;
    if (rb->heartbeats_unanswered >= HEARTBEATS_MISSED_MAX) {
        /* Redis has not answered for periods: treat it as gone, so that
         * what waits on it fails now instead of hanging. (One late answer
         * is only a busy loop: both ends may be loaded.) */
        teardown(rb, "no answer to the heartbeat");
        return;
    }
    send_count(rb, rb->base.local_clients, "beat", rb);
    send_reap(rb);
}

static void reregister(struct rbus *rb)
{
    char gwrooms[KEY_MAX], pres[KEY_MAX], pnames_prefix[KEY_MAX];
    const char *id = rb->base.cfg->id;
    const char *argv[4];
    size_t lens[4];
    lens[0] = make_key(gwrooms, rb, "gwrooms:", id, strlen(id));
    lens[1] = strlen(id);
    lens[2] = make_key(pres, rb, "presence:", "", 0);
    lens[3] = make_key(pnames_prefix, rb, "pnames:", "", 0);
    argv[0] = gwrooms, argv[1] = id, argv[2] = pres, argv[3] = pnames_prefix;
    fire_and_forget(rb, S_RESET, 4, argv, lens);

    /* Then what this gateway has now, behind the reset on the same
     * connection. */
    const struct strmap_slot *room;
    for (size_t i = 0; strmap_next(&rb->presence.rooms, &i, &room);) {
        char key[KEY_MAX], nkey[KEY_MAX], field[200], count[24];
        size_t klen = make_key(key, rb, "presence:", room->key, room->len);
        size_t nlen = make_key(nkey, rb, "pnames:", room->key, room->len);
        const struct strmap_slot *name;
        for (size_t j = 0; strmap_next(room->value, &j, &name);) {
            int flen = snprintf(field, sizeof(field), "%s\t%s", id, name->key);
            int clen = snprintf(count, sizeof(count), "%lu", (unsigned long)(uintptr_t)name->value);
            const char *hset[4] = {"HSET", key, field, count};
            size_t hl[4] = {4, klen, (size_t)flen, (size_t)clen};
            redisAsyncCommandArgv(rb->cmd, NULL, NULL, 4, hset, hl);
            const char *incr[4] = {"HINCRBY", nkey, name->key, count};
            size_t il[4] = {7, nlen, name->len, (size_t)clen};
            redisAsyncCommandArgv(rb->cmd, NULL, NULL, 4, incr, il);
        }
        const char *sadd[3] = {"SADD", gwrooms, room->key};
        size_t sl[3] = {4, lens[0], room->len};
        redisAsyncCommandArgv(rb->cmd, NULL, NULL, 3, sadd, sl);
    }
}

static void check_ready(struct rbus *rb)
{
    if (rb->state != LINK_CONNECTING || !rb->cmd_up || !rb->broadcast_live || rb->scripts_pending)
        return;
    rb->state = LINK_READY;
    rb->attempt = 0;
    metrics.redis_up = 1;
    log_info("redis: connected to %s:%d, resubscribing %zu rooms", rb->base.cfg->redis_host,
             rb->base.cfg->redis_port, rb->channels.count);
    /* Presence is registered when the answer says so (complete). */
    send_count(rb, rb->base.local_clients, "connect", NULL);
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        struct channel *ch = s->value;
        if (ch->wanted && ch->state == SUB_NONE) {
            char chan[KEY_MAX];
            size_t len = room_channel(chan, rb, ch->room, ch->room_len);
            ch->state = SUB_PENDING;
            sub_command(rb, "SUBSCRIBE", chan, len);
        }
    }
}

static void on_script_loaded(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    redisReply *reply = r;
    size_t s = (size_t)(uintptr_t)privdata;
    if (!rb)
        return;
    if (!reply || reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        teardown(rb,
                 reply && reply->type == REDIS_REPLY_ERROR ? reply->str : "could not load scripts");
        return;
    }
    memcpy(rb->sha[s], reply->str, 41);
    rb->scripts_pending--;
    check_ready(rb);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    struct rbus *rb = c->data;
    if (!rb)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees this context after the callback. */
        if (c == rb->cmd)
            rb->cmd = NULL;
        else
            rb->sub = NULL;
        teardown(rb, c->errstr);
        return;
    }
    if (c == rb->cmd) {
        rb->cmd_up = true;
        rb->scripts_pending = S_COUNT_ALL;
        for (size_t s = 0; s < S_COUNT_ALL; s++) {
            const char *argv[3] = {"SCRIPT", "LOAD", script_src[s]};
            size_t lens[3] = {6, 4, strlen(script_src[s])};
            redisAsyncCommandArgv(rb->cmd, on_script_loaded, (void *)(uintptr_t)s, 3, argv, lens);
        }
    } else {
        sub_command(rb, "SUBSCRIBE", rb->broadcast, rb->broadcast_len);
    }
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    struct rbus *rb = c->data;
    if (!rb)
        return; /* we freed it ourselves */
    /* hiredis frees this context after the callback. */
    bool was_sub = c == rb->sub;
    if (was_sub)
        rb->sub = NULL;
    else
        rb->cmd = NULL;
    char why[200];
    snprintf(why, sizeof(why), "%s connection closed%s%s", was_sub ? "subscriber" : "command",
             status == REDIS_OK ? "" : ": ", status == REDIS_OK ? "" : c->errstr);
    /* Redis also closes a subscriber that passes its pub/sub output buffer
     * limit; it logs 'client-output-buffer-limit' when it does. */
    if (was_sub && rb->cmd_up)
        log_warn("redis: the server closed the subscriber connection while the command "
                 "connection was up: if Redis logged 'client-output-buffer-limit', this "
                 "gateway fell behind its pub/sub traffic");
    teardown(rb, why);
}

static void schedule_reconnect(struct rbus *rb)
{
    unsigned shift = rb->attempt < 10 ? rb->attempt : 10;
    unsigned delay = BACKOFF_FIRST_MS << shift;
    if (delay > BACKOFF_CAP_MS)
        delay = BACKOFF_CAP_MS;
    delay = delay / 2 + (unsigned)((unsigned)rand() % (delay / 2 + 1)); /* jitter */
    rb->attempt++;
    struct timeval tv = {delay / 1000, (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(rb->reconnect_timer, &tv);
}

static void free_ctx(redisAsyncContext **pc)
{
    redisAsyncContext *c = *pc;
    *pc = NULL;
    if (c) {
        c->data = NULL;
        redisAsyncFree(c); /* fails what is in flight on it */
    }
}

static void finish_close(struct rbus *rb)
{
    evtimer_del(rb->close_timer);
    if (rb->close_done) {
        bus_done_fn done = rb->close_done;
        rb->close_done = NULL;
        done(rb->close_arg, 0);
    }
}

static void teardown(struct rbus *rb, const char *why)
{
    bool was_ready = rb->state == LINK_READY;
    if (rb->closing)
        ; /* leaving on purpose */
    else if (was_ready)
        log_warn("redis: lost (%s); clients stay connected, messages are refused until it "
                 "is back",
                 why);
    else if (rb->state == LINK_CONNECTING)
        log_warn("redis: cannot connect to %s:%d (%s)", rb->base.cfg->redis_host,
                 rb->base.cfg->redis_port, why);
    rb->state = LINK_DOWN;
    rb->cmd_up = rb->broadcast_live = false;
    rb->heartbeats_unanswered = rb->replies_since_beat = 0;
    metrics.redis_up = 0;
    free_ctx(&rb->cmd);
    free_ctx(&rb->sub);
    /* The subscriptions died with the connection; what is wanted comes
     * back on reconnect. Joins waiting for a subscription that was not
     * live yet are answered now rather than after the outage. */
    const struct strmap_slot *s;
    struct strmap pending;
    strmap_init(&pending);
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        struct channel *ch = s->value;
        if (ch->wanted && (ch->state != SUB_LIVE || ch->filling))
            strmap_put(&pending, ch->room, ch->room_len, NULL);
        ch->state = SUB_NONE;
        ch->filling = false;
        sendq_clear(&ch->held);
    }
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);) {
        if (!((struct channel *)s->value)->wanted) {
            channel_drop(rb, s->value);
            i = 0; /* the map changed under the iteration */
        }
    }
    /* Handlers may unsubscribe, so they run on a copy of the names. */
    for (size_t i = 0; strmap_next(&pending, &i, &s);)
        rb->base.h.subscribed(rb->base.h.ctx, s->key, s->len, -1);
    strmap_free(&pending);
    if (rb->closing) {
        finish_close(rb);
        return;
    }
    if (was_ready)
        metrics.redis_reconnects++;
    if (!evtimer_pending(rb->reconnect_timer, NULL))
        schedule_reconnect(rb);
}

static redisAsyncContext *connect_one(struct rbus *rb)
{
    redisAsyncContext *c = redisAsyncConnect(rb->base.cfg->redis_host, rb->base.cfg->redis_port);
    if (!c)
        return NULL;
    if (c->err) {
        log_warn("redis: %s", c->errstr);
        redisAsyncFree(c);
        return NULL;
    }
    c->data = rb;
    redisLibeventAttach(c, rb->base.base);
    redisAsyncSetConnectCallback(c, on_connect);
    redisAsyncSetDisconnectCallback(c, on_disconnect);
    return c;
}

static void start_connect(struct rbus *rb)
{
    rb->state = LINK_CONNECTING;
    rb->cmd = connect_one(rb);
    rb->sub = connect_one(rb);
    if (!rb->cmd || !rb->sub) {
        teardown(rb, "could not create a connection");
        return;
    }
    struct timeval tv = {HEARTBEAT_MS / 1000, 0};
    evtimer_del(rb->heartbeat_timer);
    evtimer_add(rb->heartbeat_timer, &tv);
}

static void reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (!rb->closing)
        start_connect(rb);
}

static bool redis_ready(struct bus *b)
{
    return ready((struct rbus *)b);
}

static void close_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    log_warn("redis: no answer while leaving the cluster");
    teardown(rb, "closing");
}

static void on_withdrawn(redisAsyncContext *c, void *r, void *privdata)
{
    (void)r, (void)privdata;
    struct rbus *rb = c->data;
    if (rb)
        teardown(rb, "closing");
}

static void redis_close(struct bus *b, bus_done_fn done, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    bool was_ready = ready(rb);
    rb->closing = true;
    rb->close_done = done;
    rb->close_arg = arg;
    evtimer_del(rb->reconnect_timer);
    evtimer_del(rb->heartbeat_timer);
    if (!was_ready) {
        teardown(rb, "closing");
        return;
    }
    /* Withdraw presence and count, then wait for Redis to have done it. */
    presence_free(&rb->presence);
    presence_init(&rb->presence);
    reregister(rb);
    send_count(rb, 0, "withdraw", NULL);
    redisAsyncCommand(rb->cmd, on_withdrawn, NULL, "PING");
    struct timeval tv = {0, CLOSE_TIMEOUT_MS * 1000};
    evtimer_add(rb->close_timer, &tv);
}

static void redis_free(struct bus *b)
{
    struct rbus *rb = (struct rbus *)b;
    rb->closing = true;
    rb->close_done = NULL;
    free_ctx(&rb->cmd);
    free_ctx(&rb->sub);
    event_free(rb->reconnect_timer);
    event_free(rb->heartbeat_timer);
    event_free(rb->close_timer);
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&rb->channels, &i, &s);)
        channel_free(s->value);
    strmap_free(&rb->channels);
    presence_free(&rb->presence);
    bus_base_free(b);
    free(rb);
}

static const struct bus_ops redis_ops = {
    .publish_chat = redis_publish_chat,
    .publish_frame = redis_publish_frame,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .join = redis_join,
    .leave = redis_leave,
    .presence = redis_presence,
    .announce = bus_announce_event,
    .publish_announcement = redis_publish_announcement,
    .publish_count = redis_publish_count,
    .ready = redis_ready,
    .close = redis_close,
    .free = redis_free,
};

struct bus *bus_redis_new(struct event_base *base, const struct config *cfg,
                          const struct bus_handlers *h)
{
    struct rbus *rb = calloc(1, sizeof(*rb));
    if (!rb)
        return NULL;
    if (bus_base_init(&rb->base, &redis_ops, base, cfg, h) < 0) {
        free(rb);
        return NULL;
    }
    strmap_init(&rb->channels);
    presence_init(&rb->presence);
    rb->broadcast_len = make_key(rb->broadcast, rb, "broadcast", "", 0);
    rb->reconnect_timer = evtimer_new(base, reconnect, rb);
    rb->heartbeat_timer = event_new(base, -1, EV_PERSIST, heartbeat, rb);
    rb->close_timer = evtimer_new(base, close_timeout, rb);
    if (!rb->reconnect_timer || !rb->heartbeat_timer || !rb->close_timer) {
        redis_free(&rb->base);
        return NULL;
    }
    start_connect(rb);
    return &rb->base;
}
