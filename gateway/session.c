#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "log.h"
#include "metrics.h"
#include "txring.h"

_Static_assert(FRAME_HEADROOM == LWS_PRE, "frame headroom must match LWS_PRE");

/* Keepalive resolution: deadlines are met within this. */
#define KEEPALIVE_TICK_MS 100
/* Most bytes of queued frames written with one system call. */
#define BATCH_BYTES (64 * 1024)
/* A session asked to close that never becomes writable is killed after this. */
#define CLOSE_GRACE_S 2
/* Most sends in one io_uring submission: a room of more local members
 * takes one submission per this many. */
#define TXRING_DEPTH 1024

struct sessions sessions;

static int64_t clock_ms(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC_COARSE);
}

/* Asks for the session to be closed with code; the close frame goes out at
 * the next writable callback. Pending output is dropped. */
static void request_close(struct session *s, uint16_t code, const char *reason)
{
    if (s->req.closing)
        return;
    s->req.closing = true;
    sendq_clear(&s->q);
    lws_close_reason(s->wsi, (enum lws_close_status)code, (unsigned char *)reason, strlen(reason));
    lws_callback_on_writable(s->wsi);
    lws_set_timeout(s->wsi, PENDING_TIMEOUT_USER_OK, CLOSE_GRACE_S);
}

/* Scratch for take_batch: one thread, and whoever writes from it (lws, or
 * a frame copied for the txring) copies what it keeps. */
static unsigned char batch_buf[LWS_PRE + BATCH_BYTES];

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

void session_hold_handshake(struct lws *wsi)
{
    int on = 1;
    /* Not held, the 101 goes alone: slower, nothing worse. */
    (void)setsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_CORK, &on, sizeof(on));
}

/* After the session's first write: the 101 and what followed leave. */
static void release_handshake(struct session *s)
{
    if (!s->corked)
        return;
    s->corked = false;
    int off = 0;
    if (setsockopt(lws_get_socket_fd(s->wsi), IPPROTO_TCP, TCP_CORK, &off, sizeof(off)) < 0)
        log_warn("session %llu: cannot release the handshake (%s): it leaves within 200 ms",
                 (unsigned long long)s->id, strerror(errno));
}

static void count_out(unsigned frames, size_t bytes)
{
    metrics.frames_out += frames;
    metrics.bytes_out += bytes;
}

/* Moves as many queued frames as fit, framed, into batch_buf (at
 * batch_buf + LWS_PRE, where lws_write wants them); returns their length. */
static size_t take_batch(struct session *s)
{
    unsigned char *start = batch_buf + LWS_PRE, *p = start;
    const struct sendq_entry *e;
    unsigned frames = 0;
    size_t payload = 0;
    while ((e = sendq_peek(&s->q))) {
        size_t len = e->frame->len;
        if ((size_t)(p - start) + len + 10 > BATCH_BYTES && frames)
            break;
        if (len + 10 > BATCH_BYTES) /* alone and too big for the buffer */
            break;
        p += ws_header(p, len, e->binary);
        memcpy(p, frame_data(e->frame), len);
        p += len;
        payload += len;
        frames++;
        sendq_pop(&s->q);
    }
    count_out(frames, payload);
    return (size_t)(p - start);
}

/* Writes the queue through lws, which keeps what the socket does not take
 * and writes it before anything later: several frames from batch_buf with
 * one system call, else the oldest frame alone (one too big for the
 * buffer goes out from its own memory). */
static int write_queued(struct session *s)
{
    size_t n = s->q.count > 1 ? take_batch(s) : 0;
    if (n)
        return lws_write(s->wsi, batch_buf + LWS_PRE, n, LWS_WRITE_RAW) < 0 ? -1 : 0;
    const struct sendq_entry *e = sendq_peek(&s->q);
    if (!e)
        return 0;
    struct frame *f = frame_ref(e->frame);
    bool binary = e->binary;
    sendq_pop(&s->q);
    count_out(1, f->len);
    int rc = lws_write(s->wsi, frame_data(f), f->len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT);
    frame_unref(f);
    return rc < 0 ? -1 : 0;
}

/* What the socket did not take of a staged send goes to lws, which keeps
 * what the socket still refuses and writes it before any later frame. From
 * a copy: lws_write needs LWS_PRE bytes of its own before the data. */
static int write_rest(struct session *s, const unsigned char *p, size_t n)
{
    struct frame *rest = frame_copy(p, n);
    int rc = rest ? lws_write(s->wsi, frame_data(rest), n, LWS_WRITE_RAW) : -1;
    frame_unref(rest);
    return rc < 0 ? -1 : 0;
}

static void tx_done(void *owner, struct frame *f, const unsigned char *p, size_t len, ssize_t res)
{
    (void)f;
    struct session *s = owner;
    size_t sent = res > 0 ? (size_t)res : 0;
    release_handshake(s);
    if (res < 0 && res != -EAGAIN) {
        request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
        return;
    }
    /* Closing with nothing of it written: the send is dropped like the
     * queue. Partly written, the rest goes, so the close frame is whole. */
    if (s->req.closing && !sent)
        return;
    if (sent < len && write_rest(s, p + sent, len - sent) < 0)
        request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
}

/* Stages the session's queue as one send in the txring: a lone frame from
 * its own (shared) memory, several from a copy of their framed bytes. */
static void stage_queued(struct session *s)
{
    int fd = lws_get_socket_fd(s->wsi);
    if (s->q.count == 1) {
        const struct sendq_entry *e = sendq_peek(&s->q);
        size_t n;
        unsigned char *p = with_header(e->frame, e->binary, &n);
        count_out(1, e->frame->len);
        txring_send(sessions.tx, fd, e->frame, p, n, s);
        sendq_pop(&s->q);
        return;
    }
    size_t n = take_batch(s);
    struct frame *batch = n ? frame_copy(batch_buf + LWS_PRE, n) : NULL;
    if (!batch) {
        if (n) {
            log_error("session %llu: out of memory writing a batch", (unsigned long long)s->id);
            request_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        }
        return;
    }
    txring_send(sessions.tx, fd, batch, frame_data(batch), n, s);
    frame_unref(batch);
}

/* Writes one pending session's queue, or leaves it to the writable
 * callback where lws holds bytes back or a ping must go first. */
static void flush_session(struct session *s)
{
    if (s->req.closing || !s->q.count) {
        release_handshake(s);
        return;
    }
    /* lws sent a close frame (a protocol error it found itself): no data
     * may follow, and lws_write would drop it too. */
    if (lws_ws_close_started(s->wsi)) {
        sendq_clear(&s->q);
        release_handshake(s);
        return;
    }
    if (!s->ping_due && !lws_partial_buffered(s->wsi)) {
        if (sessions.tx) {
            stage_queued(s); /* tx_done releases the handshake */
        } else {
            if (write_queued(s) < 0)
                request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
            release_handshake(s);
        }
        if (!s->q.count || s->req.closing)
            return;
    }
    release_handshake(s);
    s->draining = true;
    lws_callback_on_writable(s->wsi);
}

/* The end of a turn of the event loop: every session that got frames in it
 * writes them, with one io_uring submission for all. */
static void flush_pending(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    while (!list_empty(&sessions.pending)) {
        struct list *n = sessions.pending.next;
        list_remove(n);
        flush_session(list_entry(n, struct session, pending));
    }
    if (sessions.tx) {
        txring_flush(sessions.tx);
        metrics.io_uring = txring_batching(sessions.tx);
    }
}

static void queue(struct session *s, struct frame *f, bool binary)
{
    if (s->req.closing)
        return;
    /* Slow once what already waits reaches the limit: one large frame (a
     * joined with a long history) may always go behind a short queue. */
    if (s->q.bytes >= sessions.cfg->send_queue_limit) {
        metrics.slow_consumer_drops++;
        log_info("session %llu (%s): send queue over %zu bytes, closing as slow consumer",
                 (unsigned long long)s->id, s->req.name, sessions.cfg->send_queue_limit);
        request_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer");
        return;
    }
    if (sendq_push(&s->q, f, binary) < 0) {
        log_error("session %llu: out of memory queuing a frame", (unsigned long long)s->id);
        request_close(s, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    /* A draining session's writable callback takes it with the rest. */
    if (s->draining || list_linked(&s->pending))
        return;
    if (list_empty(&sessions.pending))
        event_active(sessions.flush, EV_TIMEOUT, 0);
    list_insert_tail(&sessions.pending, &s->pending);
}

void session_send(struct session *s, struct frame *f)
{
    queue(s, f, false);
}

static void send_owned(struct session *s, struct frame *f)
{
    if (f) {
        session_send(s, f);
        frame_unref(f);
    }
}

void sessions_broadcast(struct frame *f)
{
    struct list *it;
    list_foreach(it, &sessions.all)
    {
        struct session *s = list_entry(it, struct session, link);
        if (s->kind == SESSION_CHAT)
            session_send(s, f);
    }
}

static struct session *of_requester(struct requester *q)
{
    return (struct session *)((char *)q - offsetof(struct session, req));
}

static void requester_send(struct requester *q, struct frame *f)
{
    session_send(of_requester(q), f);
}

static void requester_close(struct requester *q, uint16_t code, const char *reason)
{
    request_close(of_requester(q), code, reason);
}

static const struct requester_ops requester_ops = {requester_send, requester_close};

static void keepalive_fire(struct ka_entry *e, void *ctx)
{
    (void)ctx;
    struct session *s = (struct session *)((char *)e - offsetof(struct session, ka));
    if (s->req.closing)
        return;
    const struct config *cfg = sessions.cfg;
    int64_t now = now_ms();
    int64_t idle = now - s->last_rx_ms;
    if (idle >= cfg->pong_timeout_ms) {
        metrics.keepalive_timeouts++;
        log_info("session %llu (%s): no pong for %lld ms, closing", (unsigned long long)s->id,
                 s->req.name, (long long)idle);
        request_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "keepalive timeout");
        return;
    }
    if (now - s->last_ping_ms + KEEPALIVE_TICK_MS >= cfg->ping_interval_ms) {
        s->ping_due = true;
        s->last_ping_ms = now;
        lws_callback_on_writable(s->wsi);
    }
    sendq_shrink(&s->q);
    int64_t next_ping = s->last_ping_ms + cfg->ping_interval_ms - now;
    int64_t deadline = s->last_rx_ms + cfg->pong_timeout_ms - now;
    int64_t delay = next_ping < deadline ? next_ping : deadline;
    keepalive_schedule(&sessions.keepalive, &s->ka, delay > 0 ? (uint32_t)delay : 1);
}

void sessions_keepalive_tick(void)
{
    keepalive_tick(&sessions.keepalive);
}

int sessions_init(struct event_base *base, const struct config *cfg, struct bus *bus)
{
    memset(&sessions, 0, sizeof(sessions));
    sessions.cfg = cfg;
    sessions.bus = bus;
    list_init(&sessions.all);
    list_init(&sessions.pending);
    /* Made active, it runs after the callbacks already due in this turn of
     * the loop (one priority): the end of the turn. */
    sessions.flush = event_new(base, -1, 0, flush_pending, NULL);
    if (!sessions.flush)
        return -1;
    uint32_t longest =
        cfg->ping_interval_ms > cfg->pong_timeout_ms ? cfg->ping_interval_ms : cfg->pong_timeout_ms;
    if (keepalive_init(&sessions.keepalive, KEEPALIVE_TICK_MS, longest, keepalive_fire, NULL) < 0)
        return -1;
    requests_init(&sessions.requests, cfg, bus, &requester_ops);
    peers_init(&sessions.peers, cfg->max_conns_per_ip);
    /* With TLS every write goes through the TLS library, not the socket. */
    if (cfg->io_uring && !cfg->tls_cert[0]) {
        char why[128];
        struct rlimit rl;
        unsigned nfiles = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20
                              ? (unsigned)rl.rlim_cur
                              : 1u << 20;
        sessions.tx = txring_new(TXRING_DEPTH, nfiles, tx_done, why, sizeof(why));
        if (!sessions.tx)
            log_warn("io_uring unavailable (%s): fan-out writes one send() each", why);
    }
    metrics.io_uring = sessions.tx != NULL;
    return 0;
}

void sessions_free(void)
{
    if (sessions.flush)
        event_free(sessions.flush);
    sessions.flush = NULL;
    txring_free(sessions.tx);
    sessions.tx = NULL;
    requests_free(&sessions.requests);
    keepalive_free(&sessions.keepalive);
    peers_free(&sessions.peers);
}

void sessions_shutdown(void)
{
    sessions.shutting_down = true;
    struct list *it;
    list_foreach(it, &sessions.all)
    {
        request_close(list_entry(it, struct session, link), LWS_CLOSE_STATUS_GOINGAWAY,
                      "gateway shutting down");
    }
}

int session_open(struct session *s, struct lws *wsi, enum session_kind kind, const char *name,
                 const char *peer_addr)
{
    memset(s, 0, sizeof(*s));
    s->wsi = wsi;
    s->kind = (uint8_t)kind;
    s->id = ++sessions.next_id;
    s->corked = true; /* session_hold_handshake ran for every upgrade */
    sendq_init(&s->q);
    s->last_rx_ms = s->last_ping_ms = now_ms();
    ratelimit_init(&s->rate, s->last_rx_ms, sessions.cfg->rate_burst);
    s->peer_addr = peers_acquire(&sessions.peers, peer_addr);
    list_init(&s->pending);
    list_insert_head(&sessions.all, &s->link);
    sessions.all_count++;

    /* The first ping comes at a random point of the first interval, so that
     * clients that connected together are not all pinged together. */
    uint32_t interval = sessions.cfg->ping_interval_ms;
    keepalive_schedule(&sessions.keepalive, &s->ka,
                       interval / 2 + (uint32_t)((uint64_t)rand() % (interval / 2 + 1)));
    if (kind == SESSION_ECHO) {
        release_handshake(s); /* nothing follows the 101 until the client speaks */
        return 0;
    }

    if (name && *name)
        snprintf(s->req.name, sizeof(s->req.name), "%s", name);
    else
        snprintf(s->req.name, sizeof(s->req.name), "User%llu", (unsigned long long)s->id);
    metrics.connections++;
    metrics.connections_total++;
    if (sessions.tx)
        txring_attach(sessions.tx, lws_get_socket_fd(wsi));
    char conn_id[sizeof(sessions.cfg->id) + 24];
    snprintf(conn_id, sizeof(conn_id), "%s-%llu", sessions.cfg->id, (unsigned long long)s->id);
    log_info("session %llu (%s): connected", (unsigned long long)s->id, s->req.name);
    send_owned(s, proto_welcome(s->req.name, conn_id, sessions.cfg->id, bus_now_ms()));
    /* The count as last known: the next one may be a second away. */
    if (bus_last_count(sessions.bus))
        session_send(s, bus_last_count(sessions.bus));
    if (sessions.cfg->announce_connections)
        sessions.bus->ops->announce(sessions.bus, NULL, 0, ANNOUNCE_ARRIVED, s->req.name);
    bus_clients_changed(sessions.bus, (long)metrics.connections);
    return 0;
}

static void handle_message(struct session *s, const unsigned char *data, size_t len, bool binary)
{
    metrics.frames_in++;
    const struct config *cfg = sessions.cfg;
    const struct ratelimit_limits lim = {cfg->rate_limit, cfg->rate_burst, cfg->rate_limit_grace};
    uint32_t retry_after_ms = 0;
    /* The precise clock: the limit tells clients when to send again to the
     * millisecond, and the coarse one, up to a tick behind, would count a
     * client that waited exactly that long as too early. */
    switch (ratelimit_take(&s->rate, clock_ms(CLOCK_MONOTONIC), &lim, &retry_after_ms)) {
    case RATELIMIT_OK:
        break;
    case RATELIMIT_REFUSED: {
        /* A refused chat is named by its cid, so that the client knows which
         * message to send again. */
        char cid[PROTO_CID_MAX];
        size_t cid_len = binary ? 0 : proto_peek_cid((const char *)data, len, cid);
        metrics.rate_limited++;
        metrics.errors[PROTO_RATE_LIMITED]++;
        send_owned(s, proto_rate_limited(retry_after_ms, cid_len ? cid : NULL, cid_len));
        return;
    }
    case RATELIMIT_FLOODING:
        metrics.rate_limited++;
        metrics.rate_limit_closes++;
        log_info("session %llu (%s): more than %u frames before the retry time told, closing",
                 (unsigned long long)s->id, s->req.name, cfg->rate_limit_grace);
        request_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "flooding");
        return;
    }
    if (s->kind == SESSION_ECHO) {
        struct frame *f = frame_copy(data, len);
        if (f)
            queue(s, f, binary);
        frame_unref(f);
        return;
    }
    if (binary) {
        requests_error(&sessions.requests, &s->req, PROTO_BAD_JSON,
                       "binary frames are not accepted: send JSON text frames");
        return;
    }
    requests_receive(&sessions.requests, &s->req, data, len);
}

int session_receive(struct session *s, const void *in, size_t len)
{
    struct lws *wsi = s->wsi;
    s->last_rx_ms = now_ms();
    metrics.bytes_in += len;
    if (s->req.closing)
        return 0;
    if (lws_is_first_fragment(wsi)) {
        s->rx_len = 0;
        s->rx_binary = lws_frame_is_binary(wsi);
    }
    /* Checked before buffering: the declared rest of this frame counts. */
    size_t total = (size_t)s->rx_len + len + lws_remaining_packet_payload(wsi);
    if (total > sessions.cfg->max_message_bytes) {
        metrics.oversize_closes++;
        log_info("session %llu (%s): message over %zu bytes, closing", (unsigned long long)s->id,
                 s->req.name, sessions.cfg->max_message_bytes);
        free(s->rx);
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
        static const char reason[] = "message too big";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)reason,
                         sizeof(reason) - 1);
        return -1;
    }
    bool final = lws_is_final_fragment(wsi);
    if (final && s->rx_len == 0) { /* the common case: one piece, no copy */
        handle_message(s, in, len, s->rx_binary);
        return 0;
    }
    if (total > s->rx_cap) {
        unsigned char *n = realloc(s->rx, total);
        if (!n) {
            log_error("session %llu: out of memory reassembling", (unsigned long long)s->id);
            return -1;
        }
        s->rx = n;
        s->rx_cap = (uint32_t)total;
    }
    memcpy(s->rx + s->rx_len, in, len);
    s->rx_len += (uint32_t)len;
    if (final) {
        handle_message(s, s->rx, s->rx_len, s->rx_binary);
        /* Large messages are rare: an idle session keeps no buffer. */
        free(s->rx);
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
    }
    return 0;
}

void session_pong(struct session *s)
{
    s->last_rx_ms = now_ms();
}

int session_writable(struct session *s)
{
    if (s->req.closing)
        return -1;
    if (s->ping_due) {
        /* A payload, because lws reports no pong that comes back empty. */
        unsigned char ping[LWS_PRE + 1];
        ping[LWS_PRE] = 'k';
        s->ping_due = false;
        if (lws_write(s->wsi, ping + LWS_PRE, 1, LWS_WRITE_PING) < 0)
            return -1;
        if (s->q.count)
            lws_callback_on_writable(s->wsi);
        return 0;
    }
    if (write_queued(s) < 0)
        return -1;
    if (s->q.count)
        lws_callback_on_writable(s->wsi);
    else
        s->draining = false;
    return 0;
}

void session_closed(struct session *s)
{
    if (!s->wsi)
        return; /* the upgrade failed before the session opened */
    list_remove(&s->link);
    list_remove(&s->pending);
    sessions.all_count--;
    peers_release(&sessions.peers, s->peer_addr);
    s->peer_addr = NULL;
    keepalive_cancel(&s->ka);
    sendq_clear(&s->q);
    free(s->rx);
    s->rx = NULL;
    if (s->kind != SESSION_CHAT)
        return;
    /* Before lws closes the socket, which the file table would keep open. */
    if (sessions.tx)
        txring_detach(sessions.tx, lws_get_socket_fd(s->wsi));
    bool tell = !sessions.shutting_down;
    requests_close(&sessions.requests, &s->req, tell);
    metrics.connections--;
    log_info("session %llu (%s): disconnected", (unsigned long long)s->id, s->req.name);
    if (tell) {
        if (sessions.cfg->announce_connections)
            sessions.bus->ops->announce(sessions.bus, NULL, 0, ANNOUNCE_DEPARTED, s->req.name);
        bus_clients_changed(sessions.bus, (long)metrics.connections);
    }
}
