#include "clients.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void send_frame(struct client *c, struct frame *f)
{
    view_check(&c->view, f);
}

static void send_owned(struct client *c, struct frame *f)
{
    if (f) {
        send_frame(c, f);
        frame_unref(f);
    }
}

static void send_error(struct client *c, enum proto_error e, const char *why)
{
    send_owned(c, proto_error_frame(e, why));
}

void clients_broadcast(struct harness *h, struct frame *f)
{
    for (int i = 0; i < CLIENTS; i++)
        if (h->clients[i])
            send_frame(h->clients[i], f);
}

void clients_check_received(struct harness *h, const char *room, size_t room_len,
                            const struct msgid *id)
{
    for (int i = 0; i < CLIENTS; i++) {
        struct client *c = h->clients[i];
        if (!c || c->busy || !rooms_is_member(&c->rooms, room, room_len))
            continue;
        if (!view_has_seen(&c->view, room, room_len, id)) {
            fprintf(stderr,
                    "fuzz_frame: %s, in room %.*s, missed a chat published after its joined\n",
                    c->name, (int)room_len, room);
            abort();
        }
    }
}

static void announce_global(struct harness *h, const char *name, const char *what)
{
    char content[PROTO_NAME_MAX + 16];
    snprintf(content, sizeof(content), "%s %s", name, what);
    struct frame *f = proto_system(NULL, 0, content, bus_now_ms());
    if (f) {
        h->bus->ops->publish_frame(h->bus, NULL, 0, f);
        frame_unref(f);
    }
}

static void remember_room(struct harness *h, const char *room, size_t len)
{
    for (size_t i = 0; i < h->n_seen; i++)
        if (h->seen[i].len == len && memcmp(h->seen[i].name, room, len) == 0)
            return;
    if (h->n_seen < SEEN_ROOMS_MAX) {
        memcpy(h->seen[h->n_seen].name, room, len);
        h->seen[h->n_seen++].len = len;
    }
}

/* Both buses of the harness answer chats and presence before returning, so
 * the client is still there when these run. */
static void chat_done(void *arg, int status)
{
    if (status < 0)
        send_error(arg, PROTO_UNAVAILABLE, "the message could not reach the cluster");
}

struct presence_ask {
    struct client *c;
    const char *room;
    size_t room_len;
};

static void presence_done(void *arg, int status, const char *const *names, size_t n)
{
    struct presence_ask *a = arg;
    if (status < 0)
        send_error(a->c, PROTO_UNAVAILABLE, "presence is unavailable");
    else
        send_owned(a->c, proto_presence(a->room, a->room_len, names, n));
}

static void handle_chat(struct client *c, const struct proto_request *req)
{
    struct harness *h = c->h;
    if (req->room && !rooms_is_member(&c->rooms, req->room, req->room_len)) {
        send_error(c, PROTO_NOT_IN_ROOM, "join the room before sending to it");
        return;
    }
    size_t len;
    char *rest = proto_chat_rest(req->room, req->room_len, c->name, req->content, req->content_len,
                                 bus_now_ms(), &len);
    if (!rest) {
        send_error(c, PROTO_UNAVAILABLE, "out of memory");
        return;
    }
    h->bus->ops->publish_chat(h->bus, req->room, req->room_len, rest, len, chat_done, c);
    free(rest);
}

static void handle_request(struct client *c, const struct proto_request *req)
{
    struct harness *h = c->h;
    switch (req->type) {
    case PROTO_JOIN_ROOM: {
        if (c->rooms.count >= h->cfg.max_rooms &&
            !rooms_is_member(&c->rooms, req->room, req->room_len)) {
            send_error(c, PROTO_TOO_MANY_ROOMS, "you are in as many rooms as allowed");
            break;
        }
        remember_room(h, req->room, req->room_len);
        c->busy = true;
        enum proto_error e = rooms_join(&h->rooms, &c->rooms, c, c->name, req->room, req->room_len,
                                        req->has_since ? &req->since : NULL);
        if (e != PROTO_OK) {
            c->busy = false;
            send_error(c, e, "the room could not be joined");
        }
        break;
    }
    case PROTO_LEAVE_ROOM:
        if (rooms_leave(&h->rooms, &c->rooms, req->room, req->room_len) == PROTO_OK)
            send_owned(c, proto_left(req->room, req->room_len));
        else
            send_error(c, PROTO_NOT_IN_ROOM, "you are not in that room");
        break;
    case PROTO_CHAT:
        handle_chat(c, req);
        break;
    case PROTO_ECHO:
        send_owned(c, proto_echo(req->content, req->content_len));
        break;
    case PROTO_PING:
        send_owned(c, proto_pong());
        break;
    case PROTO_PRESENCE: {
        struct presence_ask a = {c, req->room, req->room_len};
        h->bus->ops->presence(h->bus, req->room, req->room_len, presence_done, &a);
        break;
    }
    }
}

static void process(struct client *c, const char *data, size_t len)
{
    struct proto_request req;
    const char *why;
    enum proto_error e = proto_decode(data, len, &req, &why);
    if (e != PROTO_OK) {
        send_error(c, e, why);
        return;
    }
    handle_request(c, &req);
    proto_request_free(&req);
}

void client_receive(struct client *c, const char *data, size_t len)
{
    if (c->busy) {
        bool room = c->waiting.bytes + len <= c->h->cfg.send_queue_limit;
        struct frame *f = room ? frame_copy(data, len) : NULL;
        if (!f || sendq_push(&c->waiting, f, false) < 0)
            c->closing = true;
        frame_unref(f);
        return;
    }
    process(c, data, len);
}

static void deliver(void *owner, struct frame *f)
{
    send_frame(owner, f);
}

static void overflow(void *owner)
{
    struct client *c = owner;
    c->closing = true;
}

/* As the session does: the requests that waited for the join go now, until
 * one of them starts another join. */
static void join_answered(void *owner)
{
    struct client *c = owner;
    c->busy = false;
    if (c->draining)
        return;
    c->draining = true;
    const struct sendq_entry *e;
    while (!c->busy && !c->closing && (e = sendq_peek(&c->waiting))) {
        struct frame *f = frame_ref(e->frame);
        sendq_pop(&c->waiting);
        process(c, (const char *)frame_data(f), f->len);
        frame_unref(f);
    }
    sendq_shrink(&c->waiting);
    c->draining = false;
}

const struct rooms_owner_ops client_ops = {deliver, overflow, join_answered};

void client_connect(struct harness *h, int i, const char *name)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->h = h;
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->view.self = c->name;
    sendq_init(&c->waiting);
    h->clients[i] = c;
    h->connected++;
    char conn_id[sizeof(h->cfg.id) + 24];
    snprintf(conn_id, sizeof(conn_id), "%s-%llu", h->cfg.id, ++h->next_id);
    send_owned(c, proto_welcome(c->name, conn_id, h->cfg.id, bus_now_ms()));
    if (h->cfg.announce_connections)
        announce_global(h, c->name, "connected");
    bus_clients_changed(h->bus, h->connected);
}

void client_disconnect(struct harness *h, int i)
{
    struct client *c = h->clients[i];
    if (!c)
        return;
    h->clients[i] = NULL;
    sendq_clear(&c->waiting);
    rooms_leave_all(&h->rooms, &c->rooms, true);
    h->connected--;
    if (h->cfg.announce_connections)
        announce_global(h, c->name, "disconnected");
    bus_clients_changed(h->bus, h->connected);
    free(c);
}
