/* session: one connected WebSocket client. Reassembles its frames within
 * the size limit, rate-limits them and hands chat frames to its requests
 * (requests.h: decoding, dispatch, the order of answers), queues its
 * outgoing frames (closing it as a slow consumer past the limit), keeps it
 * alive with pings, and writes its frames: at once when nothing waits (a
 * fan-out's writes batched into one io_uring submission), else from the
 * writable callback, several per system call. */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "keepalive.h"
#include "peers.h"
#include "proto.h"
#include "ratelimit.h"
#include "requests.h"
#include "sendq.h"

struct lws;
struct txring;

enum session_kind { SESSION_CHAT, SESSION_ECHO };

struct session {
    struct lws *wsi;
    struct session *prev, *next; /* every open session */
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
    bool tx_staged; /* a frame is staged in the txring: later ones queue behind */
};

/* What sessions share; set up once by the server. */
struct sessions {
    const struct config *cfg;
    struct bus *bus;
    struct requests requests; /* and the rooms */
    struct keepalive keepalive;
    struct peers peers;
    struct session *head;
    struct txring *tx; /* NULL: frames are written one send() each */
    unsigned batch;    /* open sessions_batch_begin calls */
    long all_count;    /* open /ws and /echo sessions */
    uint64_t next_id;
    bool shutting_down;
};

extern struct sessions sessions;

int sessions_init(const struct config *cfg, struct bus *bus);
void sessions_free(void);
/* Asks every session to close with 1001. */
void sessions_shutdown(void);

/* Bus handlers for frames meant for every chat client. */
void sessions_broadcast(struct frame *f);
/* Frames sent between these go out together when the end comes: one
 * io_uring submission for a whole fan-out. They nest; the outermost end
 * writes. Nothing may close a session in between. */
void sessions_batch_begin(void);
void sessions_batch_end(void);

/* libwebsockets callbacks, in order of a session's life. */
int session_open(struct session *s, struct lws *wsi, enum session_kind kind, const char *name,
                 const char *peer_addr);
/* Returns -1 to close (the close reason is set). */
int session_receive(struct session *s, const void *in, size_t len);
void session_pong(struct session *s);
int session_writable(struct session *s);
void session_closed(struct session *s);

/* Queues a frame to the client; a client whose queue passes the limit is
 * closed with 1008. */
void session_send(struct session *s, struct frame *f);
/* Advances the keepalive wheel one tick. */
void sessions_keepalive_tick(void);

#endif
