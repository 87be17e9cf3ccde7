#include "session.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

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

static int write_frame(struct session *s, struct frame *f, bool binary)
{
    if (lws_write(s->wsi, frame_data(f), f->len, binary ? LWS_WRITE_BINARY : LWS_WRITE_TEXT) < 0)
        return -1;
    metrics.frames_out++;
    metrics.bytes_out += f->len;
    return 0;
}

/* Scratch for write_batch: one thread, and lws copies what the socket does
 * not take. */
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

/* What the socket did not take of a staged frame goes to lws, which keeps
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
    struct session *s = owner;
    s->tx_staged = false;
    size_t sent = res > 0 ? (size_t)res : 0;
    if (res < 0 && res != -EAGAIN) {
        request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
        return;
    }
    /* Closing with nothing of it written: the frame is dropped like the
     * queue. Partly written, the rest goes, so the close frame is whole. */
    if (s->req.closing && !sent)
        return;
    if (sent < len && write_rest(s, p + sent, len - sent) < 0) {
        request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
        return;
    }
    metrics.frames_out++;
    metrics.bytes_out += f->len;
}

/* Writes as many queued frames as fit in one buffer with one system call:
 * a queue only builds up under load, when system calls are what costs. */
static int write_batch(struct session *s)
{
    unsigned char *start = batch_buf + LWS_PRE, *p = start;
    const struct sendq_entry *e;
    unsigned frames = 0;
    while ((e = sendq_peek(&s->q))) {
        size_t len = e->frame->len;
        if ((size_t)(p - start) + len + 10 > BATCH_BYTES)
            break;
        p += ws_header(p, len, e->binary);
        memcpy(p, frame_data(e->frame), len);
        p += len;
        metrics.bytes_out += len;
        frames++;
        sendq_pop(&s->q);
    }
    metrics.frames_out += frames;
    if (frames && lws_write(s->wsi, start, (size_t)(p - start), LWS_WRITE_RAW) < 0)
        return -1;
    return 0;
}

static void queue(struct session *s, struct frame *f, bool binary)
{
    if (s->req.closing)
        return;
    /* Nothing waits and lws holds nothing back: write now, which spares
     * the two epoll changes and the wake-up of a writable callback (most
     * of a delivery's cost); in a batch, with the batch's one system call.
     * Otherwise queue behind what waits. */
    if (!s->q.count && !s->tx_staged && !s->ping_due && !lws_partial_buffered(s->wsi)) {
        if (sessions.batch && sessions.tx) {
            /* lws sent a close frame (a protocol error it found itself):
             * no data may follow, and lws_write would drop it too. */
            if (lws_ws_close_started(s->wsi))
                return;
            size_t n;
            unsigned char *p = with_header(f, binary, &n);
            s->tx_staged = true;
            txring_send(sessions.tx, lws_get_socket_fd(s->wsi), f, p, n, s);
            return;
        }
        if (write_frame(s, f, binary) < 0)
            request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, "write failed");
        return;
    }
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
    if (s->q.count == 1)
        lws_callback_on_writable(s->wsi);
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
    for (struct session *s = sessions.head; s; s = s->next)
        if (s->kind == SESSION_CHAT)
            session_send(s, f);
}

void sessions_batch_begin(void)
{
    sessions.batch++;
}

void sessions_batch_end(void)
{
    if (--sessions.batch == 0 && sessions.tx) {
        txring_flush(sessions.tx);
        metrics.io_uring = txring_batching(sessions.tx);
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

int sessions_init(const struct config *cfg, struct bus *bus)
{
    memset(&sessions, 0, sizeof(sessions));
    sessions.cfg = cfg;
    sessions.bus = bus;
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
    txring_free(sessions.tx);
    sessions.tx = NULL;
    requests_free(&sessions.requests);
    keepalive_free(&sessions.keepalive);
    peers_free(&sessions.peers);
}

void sessions_shutdown(void)
{
    sessions.shutting_down = true;
    for (struct session *s = sessions.head; s; s = s->next)
        request_close(s, LWS_CLOSE_STATUS_GOINGAWAY, "gateway shutting down");
}

int session_open(struct session *s, struct lws *wsi, enum session_kind kind, const char *name,
                 const char *peer_addr)
{
    memset(s, 0, sizeof(*s));
    s->wsi = wsi;
    s->kind = (uint8_t)kind;
    s->id = ++sessions.next_id;
    sendq_init(&s->q);
    s->last_rx_ms = s->last_ping_ms = now_ms();
    ratelimit_init(&s->rate, s->last_rx_ms, sessions.cfg->rate_burst);
    s->peer_addr = peers_acquire(&sessions.peers, peer_addr);
    s->next = sessions.head;
    if (sessions.head)
        sessions.head->prev = s;
    sessions.head = s;
    sessions.all_count++;

    /* The first ping comes at a random point of the first interval, so that
     * clients that connected together are not all pinged together. */
    uint32_t interval = sessions.cfg->ping_interval_ms;
    keepalive_schedule(&sessions.keepalive, &s->ka,
                       interval / 2 + (uint32_t)((uint64_t)rand() % (interval / 2 + 1)));
    if (kind == SESSION_ECHO)
        return 0;

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
    int rc = s->q.count > 1 ? write_batch(s) : 0;
    if (rc == 0 && s->q.count == 1) {
        const struct sendq_entry *e = sendq_peek(&s->q);
        rc = write_frame(s, e->frame, e->binary);
        sendq_pop(&s->q);
    }
    if (rc < 0)
        return -1;
    if (s->q.count)
        lws_callback_on_writable(s->wsi);
    return 0;
}

void session_closed(struct session *s)
{
    if (!s->wsi)
        return; /* the upgrade failed before the session opened */
    if (s->prev)
        s->prev->next = s->next;
    else if (sessions.head == s)
        sessions.head = s->next;
    if (s->next)
        s->next->prev = s->prev;
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
