#include "clients.h"

#include "clock.h"
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct client *of(struct requester *q)
{
    return (struct client *)((char *)q - offsetof(struct client, req));
}

static void send_frame(void *ctx, void *owner, struct frame *f)
{
    (void)ctx;
    view_check(&of(owner)->view, f);
}

/* As a session's: what it sends after this is not handled, and the
 * harness disconnects it after the record. */
static void close_client(void *ctx, struct requester *q, uint16_t code, const char *reason)
{
    (void)ctx, (void)code, (void)reason;
    q->closing = true;
}

static void broadcast(void *ctx, struct frame *f)
{
    struct harness *h = ctx;
    for (int i = 0; i < CLIENTS; i++)
        if (h->clients[i])
            send_frame(h, &h->clients[i]->req, f);
}

/* As a session's: the server API's instructions, on the clients of the
 * name (the fuzzer's clients make none, but the wiring is the gateway's). */
static void control(void *ctx, const struct proto_control *c)
{
    struct harness *h = ctx;
    for (int i = 0; i < CLIENTS; i++) {
        struct client *cl = h->clients[i];
        if (!cl || cl->req.closing || strcmp(cl->req.name, c->user) != 0)
            continue;
        if (c->op == PROTO_CONTROL_DISCONNECT)
            cl->req.closing = true;
        else
            requests_remove_from_room(&h->rq, &cl->req, c->room, c->room_len);
    }
}

const struct requester_ops client_ops = {send_frame, close_client, broadcast, control};

void clients_check_received(struct harness *h, const char *room, size_t room_len,
                            const struct msgid *id)
{
    for (int i = 0; i < CLIENTS; i++) {
        struct client *c = h->clients[i];
        if (!c || c->req.busy || !rooms_is_member(&c->req.rooms, room, room_len))
            continue;
        if (!view_has_seen(&c->view, room, room_len, id)) {
            fprintf(stderr,
                    "fuzz_frame: %s, in room %.*s, missed a chat published after its joined\n",
                    c->req.name, (int)room_len, room);
            abort();
        }
    }
}

/* The rooms joined, for the check at the end that their presence empties. */
static void remember_room(struct harness *h, const char *data, size_t len)
{
    struct proto_request req;
    const char *why;
    if (proto_decode(data, len, &req, &why) != PROTO_OK)
        return;
    bool known = req.type != PROTO_JOIN_ROOM;
    for (size_t i = 0; !known && i < h->n_seen; i++)
        known =
            h->seen[i].len == req.room_len && memcmp(h->seen[i].name, req.room, req.room_len) == 0;
    if (!known && h->n_seen < SEEN_ROOMS_MAX) {
        memcpy(h->seen[h->n_seen].name, req.room, req.room_len);
        h->seen[h->n_seen++].len = req.room_len;
    }
    proto_request_free(&req);
}

void client_receive(struct client *c, const char *data, size_t len)
{
    remember_room(c->h, data, len);
    requests_receive(&c->h->rq, &c->req, (const unsigned char *)data, len);
}

void client_connect(struct harness *h, int i, const char *name)
{
    struct client *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    c->h = h;
    snprintf(c->req.name, sizeof(c->req.name), "%s", name);
    c->view.self = c->req.name;
    h->clients[i] = c;
    h->connected++;
    char conn_id[sizeof(h->cfg.id) + 24];
    snprintf(conn_id, sizeof(conn_id), "%s-%llu", h->cfg.id, ++h->next_id);
    struct frame *welcome = proto_welcome(c->req.name, conn_id, h->cfg.id, clock_wall_ms());
    if (welcome) {
        send_frame(h, &c->req, welcome);
        frame_unref(welcome);
    }
    if (h->cfg.announce_connections)
        h->bus->ops->announce(h->bus, NULL, 0, ANNOUNCE_ARRIVED, c->req.name);
    h->bus->ops->publish_count(h->bus, h->connected);
}

void client_disconnect(struct harness *h, int i)
{
    struct client *c = h->clients[i];
    if (!c)
        return;
    h->clients[i] = NULL;
    requests_close(&h->rq, &c->req, true);
    h->connected--;
    if (h->cfg.announce_connections)
        h->bus->ops->announce(h->bus, NULL, 0, ANNOUNCE_DEPARTED, c->req.name);
    h->bus->ops->publish_count(h->bus, h->connected);
    free(c);
}
