/* requests: what a chat client asks, answered in the order it asked. Each
 * text frame is decoded (proto) and dispatched to the rooms and the bus, and
 * the answers and errors go back to the client. While one of its joins is
 * in flight, what the client sends next waits (bounded by the send-queue
 * limit) and is handled once `joined` or the error has gone out. An answer
 * of the bus may come after the client left: closing detaches it.
 *
 * Nothing here knows libwebsockets, so the fuzzer drives this very code:
 * the owner of a requester (a session) says how a frame reaches its client
 * and how the client is closed. */
#ifndef GATEWAY_REQUESTS_H
#define GATEWAY_REQUESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "frame.h"
#include "list.h"
#include "proto.h"
#include "rooms.h"
#include "sendq.h"

struct requester;
struct request_wait;

struct requester_ops {
    /* Queues f to the client whose struct requester is owner (taking a
     * reference if it keeps it). The rooms call it directly too. */
    rooms_deliver_fn send;
    /* Closes the client with a WebSocket close code; sets q->closing. */
    void (*close)(void *ctx, struct requester *q, uint16_t code, const char *reason);
    /* Queues f to every client (a global chat, a count, an announcement). */
    void (*broadcast)(void *ctx, struct frame *f);
    /* Carries out a control frame's instruction on the clients it names. */
    void (*control)(void *ctx, const struct proto_control *c);
};

/* What the requests of every client share; the rooms are theirs. */
struct requests {
    const struct config *cfg;
    struct bus *bus;
    const struct requester_ops *ops;
    void *ctx; /* the ops' */
    struct rooms rooms;
};

/* One client's side: embedded in its owner, zeroed before use. The name
 * comes after the flags, which it packs with (an idle session's size
 * decides its malloc size class). */
struct requester {
    struct room_set rooms;
    /* Requests that came while a join was answered: allocated then (rare),
     * so an idle client stays small. */
    struct sendq *waiting;
    /* Outstanding bus requests: a ring without a head (any member, NULL
     * when none), so that an idle client holds one pointer, not two. */
    struct list *waits;
    bool busy;     /* a join is in flight: later requests wait their turn */
    bool draining; /* working through waiting */
    bool closing;  /* the owner is closing the client: nothing more is handled */
    char name[PROTO_NAME_MAX + 1];
};

/* The bus's handlers for the requests' clients: room frames to the rooms'
 * members, global frames to every client, subscription answers to the
 * rooms. The one wiring of bus to clients, for the gateway and the fuzzer;
 * the bus they make with it goes to requests_init. */
struct bus_handlers requests_bus_handlers(struct requests *rq);
void requests_init(struct requests *rq, const struct config *cfg, struct bus *bus,
                   const struct requester_ops *ops, void *ctx);
/* Once every requester is closed. */
void requests_free(struct requests *rq);

/* One text frame from the client. */
void requests_receive(struct requests *rq, struct requester *q, const unsigned char *data,
                      size_t len);
/* Sends the client an error frame (counted in the metrics). */
void requests_error(struct requests *rq, struct requester *q, enum proto_error e, const char *why);
/* Takes the client out of a room (the server API's removal): as its own
 * leave_room would, after a join still in flight (of that room too);
 * nothing when it is neither in the room nor joining it. */
void requests_remove_from_room(struct requests *rq, struct requester *q, const char *room,
                               size_t room_len);
/* The client is gone: it leaves its rooms (telling them and presence unless
 * tell is false), answers still to come are dropped, waiting requests
 * freed. */
void requests_close(struct requests *rq, struct requester *q, bool tell);

#endif
