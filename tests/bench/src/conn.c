#include "conn.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "rng.h"
#include "wsframe.h"

#define MAX_HEAD 8192         /* longest upgrade response accepted */
#define MAX_FRAME (64u << 20) /* longest server frame accepted */
#define CLOSE_PROTOCOL 1002

static uint64_t next_rand(struct conn_io *io)
{
    return rng_next(&io->rng);
}

int conn_io_init(struct conn_io *io, struct event_base *base, const struct conn_handlers *h,
                 void *ctx, size_t rx_cap, size_t tx_cap, uint64_t seed)
{
    memset(io, 0, sizeof(*io));
    io->base = base;
    io->h = h;
    io->ctx = ctx;
    io->rx_cap = rx_cap;
    io->tx_cap = tx_cap + WS_MAX_HEADER;
    io->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
    io->rx = malloc(io->rx_cap);
    io->tx = malloc(io->tx_cap);
    if (!io->rx || !io->tx) {
        conn_io_free(io);
        return -1;
    }
    return 0;
}

void conn_io_free(struct conn_io *io)
{
    free(io->rx);
    free(io->tx);
    io->rx = io->tx = NULL;
}

/* Grows *buf to hold at least need bytes. */
static int reserve(uint8_t **buf, uint32_t *cap, uint64_t need)
{
    uint64_t n = *cap ? *cap : 256;
    uint8_t *p;

    if (need <= *cap)
        return 0;
    if (need > MAX_FRAME + MAX_HEAD)
        return -1;
    while (n < need)
        n *= 2;
    p = realloc(*buf, n);
    if (!p)
        return -1;
    *buf = p;
    *cap = (uint32_t)n;
    return 0;
}

static void release(struct conn *c)
{
    if (c->ev_read)
        event_free(c->ev_read);
    if (c->ev_write)
        event_free(c->ev_write);
    if (c->fd >= 0)
        close(c->fd);
    free(c->in);
    free(c->out);
    free(c->frag);
    c->ev_read = c->ev_write = NULL;
    c->fd = -1;
    c->in = c->out = c->frag = NULL;
    c->in_len = c->in_cap = c->out_off = c->out_len = c->out_cap = 0;
    c->frag_len = c->frag_cap = 0;
    c->in_need = 0;
    c->state = CS_CLOSED;
}

void conn_drop(struct conn *c)
{
    if (c->state != CS_IDLE && c->state != CS_CLOSED)
        release(c);
}

static void finish(struct conn *c, int code, const char *why)
{
    struct conn_io *io = c->io;

    if (c->state < CS_OPEN)
        code = 0;
    release(c);
    io->h->on_closed(io->ctx, c, code, why);
}

/* Writes what it can of the backlog. Returns 0, or -1 on a socket error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);

        if (n > 0) {
            c->out_off += (uint32_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        return 0;
    }
    return event_add(c->ev_write, NULL);
}

/* Keeps p for flush_out. Returns 0, or -1 when out of memory. */
static int append_out(struct conn *c, const uint8_t *p, size_t n)
{
    if (reserve(&c->out, &c->out_cap, (uint64_t)c->out_len + n))
        return -1;
    memcpy(c->out + c->out_len, p, n);
    c->out_len += (uint32_t)n;
    return 0;
}

/* Sends p, keeping what the socket does not take. Returns 0 or -1 (the
 * connection is then finished). */
static int send_raw(struct conn *c, const uint8_t *p, size_t n)
{
    if (c->out_len == c->out_off) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);

        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            finish(c, 1006, "send failed");
            return -1;
        }
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        }
        if (n == 0)
            return 0;
    }
    if (append_out(c, p, n)) {
        finish(c, 1006, "out of memory for the send backlog");
        return -1;
    }
    if (event_add(c->ev_write, NULL)) {
        finish(c, 1006, "event_add failed");
        return -1;
    }
    return 0;
}

static int send_frame(struct conn *c, int opcode, const void *p, size_t n)
{
    struct conn_io *io = c->io;
    size_t len;

    if (n + WS_MAX_HEADER > io->tx_cap)
        return -1;
    len = ws_encode_client(io->tx, opcode, p, n, (uint32_t)next_rand(io));
    return send_raw(c, io->tx, len);
}

int conn_send_text(struct conn *c, const char *p, size_t n)
{
    if (c->state != CS_OPEN)
        return -1;
    return send_frame(c, WS_OP_TEXT, p, n);
}

/* Returns -1 when the connection was finished while handling the frame. */
static int handle_frame(struct conn *c, const struct ws_frame *f, const uint8_t *p,
                        const struct rx_time *t)
{
    struct conn_io *io = c->io;

    switch (f->opcode) {
    case WS_OP_TEXT:
    case WS_OP_BINARY:
        if (c->frag_op) {
            finish(c, CLOSE_PROTOCOL, "new message inside a fragmented one");
            return -1;
        }
        if (!f->fin) {
            c->frag_op = (uint8_t)f->opcode;
            c->frag_len = 0;
            break;
        }
        if (f->opcode == WS_OP_TEXT)
            io->h->on_text(io->ctx, c, (const char *)p, f->len, t);
        return c->state == CS_OPEN ? 0 : -1;
    case WS_OP_CONT:
        if (!c->frag_op) {
            finish(c, CLOSE_PROTOCOL, "continuation without a start");
            return -1;
        }
        break;
    case WS_OP_PING:
        io->h->on_ping(io->ctx, c);
        return send_frame(c, WS_OP_PONG, p, f->len);
    case WS_OP_PONG:
        return 0;
    case WS_OP_CLOSE: {
        static char reason[128]; /* read by on_closed before any reuse */
        int code = f->len >= 2 ? (p[0] << 8 | p[1]) : 1005;
        size_t n =
            ws_encode_client(io->tx, WS_OP_CLOSE, p, f->len >= 2 ? 2 : 0, (uint32_t)next_rand(io));

        snprintf(reason, sizeof(reason), "%.*s", f->len > 2 ? (int)f->len - 2 : 0,
                 (const char *)p + 2);

        /* Echoing the code completes the closing handshake; whether
         * the server reads it does not change what we measured. */
        if (send(c->fd, io->tx, n, MSG_NOSIGNAL) < 0)
            code = code == 1005 ? 1006 : code;
        finish(c, code, reason);
        return -1;
    }
    default:
        finish(c, CLOSE_PROTOCOL, "unknown opcode");
        return -1;
    }
    /* A fragment: append, and deliver when the message is complete. */
    if (reserve(&c->frag, &c->frag_cap, (uint64_t)c->frag_len + f->len)) {
        finish(c, CLOSE_PROTOCOL, "fragmented message too long");
        return -1;
    }
    memcpy(c->frag + c->frag_len, p, f->len);
    c->frag_len += (uint32_t)f->len;
    if (f->fin) {
        int text = c->frag_op == WS_OP_TEXT;

        c->frag_op = 0;
        if (text)
            io->h->on_text(io->ctx, c, (const char *)c->frag, c->frag_len, t);
        return c->state == CS_OPEN ? 0 : -1;
    }
    return 0;
}

static int open_from_head(struct conn *c, const uint8_t *buf, size_t hl)
{
    static char why[64];
    if (hs_check_response((const char *)buf, hl, c->key, &c->status)) {
        if (c->status && c->status != 101)
            snprintf(why, sizeof(why), "upgrade refused: HTTP %d", c->status);
        else
            snprintf(why, sizeof(why), "bad upgrade response");
        finish(c, 0, why);
        return -1;
    }
    c->state = CS_OPEN;
    c->io->h->on_open(c->io->ctx, c);
    return c->state == CS_OPEN ? 0 : -1;
}

/* Consumes what it can of buf; *used gets the bytes consumed. Returns -1
 * when the connection was finished. */
static int process(struct conn *c, const uint8_t *buf, size_t len, const struct rx_time *t,
                   size_t *used)
{
    size_t off = 0;

    *used = 0;
    c->in_need = 0;
    if (c->state == CS_HANDSHAKE) {
        size_t hl = hs_head_len((const char *)buf, len);

        if (!hl) {
            if (len <= MAX_HEAD)
                return 0;
            finish(c, 0, "upgrade response too long");
            return -1;
        }
        if (open_from_head(c, buf, hl))
            return -1;
        off = hl;
    }
    while (off < len) {
        struct ws_frame f;
        int r = ws_parse_header(buf + off, len - off, 0, &f);
        uint64_t total;

        if (r < 0) {
            finish(c, CLOSE_PROTOCOL, "bad frame header");
            return -1;
        }
        if (r == 0)
            break;
        total = f.header_len + f.len;
        if (total > MAX_FRAME) {
            finish(c, CLOSE_PROTOCOL, "frame too long");
            return -1;
        }
        if (total > len - off) {
            c->in_need = total;
            break;
        }
        if (handle_frame(c, &f, buf + off + f.header_len, t))
            return -1;
        off += total;
    }
    *used = off;
    return 0;
}

/* Keeps the unconsumed tail of a read for the next one. */
static int keep_rest(struct conn *c, const uint8_t *p, size_t n)
{
    if (n) {
        if (reserve(&c->in, &c->in_cap, n)) {
            finish(c, 1006, "out of memory for a partial frame");
            return -1;
        }
        memmove(c->in, p, n);
    }
    c->in_len = (uint32_t)n;
    return 0;
}

/* recv() that also says when the bytes arrived: the timestamp the kernel
 * gave the newest segment read (SO_TIMESTAMPNS, CLOCK_REALTIME), moved onto
 * CLOCK_MONOTONIC. Earlier segments of the same read arrived before it, so
 * their latency is overstated, never understated. Without a timestamp the
 * arrival is the read. */
static ssize_t read_stamped(int fd, void *buf, size_t len, struct rx_time *t)
{
    union {
        char b[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    struct msghdr mh = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b)};
    ssize_t n = recvmsg(fd, &mh, 0);

    t->read_us = now_us();
    t->arrived_us = t->read_us;
    if (n <= 0)
        return n;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
            struct timespec ts;
            int64_t waited;

            memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
            waited = now_real_us() - ((int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
            if (waited > 0)
                t->arrived_us = t->read_us - waited;
        }
    }
    return n;
}

/* A frame larger than the shared buffer is read straight into c->in. */
static void read_large(struct conn *c)
{
    struct rx_time t;
    size_t used;
    ssize_t n;

    if (reserve(&c->in, &c->in_cap, c->in_need)) {
        finish(c, 1006, "out of memory for a large frame");
        return;
    }
    n = read_stamped(c->fd, c->in + c->in_len, c->in_need - c->in_len, &t);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        finish(c, 1006, n == 0 ? "closed without a close frame" : "recv failed");
        return;
    }
    c->in_len += (uint32_t)n;
    if (c->in_len < c->in_need)
        return;
    if (process(c, c->in, c->in_len, &t, &used) == 0)
        c->in_len = 0; /* exactly one frame was there */
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    struct conn_io *io = c->io;
    size_t have = c->in_len, used;
    struct rx_time t;
    ssize_t n;

    (void)what;
    if (c->in_need > io->rx_cap) {
        read_large(c);
        return;
    }
    if (have)
        memcpy(io->rx, c->in, have);
    n = read_stamped(fd, io->rx + have, io->rx_cap - have, &t);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        finish(c, 1006, n == 0 ? "closed without a close frame" : "recv failed");
        return;
    }
    if (process(c, io->rx, have + (size_t)n, &t, &used))
        return;
    keep_rest(c, io->rx + used, have + (size_t)n - used);
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)what;
    if (c->state == CS_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) || err) {
            finish(c, 0, strerror(err ? err : errno));
            return;
        }
        c->state = CS_HANDSHAKE;
        if (event_add(c->ev_read, NULL)) {
            finish(c, 0, "event_add failed");
            return;
        }
    }
    if (flush_out(c))
        finish(c, 1006, "send failed");
}

int conn_start(struct conn *c, struct conn_io *io, const struct sockaddr_in *dst, in_addr_t src,
               const char *host, const char *target, void *user, const char **why)
{
    char req[512];
    uint8_t nonce[16];
    uint64_t r[2] = {next_rand(io), next_rand(io)};
    int one = 1, len;

    memset(c, 0, sizeof(*c));
    c->io = io;
    c->user = user;
    c->started_us = now_us();
    memcpy(nonce, r, sizeof(nonce));
    hs_make_key(nonce, c->key);
    len = hs_build_request(req, sizeof(req), host, target, c->key);
    if (len < 0) {
        *why = "request too long";
        return -1;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        *why = strerror(errno);
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    if (src) {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = src};

        /* Lets the kernel pick the port per destination, so one
         * source address serves more than one port range. */
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (struct sockaddr *)&sa, sizeof(sa)))
            goto fail_errno;
    }
    if (connect(c->fd, (const struct sockaddr *)dst, sizeof(*dst)) && errno != EINPROGRESS)
        goto fail_errno;
    c->ev_read = event_new(io->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
    c->ev_write = event_new(io->base, c->fd, EV_WRITE, on_write, c);
    if (!c->ev_read || !c->ev_write || event_add(c->ev_write, NULL)) {
        *why = "libevent failed";
        goto fail;
    }
    if (append_out(c, (const uint8_t *)req, (size_t)len)) {
        *why = "out of memory";
        goto fail;
    }
    c->state = CS_CONNECTING;
    return 0;
fail_errno:
    *why = strerror(errno);
fail:
    release(c);
    return -1;
}
