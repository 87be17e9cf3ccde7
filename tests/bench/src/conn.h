#ifndef CHATBENCH_CONN_H
#define CHATBENCH_CONN_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"

/* One client WebSocket on raw non-blocking sockets and libevent. Reads go
 * into a buffer shared by every connection of the process; only the bytes of
 * an incomplete frame are kept per connection, in a buffer allocated once
 * and reused, so an idle connection costs little and a delivery allocates
 * nothing. */

struct conn;

/* When the bytes of a frame came: arrived is the kernel's receive time of
 * the newest segment of the read that completed the frame, read is when
 * this process read it. With many connections in one process a frame can
 * wait in its socket while others are served: arrived excludes that wait,
 * which a real client on its own machine would not have. */
struct rx_time {
    int64_t arrived_us;
    int64_t read_us;
};

struct conn_handlers {
    void (*on_open)(void *ctx, struct conn *c);
    void (*on_text)(void *ctx, struct conn *c, const char *p, size_t n, const struct rx_time *t);
    void (*on_ping)(void *ctx, struct conn *c);
    /* Called once per started connection, after its socket is closed.
     * code: the close code the server sent, 1006 when the connection
     * dropped without one, 0 when it never opened. why: the server's
     * close reason, or what went wrong; valid during the call only. */
    void (*on_closed)(void *ctx, struct conn *c, int code, const char *why);
};

/* What the connections of one process share. */
struct conn_io {
    struct event_base *base;
    const struct conn_handlers *h;
    void *ctx;
    uint8_t *rx; /* read buffer */
    size_t rx_cap;
    uint8_t *tx; /* frame under construction */
    size_t tx_cap;
    uint64_t rng; /* mask keys and nonces: unpredictable enough here */
};

enum conn_state { CS_IDLE, CS_CONNECTING, CS_HANDSHAKE, CS_OPEN, CS_CLOSED };

struct conn {
    struct conn_io *io;
    struct event *ev_read;
    struct event *ev_write;
    int fd;
    uint8_t state;
    uint8_t frag_op; /* opcode of a fragmented message being assembled */
    int status;      /* HTTP status of the upgrade answer, 0 before one */
    int64_t started_us;
    void *user;
    char key[HS_KEY_LEN + 1];
    uint8_t *in; /* bytes of an incomplete frame */
    uint32_t in_len, in_cap;
    uint64_t in_need; /* size of that frame once its header is known */
    uint8_t *out;     /* bytes the socket did not take yet */
    uint32_t out_off, out_len, out_cap;
    uint8_t *frag; /* payload of a fragmented message */
    uint32_t frag_len, frag_cap;
};

/* Sets up io; rx_cap and tx_cap are buffer sizes. Returns 0 or -1. */
int conn_io_init(struct conn_io *io, struct event_base *base, const struct conn_handlers *h,
                 void *ctx, size_t rx_cap, size_t tx_cap, uint64_t seed);
void conn_io_free(struct conn_io *io);

/* Starts connecting c to dst (from source address src if it is not 0,
 * network order) and upgrading with GET target. Returns 0, or -1 with
 * *why set when the attempt failed at once (no callback follows). */
int conn_start(struct conn *c, struct conn_io *io, const struct sockaddr_in *dst, in_addr_t src,
               const char *host, const char *target, void *user, const char **why);

/* Sends one text frame. Returns 0, or -1 when c is not open. */
int conn_send_text(struct conn *c, const char *p, size_t n);

/* Bytes queued in user space because the socket would not take them. */
static inline size_t conn_backlog(const struct conn *c)
{
    return c->out_len - c->out_off;
}

/* Closes c at once without a closing handshake and without a callback. */
void conn_drop(struct conn *c);

#endif
