/* session: one connected WebSocket client. Reassembles its frames within
 * the size limit, rate-limits them and hands chat frames to its requests
 * (requests.h: decoding, dispatch, the order of answers), queues its
 * outgoing frames (closing it as a slow consumer past the limit), keeps it
 * alive with pings, and writes its frames.
 *
 * Writing, as Redis does with its clients: a session that has frames to
 * send goes on one pending-write list, and when the event loop has run the
 * callbacks of this turn, every pending session's queue goes out with one
 * send, all of them in one io_uring submission. So a fan-out is one
 * submission by construction, and frames for one client made in the same
 * turn (a welcome and the count, the announcements and the count of one
 * Redis read) share one send and usually one TCP segment. A session whose
 * socket took less than offered waits for the writable callback instead. */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "keepalive.h"
#include "list.h"
#include "peers.h"
#include "proto.h"
#include "ratelimit.h"
#include "requests.h"
#include "sendq.h"

struct event;
struct event_base;
struct lws;
struct txring;

enum session_kind { SESSION_CHAT, SESSION_ECHO };

struct session {
    struct lws *wsi;
    struct list link;    /* on sessions.all */
    struct list pending; /* on sessions.pending while it has frames for the next flush */
    uint64_t id;
    struct requester req; /* name, rooms, requests in order; closing */
    struct sendq q;
    struct ka_entry ka;
    int64_t last_rx_ms;
    int64_t last_ping_ms;
    struct ratelimit rate;
    const char *peer_addr; /* counted in sessions.peers, or NULL */
    unsigned char *rx;     /* reassembly of a fragmented message */
    uint32_t rx_len, rx_cap;
    uint8_t kind;
    bool rx_binary;
    bool ping_due;
    bool draining; /* its queue is written from the writable callback */
    bool corked;   /* the 101 waits in the socket for the first write */
};

/* What sessions share; set up once by the server. */
struct sessions {
    const struct config *cfg;
    struct bus *bus;
    struct requests requests; /* and the rooms */
    struct keepalive keepalive;
    struct peers peers;
    struct list all;     /* every open session */
    struct list pending; /* sessions with frames for the next flush */
    struct event *flush; /* made active when pending gets its first session */
    struct txring *tx;   /* NULL: frames are written one send() each */
    long all_count;      /* open /ws and /echo sessions */
    uint64_t next_id;
    bool shutting_down;
};

extern struct sessions sessions;

int sessions_init(struct event_base *base, const struct config *cfg, struct bus *bus);
void sessions_free(void);
/* Asks every session to close with 1001. */
void sessions_shutdown(void);

/* Bus handlers for frames meant for every chat client. */
void sessions_broadcast(struct frame *f);

/* Before lws answers an accepted upgrade: holds the 101 in the socket
 * (TCP_CORK) so that it leaves in one segment with the welcome, which the
 * session's first write releases. */
void session_hold_handshake(struct lws *wsi);

/* libwebsockets callbacks, in order of a session's life. */
int session_open(struct session *s, struct lws *wsi, enum session_kind kind, const char *name,
                 const char *peer_addr);
/* Returns -1 to close (the close reason is set). */
int session_receive(struct session *s, const void *in, size_t len);
void session_pong(struct session *s);
int session_writable(struct session *s);
void session_closed(struct session *s);

/* Queues a frame to the client, to be written when this turn of the event
 * loop ends; a client whose queue passes the limit is closed with 1008. */
void session_send(struct session *s, struct frame *f);
/* Advances the keepalive wheel one tick. */
void sessions_keepalive_tick(void);

#endif
