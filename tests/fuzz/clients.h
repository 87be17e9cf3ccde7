/* clients: fake sessions for fuzz_frame. Each hands its text frames to the
 * gateway's own requests (requests.h: decoding, dispatch to the rooms and
 * the bus, one join at a time with later requests waiting their turn), as
 * a session does, and checks every frame it is sent (frame_check.h).
 * Clients live on the heap and are freed when they disconnect, so rooms or
 * the bus touching one afterwards is a use-after-free that ASan reports. */
#ifndef FUZZ_CLIENTS_H
#define FUZZ_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "frame_check.h"
#include "requests.h"

#define CLIENTS 4
/* Distinct rooms remembered for the presence check at the end. */
#define SEEN_ROOMS_MAX 32

struct client {
    struct requester req; /* req.closing: the session would be closing, disconnected next */
    struct harness *h;
    struct view view;
};

struct harness {
    struct config cfg;
    struct bus *bus;
    struct requests rq;
    struct bus_handlers wired; /* requests_bus_handlers(&rq), which the bus's forward to */
    struct client *clients[CLIENTS];
    long connected;
    unsigned long long next_id;
    struct {
        char name[PROTO_ROOM_MAX];
        size_t len;
    } seen[SEEN_ROOMS_MAX];
    size_t n_seen;
};

/* The clients' side of the requests; their ctx is the harness. */
extern const struct requester_ops client_ops;

/* Connects client i as name (a valid user name), with its welcome. */
void client_connect(struct harness *h, int i, const char *name);
/* One text frame from the client. */
void client_receive(struct client *c, const char *data, size_t len);
/* Closes client i's session and frees it; nothing if it is not connected. */
void client_disconnect(struct harness *h, int i);
/* Checks, once rooms has handled chat id of room, that every client that
 * is in the room with no join in flight got it (or a newer one): a member
 * gets every message published after its `joined`. */
void clients_check_received(struct harness *h, const char *room, size_t room_len,
                            const struct msgid *id);

#endif
