/* clients: fake sessions for fuzz_frame. Each handles its text frames as
 * gateway/session.c does (decode, dispatch to rooms and the bus, one join
 * at a time with later requests waiting their turn) and checks every frame
 * it is sent (frame_check.h). Clients live on the heap and are freed when
 * they disconnect, so rooms or the bus touching one afterwards is a
 * use-after-free that ASan reports. */
#ifndef FUZZ_CLIENTS_H
#define FUZZ_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "frame_check.h"
#include "rooms.h"
#include "sendq.h"

#define CLIENTS 4
/* Distinct rooms remembered for the presence check at the end. */
#define SEEN_ROOMS_MAX 32

struct client {
    struct harness *h;
    char name[PROTO_NAME_MAX + 1];
    struct room_set rooms;
    struct sendq waiting; /* requests sent while a join is answered */
    struct view view;
    bool busy;     /* a join is in flight */
    bool draining; /* working through waiting */
    bool closing;  /* the session would be closing: disconnected next */
};

struct harness {
    struct config cfg;
    struct bus *bus;
    struct rooms rooms;
    struct client *clients[CLIENTS];
    long connected;
    unsigned long long next_id;
    struct {
        char name[PROTO_ROOM_MAX];
        size_t len;
    } seen[SEEN_ROOMS_MAX];
    size_t n_seen;
};

extern const struct rooms_owner_ops client_ops;

/* Connects client i as name (a valid user name), with its welcome. */
void client_connect(struct harness *h, int i, const char *name);
/* One text frame from the client. */
void client_receive(struct client *c, const char *data, size_t len);
/* Closes client i's session and frees it; nothing if it is not connected. */
void client_disconnect(struct harness *h, int i);
/* The bus's broadcast handler. */
void clients_broadcast(struct harness *h, struct frame *f);
/* Checks, once rooms has handled chat id of room, that every client that
 * is in the room with no join in flight got it (or a newer one): a member
 * gets every message published after its `joined`. */
void clients_check_received(struct harness *h, const char *room, size_t room_len,
                            const struct msgid *id);

#endif
