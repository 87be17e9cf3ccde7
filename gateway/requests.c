#include "requests.h"

#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/* RFC 6455's close code for a client that broke a policy. */
#define CLOSE_POLICY_VIOLATION 1008

/* An outstanding bus request. The client may go before the answer:
 * closing detaches the waits, and the answer then finds q NULL. */
struct request_wait {
    struct requests *rq;
    struct requester *q;
    struct list node; /* on q->waits while q is there */
    int64_t started_us;
    size_t room_len;
    char room[PROTO_ROOM_MAX + 1];
    size_t cid_len; /* a chat's cid, for its error; 0: none */
    char cid[PROTO_CID_MAX];
};

static struct request_wait *wait_new(struct requests *rq, struct requester *q, const char *room,
                                     size_t room_len)
{
    struct request_wait *w = malloc(sizeof(*w));
    if (!w)
        return NULL;
    w->rq = rq;
    w->q = q;
    list_init(&w->node);
    if (q->waits)
        list_insert_tail(q->waits, &w->node); /* before the first: the ring's end */
    else
        q->waits = &w->node;
    w->started_us = clock_mono_us();
    w->room_len = room ? room_len : 0;
    if (room)
        memcpy(w->room, room, room_len);
    w->room[w->room_len] = '\0';
    w->cid_len = 0;
    return w;
}

/* Takes w off its client's ring. */
static void wait_detach(struct request_wait *w)
{
    struct requester *q = w->q;
    if (!list_linked(&w->node))
        q->waits = NULL;
    else if (q->waits == &w->node)
        q->waits = w->node.next;
    list_remove(&w->node);
    w->q = NULL;
}

/* Frees the wait and returns its client, NULL if the client is gone. */
static struct requester *wait_finish(struct request_wait *w)
{
    struct requester *q = w->q;
    if (q)
        wait_detach(w);
    free(w);
    return q;
}

static void send_owned(struct requests *rq, struct requester *q, struct frame *f)
{
    if (f) {
        rq->ops->send(rq->ctx, q, f);
        frame_unref(f);
    }
}

void requests_error(struct requests *rq, struct requester *q, enum proto_error e, const char *why)
{
    metrics.errors[e]++;
    send_owned(rq, q, proto_error_frame(e, why));
}

/* An error answering a chat carries the chat's cid. */
static void chat_error(struct requests *rq, struct requester *q, enum proto_error e,
                       const char *why, const char *cid, size_t cid_len)
{
    metrics.errors[e]++;
    send_owned(rq, q, proto_chat_error(e, why, cid, cid_len));
}

static void chat_done(void *arg, int status, const struct msgid *id, struct frame *original)
{
    (void)id;
    struct request_wait *w = arg;
    struct requests *rq = w->rq;
    int64_t started = w->started_us;
    char cid[PROTO_CID_MAX];
    size_t cid_len = w->cid_len;
    memcpy(cid, w->cid, cid_len);
    struct requester *q = wait_finish(w);
    if (status < 0) {
        metrics.bus_publish_failures++;
        if (q)
            chat_error(rq, q, PROTO_UNAVAILABLE,
                       "the message could not reach the cluster: nothing was delivered",
                       cid_len ? cid : NULL, cid_len);
        return;
    }
    if (original) {
        /* A resend of a message already delivered: only its sender hears
         * of it again, with the original id. */
        metrics.chat_resends++;
        if (q)
            rq->ops->send(rq->ctx, q, original);
        return;
    }
    metrics_observe_latency_us((uint64_t)(clock_mono_us() - started));
}

static void presence_done(void *arg, int status, const char *const *names, size_t n)
{
    struct request_wait *w = arg;
    struct requests *rq = w->rq;
    char room[PROTO_ROOM_MAX + 1];
    size_t room_len = w->room_len;
    memcpy(room, w->room, room_len + 1);
    struct requester *q = wait_finish(w);
    if (!q)
        return;
    if (status < 0)
        requests_error(rq, q, PROTO_UNAVAILABLE,
                       "presence is unavailable: the cluster is unreachable");
    else
        send_owned(rq, q, proto_presence(room, room_len, names, n));
}

static void handle_chat(struct requests *rq, struct requester *q, const struct proto_request *req)
{
    if (req->room && !rooms_is_member(&q->rooms, req->room, req->room_len)) {
        chat_error(rq, q, PROTO_NOT_IN_ROOM, "join the room before sending to it", req->cid,
                   req->cid_len);
        return;
    }
    struct bus_chat m = {.room = req->room,
                         .room_len = req->room_len,
                         .sender = q->name,
                         .cid = req->cid,
                         .cid_len = req->cid_len};
    char *rest = proto_chat_rest(req->room, req->room_len, q->name, req->content, req->content_len,
                                 req->cid, req->cid_len, clock_wall_ms(), &m.len);
    struct request_wait *w = rest ? wait_new(rq, q, NULL, 0) : NULL;
    if (!w) {
        free(rest);
        chat_error(rq, q, PROTO_UNAVAILABLE, "out of memory: nothing was delivered", req->cid,
                   req->cid_len);
        return;
    }
    /* A cid is never empty (proto checks), so a length says there is one. */
    if (req->cid) {
        w->cid_len = req->cid_len;
        memcpy(w->cid, req->cid, req->cid_len);
    }
    m.rest = rest;
    metrics.bus_published++;
    rq->bus->ops->publish_chat(rq->bus, &m, chat_done, w);
    free(rest);
}

static void handle_request(struct requests *rq, struct requester *q,
                           const struct proto_request *req)
{
    enum proto_error e;
    switch (req->type) {
    case PROTO_JOIN_ROOM:
        if (q->rooms.count >= rq->cfg->max_rooms &&
            !rooms_is_member(&q->rooms, req->room, req->room_len)) {
            requests_error(rq, q, PROTO_TOO_MANY_ROOMS,
                           "you are in as many rooms as allowed: leave one");
            break;
        }
        q->busy = true;
        e = rooms_join(&rq->rooms, &q->rooms, q, q->name, req->room, req->room_len,
                       req->has_since ? &req->since : NULL);
        if (e != PROTO_OK) {
            q->busy = false;
            requests_error(rq, q, e, "the room could not be joined");
        }
        break;
    case PROTO_LEAVE_ROOM:
        if (rooms_leave(&rq->rooms, &q->rooms, req->room, req->room_len) == PROTO_OK)
            send_owned(rq, q, proto_left(req->room, req->room_len));
        else
            requests_error(rq, q, PROTO_NOT_IN_ROOM, "you are not in that room");
        break;
    case PROTO_CHAT:
        handle_chat(rq, q, req);
        break;
    case PROTO_ECHO:
        send_owned(rq, q, proto_echo(req->content, req->content_len));
        break;
    case PROTO_PING:
        send_owned(rq, q, proto_pong());
        break;
    case PROTO_PRESENCE: {
        struct request_wait *w = wait_new(rq, q, req->room, req->room_len);
        if (!w) {
            requests_error(rq, q, PROTO_UNAVAILABLE, "out of memory");
            break;
        }
        rq->bus->ops->presence(rq->bus, req->room, req->room_len, presence_done, w);
        break;
    }
    }
}

static void process(struct requests *rq, struct requester *q, const unsigned char *data, size_t len)
{
    struct proto_request req;
    const char *why;
    enum proto_error e = proto_decode((const char *)data, len, &req, &why);
    if (e != PROTO_OK) {
        requests_error(rq, q, e, why);
        return;
    }
    handle_request(rq, q, &req);
    proto_request_free(&req);
}

void requests_receive(struct requests *rq, struct requester *q, const unsigned char *data,
                      size_t len)
{
    if (!q->busy) {
        process(rq, q, data, len);
        return;
    }
    /* Bounded like the send queue: a client cannot make it grow freely. */
    if (!q->waiting && (q->waiting = malloc(sizeof(*q->waiting))))
        sendq_init(q->waiting);
    bool room = q->waiting && q->waiting->bytes + len <= rq->cfg->send_queue_limit;
    struct frame *f = room ? frame_copy(data, len) : NULL;
    if (!f || sendq_push(q->waiting, f, false) < 0)
        rq->ops->close(rq->ctx, q, CLOSE_POLICY_VIOLATION, "too many requests in flight");
    frame_unref(f);
}

static void waiting_free(struct requester *q)
{
    if (q->waiting) {
        sendq_clear(q->waiting);
        free(q->waiting);
        q->waiting = NULL;
    }
}

/* The rooms' owner of a membership is the requester; their context is rq. */
static void owner_overflow(void *ctx, void *owner)
{
    struct requests *rq = ctx;
    metrics.slow_consumer_drops++;
    rq->ops->close(rq->ctx, owner, CLOSE_POLICY_VIOLATION, "slow consumer");
}

/* The requests that waited for the join go now, until one of them starts
 * another join. */
static void owner_join_answered(void *ctx, void *owner)
{
    struct requests *rq = ctx;
    struct requester *q = owner;
    q->busy = false;
    if (q->draining)
        return; /* answered during the loop below: it goes on */
    q->draining = true;
    const struct sendq_entry *e;
    while (!q->busy && !q->closing && q->waiting && (e = sendq_peek(q->waiting))) {
        struct frame *f = frame_ref(e->frame);
        sendq_pop(q->waiting);
        process(rq, q, frame_data(f), f->len);
        frame_unref(f);
    }
    if (q->waiting && !q->waiting->count)
        waiting_free(q);
    q->draining = false;
}

static const struct rooms_owner_ops owner_ops = {owner_overflow, owner_join_answered};

static void on_room_frame(void *ctx, const char *room, size_t room_len, const struct msgid *id,
                          struct frame *f)
{
    struct requests *rq = ctx;
    rooms_on_frame(&rq->rooms, room, room_len, id, f);
}

static void on_broadcast_frame(void *ctx, struct frame *f)
{
    struct requests *rq = ctx;
    rq->ops->broadcast(rq->ctx, f);
}

static void on_subscribed(void *ctx, const char *room, size_t room_len, int status)
{
    struct requests *rq = ctx;
    rooms_on_subscribed(&rq->rooms, room, room_len, status);
}

static void on_control(void *ctx, struct frame *f)
{
    struct requests *rq = ctx;
    struct proto_control c;
    if (proto_control_decode(f, &c))
        rq->ops->control(rq->ctx, &c);
    else
        log_warn("bus: a malformed control frame was ignored");
}

static void on_history_lost(void *ctx, const char *room, size_t room_len)
{
    struct requests *rq = ctx;
    rooms_on_history_lost(&rq->rooms, room, room_len);
}

struct bus_handlers requests_bus_handlers(struct requests *rq)
{
    return (struct bus_handlers){.room_frame = on_room_frame,
                                 .broadcast_frame = on_broadcast_frame,
                                 .control = on_control,
                                 .subscribed = on_subscribed,
                                 .history_lost = on_history_lost,
                                 .ctx = rq};
}

void requests_remove_from_room(struct requests *rq, struct requester *q, const char *room,
                               size_t room_len)
{
    /* As if the client had asked: answered `left`, announced, and after a
     * join in flight (perhaps of this room) rather than across it. */
    if (rooms_has(&q->rooms, room, room_len)) {
        struct frame *f = proto_leave_request(room, room_len);
        if (f)
            requests_receive(rq, q, frame_data(f), f->len);
        else
            log_error("requests: out of memory: a removal from a room was not done");
        frame_unref(f);
    }
}

void requests_init(struct requests *rq, const struct config *cfg, struct bus *bus,
                   const struct requester_ops *ops, void *ctx)
{
    rq->cfg = cfg;
    rq->bus = bus;
    rq->ops = ops;
    rq->ctx = ctx;
    rooms_init(&rq->rooms, bus, &owner_ops, rq, ops->send, ctx, cfg->send_queue_limit);
}

void requests_free(struct requests *rq)
{
    rooms_free(&rq->rooms);
}

void requests_close(struct requests *rq, struct requester *q, bool tell)
{
    while (q->waits)
        wait_detach(list_entry(q->waits, struct request_wait, node));
    waiting_free(q);
    rooms_leave_all(&rq->rooms, &q->rooms, tell);
}
