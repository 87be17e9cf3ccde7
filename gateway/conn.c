#include "conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "log.h"
#include "metrics.h"
#include "txring.h"

/* Most bytes of queued frames written with one system call. */
#define BATCH_BYTES (64 * 1024)
/* Most sends in one io_uring submission: a room of more local members
 * takes one submission per this many. */
#define TXRING_DEPTH 1024
/* Pending-write entries kept allocated between flushes. */
#define PENDING_KEPT 1024

/* Scratch for take_batch: one thread, and whoever writes from it (lws, or
 * a frame copied for the txring) copies what it keeps. Every write to lws
 * is LWS_WRITE_RAW of bytes framed here, which needs no room before them. */
static unsigned char batch_buf[BATCH_BYTES];

/* Writes the WebSocket header of a server frame (never masked). */
static size_t ws_header(unsigned char *p, size_t len, bool binary)
{
    p[0] = binary ? 0x82 : 0x81; /* FIN and the opcode */
    if (len < 126) {
        p[1] = (unsigned char)len;
        return 2;
    }
    if (len <= 0xffff) {
        p[1] = 126;
        p[2] = (unsigned char)(len >> 8);
        p[3] = (unsigned char)len;
        return 4;
    }
    p[1] = 127;
    for (int i = 0; i < 8; i++)
        p[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

/* Writes the WebSocket header into the frame's headroom, right before the
 * payload (the same bytes for every recipient), and returns where the
 * frame starts; *n gets its length with the header. */
static unsigned char *with_header(struct frame *f, bool binary, size_t *n)
{
    unsigned char h[10];
    size_t hl = ws_header(h, f->len, binary);
    unsigned char *start = memcpy(frame_data(f) - hl, h, hl);
    *n = hl + f->len;
    return start;
}

static void count_out(unsigned frames, size_t bytes)
{
    metrics.frames_out += frames;
    metrics.bytes_out += bytes;
}

void conn_hold_handshake(struct lws *wsi)
{
    int on = 1;
    /* Not held, the 101 goes alone: slower, nothing worse. */
    (void)setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

void conn_release_handshake(struct conn *c)
{
    if (!c->corked)
        return;
    c->corked = false;
    int off = 0;
    if (setsockopt(lws_get_socket_fd(c->wsi), IPPROTO_TCP, TCP_CORK, &off, sizeof(off)) < 0)
        log_warn("connection fd %d: cannot release the handshake (%s): it leaves within 200 ms",
                 lws_get_socket_fd(c->wsi), strerror(errno));
}

/* Moves as many queued frames as fit, framed, into batch_buf; returns
 * their length. */
static size_t take_batch(struct conn *c)
{
    unsigned char *start = batch_buf, *p = start;
    const struct sendq_entry *e;
    unsigned frames = 0;
    size_t payload = 0;
    while ((e = sendq_peek(&c->q))) {
        size_t len = e->frame->len;
        if (len + 10 > BATCH_BYTES - (size_t)(p - start))
            break; /* the next send takes it (alone, if it is too big for any batch) */
        p += ws_header(p, len, e->binary);
        memcpy(p, frame_data(e->frame), len);
        p += len;
        payload += len;
        frames++;
        sendq_pop(&c->q);
    }
    count_out(frames, payload);
    return (size_t)(p - start);
}

/* Writes f, framed here, through lws, which keeps what the socket does not
 * take and writes it before anything later. */
static int write_framed(struct conn *c, struct frame *f, bool binary)
{
    size_t len;
    unsigned char *p = with_header(f, binary, &len);
    count_out(1, f->len);
    return lws_write(c->wsi, p, len, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

/* Writes the queue through lws: several frames from batch_buf with one
 * system call, else the oldest frame alone (one too big for the buffer goes
 * out from its own memory). */
static int write_queued(struct conn *c)
{
    size_t n = c->q.count > 1 ? take_batch(c) : 0;
    if (n)
        return lws_write(c->wsi, batch_buf, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
    const struct sendq_entry *e = sendq_peek(&c->q);
    if (!e)
        return 0;
    struct frame *f = frame_ref(e->frame);
    bool binary = e->binary;
    sendq_pop(&c->q);
    int rc = write_framed(c, f, binary);
    frame_unref(f);
    return rc;
}

/* What the socket did not take of a staged send goes to lws, which keeps
 * what the socket still refuses and writes it before any later frame. */
static int write_rest(struct conn *c, const unsigned char *p, size_t n)
{
    return lws_write(c->wsi, (unsigned char *)p, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
}

static void tx_done(void *ctx, void *owner, struct frame *f, const unsigned char *p, size_t len,
                    ssize_t res)
{
    (void)f;
    struct conn_out *o = ctx;
    struct conn *c = owner;
    size_t sent = res > 0 ? (size_t)res : 0;
    conn_release_handshake(c);
    if (res < 0 && res != -EAGAIN) {
        o->failed(c, "write failed");
        return;
    }
    /* Closing with nothing of it written: the send is dropped like the
     * queue. Partly written, the rest goes, so the close frame is whole. */
    if (c->closing && !sent)
        return;
    if (sent < len && write_rest(c, p + sent, len - sent) < 0)
        o->failed(c, "write failed");
}

/* Writes one frame now: staged in the txring from its own (shared) memory,
 * or through lws. */
static void write_one(struct conn_out *o, struct conn *c, struct frame *f, bool binary)
{
    if (o->tx) {
        size_t n;
        unsigned char *p = with_header(f, binary, &n);
        count_out(1, f->len);
        txring_send(o->tx, lws_get_socket_fd(c->wsi), f, p, n, c); /* tx_done releases the 101 */
        return;
    }
    if (write_framed(c, f, binary) < 0)
        o->failed(c, "write failed");
    conn_release_handshake(c);
}

/* Stages the queue as one send in the txring: a lone frame from its own
 * memory, several from a copy of their framed bytes. */
static void stage_queued(struct conn_out *o, struct conn *c)
{
    if (c->q.count == 1) {
        const struct sendq_entry *e = sendq_peek(&c->q);
        write_one(o, c, e->frame, e->binary);
        sendq_pop(&c->q);
        return;
    }
    size_t n = take_batch(c);
    if (!n)
        return; /* the oldest frame is too big for a batch: the writable callback sends it */
    struct frame *batch = frame_copy(batch_buf, n);
    if (!batch) {
        log_error("connection fd %d: out of memory writing a batch", lws_get_socket_fd(c->wsi));
        o->failed(c, "out of memory");
        return;
    }
    txring_send(o->tx, lws_get_socket_fd(c->wsi), batch, frame_data(batch), n, c);
    frame_unref(batch);
}

/* Queues f behind what waits; out of memory, the connection fails. */
static int queue_frame(struct conn_out *o, struct conn *c, struct frame *f, bool binary)
{
    if (sendq_push(&c->q, f, binary) == 0)
        return 0;
    log_error("connection fd %d: out of memory queuing a frame", lws_get_socket_fd(c->wsi));
    o->failed(c, "out of memory");
    return -1;
}

/* Writes a pending connection's frames (w->first alone, or its queue), or
 * leaves them to the writable callback where lws holds bytes back or a
 * ping or pong must go first. */
static void flush_conn(struct conn_out *o, const struct pending_write *w)
{
    struct conn *c = w->c;
    /* Closing, the frames are dropped; and once lws sent a close frame (a
     * protocol error it found itself) no data may follow. */
    if (c->closing || lws_ws_close_started(c->wsi)) {
        sendq_clear(&c->q);
        conn_release_handshake(c);
        return;
    }
    /* lws writes a pending pong, then bytes it kept, before the writable
     * callback: data waits for that. */
    if (!c->ping_due && !lws_partial_buffered(c->wsi) && !lws_ws_pong_pending(c->wsi)) {
        if (w->first) {
            write_one(o, c, w->first, w->binary); /* the queue is empty */
            return;
        }
        if (o->tx) {
            stage_queued(o, c); /* tx_done releases the handshake */
        } else {
            if (write_queued(c) < 0)
                o->failed(c, "write failed");
            conn_release_handshake(c);
        }
        if (!c->q.count || c->closing) {
            sendq_shrink(&c->q);
            return;
        }
    } else if (w->first && queue_frame(o, c, w->first, w->binary) < 0) {
        return;
    }
    conn_release_handshake(c);
    c->draining = true;
    lws_callback_on_writable(c->wsi);
}

/* The end of a turn of the event loop: every connection that got frames in
 * it writes them, with one io_uring submission for all. */
static void flush_pending(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn_out *o = arg;
    while (o->n_pending) {
        struct pending_write w = o->pending[--o->n_pending];
        w.c->pending_at = 0;
        flush_conn(o, &w);
        frame_unref(w.first);
    }
    if (o->tx)
        txring_flush(o->tx);
    /* A fan-out to many made the array large: it is not kept, so that idle
     * connections cost nothing here. */
    if (o->cap_pending > PENDING_KEPT) {
        free(o->pending);
        o->pending = NULL;
        o->cap_pending = 0;
    }
}

int conn_out_init(struct conn_out *o, struct event_base *base, bool io_uring, conn_failed_fn failed)
{
    memset(o, 0, sizeof(*o));
    o->failed = failed;
    /* Made active, it runs after the callbacks already due in this turn of
     * the loop (one priority): the end of the turn. */
    o->flush = event_new(base, -1, 0, flush_pending, o);
    if (!o->flush)
        return -1;
    if (io_uring) {
        char why[128];
        struct rlimit rl;
        unsigned nfiles = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20
                              ? (unsigned)rl.rlim_cur
                              : 1u << 20;
        o->tx = txring_new(TXRING_DEPTH, nfiles, tx_done, o, why, sizeof(why));
        if (!o->tx)
            log_warn("io_uring unavailable (%s): fan-out writes one send() each", why);
    }
    return 0;
}

void conn_out_free(struct conn_out *o)
{
    free(o->pending);
    o->pending = NULL;
    o->n_pending = o->cap_pending = 0;
    if (o->flush)
        event_free(o->flush);
    o->flush = NULL;
    txring_free(o->tx);
    o->tx = NULL;
}

bool conn_out_batching(const struct conn_out *o)
{
    return o->tx && txring_batching(o->tx);
}

void conn_open(struct conn_out *o, struct conn *c, struct lws *wsi)
{
    c->wsi = wsi;
    sendq_init(&c->q);
    c->corked = true;
    if (o->tx)
        txring_attach(o->tx, lws_get_socket_fd(wsi));
}

void conn_send(struct conn_out *o, struct conn *c, struct frame *f, bool binary)
{
    if (c->closing)
        return;
    /* A draining connection's writable callback takes it with the rest. */
    if (c->draining) {
        queue_frame(o, c, f, binary);
        return;
    }
    if (c->pending_at) { /* a later frame of this turn: all of them queue */
        struct pending_write *w = &o->pending[c->pending_at - 1];
        if (w->first) {
            int rc = queue_frame(o, c, w->first, w->binary);
            frame_unref(w->first);
            w->first = NULL;
            if (rc < 0)
                return;
        }
        queue_frame(o, c, f, binary);
        return;
    }
    if (o->n_pending == o->cap_pending) {
        uint32_t cap = o->cap_pending ? 2 * o->cap_pending : 64;
        struct pending_write *n = realloc(o->pending, cap * sizeof(*n));
        if (!n) {
            /* The frame waits in the queue for the writable callback. */
            log_error("connection fd %d: out of memory for the pending list",
                      lws_get_socket_fd(c->wsi));
            if (queue_frame(o, c, f, binary) == 0) {
                c->draining = true;
                lws_callback_on_writable(c->wsi);
            }
            return;
        }
        o->pending = n;
        o->cap_pending = cap;
    }
    if (!o->n_pending)
        event_active(o->flush, EV_TIMEOUT, 0);
    o->pending[o->n_pending++] = (struct pending_write){c, frame_ref(f), binary};
    c->pending_at = o->n_pending;
}

/* Takes c off the pending list, dropping its first frame: the last entry
 * takes its place. */
static void unpend(struct conn_out *o, struct conn *c)
{
    if (!c->pending_at)
        return;
    struct pending_write *w = &o->pending[c->pending_at - 1];
    frame_unref(w->first);
    *w = o->pending[--o->n_pending];
    w->c->pending_at = c->pending_at;
    c->pending_at = 0;
}

void conn_ping(struct conn *c)
{
    c->ping_due = true;
    lws_callback_on_writable(c->wsi);
}

void conn_close(struct conn *c, uint16_t code, const char *reason, unsigned grace_s)
{
    if (c->closing)
        return;
    c->closing = true;
    sendq_clear(&c->q);
    lws_close_reason(c->wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    lws_callback_on_writable(c->wsi);
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_USER_OK, (int)grace_s);
}

int conn_writable(struct conn *c)
{
    if (c->closing)
        return -1;
    if (c->ping_due) {
        /* A payload, because lws reports no pong that comes back empty. */
        unsigned char ping[LWS_PRE + 1];
        ping[LWS_PRE] = 'k';
        c->ping_due = false;
        if (lws_write(c->wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0)
            return -1;
        if (c->q.count)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (write_queued(c) < 0)
        return -1;
    if (c->q.count) {
        lws_callback_on_writable(c->wsi);
    } else {
        c->draining = false;
        sendq_shrink(&c->q);
    }
    return 0;
}

void conn_closed(struct conn_out *o, struct conn *c)
{
    unpend(o, c);
    sendq_clear(&c->q);
    /* Before lws closes the socket, which the file table would keep open. */
    if (o->tx)
        txring_detach(o->tx, lws_get_socket_fd(c->wsi));
}
