/* conn: the one writer of a client connection's output. Other modules hand
 * it frames; it alone queues them, frames them for WebSocket, writes them
 * (send, or io_uring for many connections at once), waits for writability,
 * sends pings and asks libwebsockets for the close. Policy (when to ping,
 * when a client is too slow, when to close) belongs to its owner.
 *
 * Writing, as Redis does with its clients: a connection that has frames to
 * send goes on one pending-write list, and when the event loop has run the
 * callbacks of this turn, every pending connection's queue goes out with one
 * send, all of them in one io_uring submission. So a fan-out is one
 * submission by construction, and frames for one client made in the same
 * turn (a welcome and the count, the announcements and the count of one
 * Redis read) share one send and usually one TCP segment. A connection
 * whose socket took less than offered leaves the rest to libwebsockets,
 * which writes it before anything later, and is written from the writable
 * callback until its queue is empty.
 *
 * libwebsockets writes the handshake, answers pings and, for a protocol
 * error it finds itself, sends the close frame: conn checks for those
 * before each write (a pong waiting: the data waits; a close sent: the
 * data is dropped; deploy/lws-patches/0004 and 0005). */
#ifndef GATEWAY_CONN_H
#define GATEWAY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"
#include "sendq.h"

struct event;
struct event_base;
struct lws;
struct txring;
struct conn;

/* The connection could not be written to: its owner closes it (with
 * conn_close). Called from within the flush, never from conn_send. */
typedef void (*conn_failed_fn)(struct conn *c, const char *why);

/* A connection with frames for the next flush. Its first frame of the turn
 * waits here, not in its queue: a connection that gets a frame now and then
 * never allocates a queue. */
struct pending_write {
    struct conn *c;
    struct frame *first; /* NULL once more frames came: they are all queued */
    bool binary;
};

/* What every connection of a gateway shares. */
struct conn_out {
    /* An array rather than a list, so that a connection holds a 4-byte
     * index, not two pointers. */
    struct pending_write *pending;
    uint32_t n_pending, cap_pending;
    struct event *flush; /* made active when pending gets its first one */
    struct txring *tx;   /* NULL: each connection's queue goes out with send() */
    conn_failed_fn failed;
};

/* One client connection's output; embedded in its owner. */
struct conn {
    struct lws *wsi;
    struct sendq q;
    uint32_t pending_at; /* 1 + its index in conn_out.pending, 0 when not there */
    bool closing;        /* conn_close was called: nothing more is written */
    bool draining;       /* its queue is written from the writable callback */
    bool ping_due;       /* a ping goes out at the next writable callback */
    bool corked;         /* the 101 waits in the socket for the first write */
};

/* io_uring is used when asked for and the kernel allows it (else a warning
 * is logged once and sends are plain). -1 on OOM. */
int conn_out_init(struct conn_out *o, struct event_base *base, bool io_uring,
                  conn_failed_fn failed);
/* Once every connection is closed. */
void conn_out_free(struct conn_out *o);
/* Whether fan-outs go out through io_uring (for /metrics). */
bool conn_out_batching(const struct conn_out *o);

/* Before lws answers an accepted upgrade: holds the 101 in the socket
 * (TCP_CORK) so that it leaves in one segment with the connection's first
 * frames, which conn_open's connection releases at its first write. */
void conn_hold_handshake(struct lws *wsi);

/* Starts c (zeroed by the caller) on an upgraded wsi whose handshake
 * conn_hold_handshake held. */
void conn_open(struct conn_out *o, struct conn *c, struct lws *wsi);
/* Lets the held handshake go now (a connection that sends nothing first). */
void conn_release_handshake(struct conn *c);
/* Queues f (taking a reference) to go out when this turn of the loop ends.
 * Dropped once closing. */
void conn_send(struct conn_out *o, struct conn *c, struct frame *f, bool binary);
/* Bytes queued and not yet handed to the socket (but a turn's first frame). */
static inline size_t conn_queued(const struct conn *c)
{
    return c->q.bytes;
}
/* A ping with a one-byte payload goes out before further frames. */
void conn_ping(struct conn *c);
/* Drops what is queued and has libwebsockets close with code and reason;
 * the connection is killed if that has not happened within grace_s. */
void conn_close(struct conn *c, uint16_t code, const char *reason, unsigned grace_s);
/* The writable callback: the ping, then the queue. -1 to close. */
int conn_writable(struct conn *c);
/* lws is closing c: it leaves the pending list and the io_uring file table
 * (which would keep the socket open), and its queue is dropped. */
void conn_closed(struct conn_out *o, struct conn *c);

#endif
