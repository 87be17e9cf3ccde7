#include "session.h"

#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

/* Keepalive resolution: deadlines are met within this. */
#define KEEPALIVE_TICK_MS 100
/* A session asked to close that never becomes writable is killed after this. */
#define CLOSE_GRACE_S 2

/* Asks for the session to be closed with code: nothing more it sends is
 * handled, and what waits for it is dropped. */
static void request_close(struct session *s, uint16_t code, const char *reason)
{
    s->req.closing = true;
    conn_close(&s->conn, code, reason, CLOSE_GRACE_S);
}

static void conn_failed(struct conn *c, const char *why)
{
    struct session *s = list_entry(c, struct session, conn);
    request_close(s, LWS_CLOSE_STATUS_ABNORMAL_CLOSE, why);
}

static void queue(struct sessions *ss, struct session *s, struct frame *f, bool binary)
{
    if (s->req.closing)
        return;
    /* Slow once what already waits reaches the limit: one large frame (a
     * joined with a long history) may always go behind a short queue. */
    if (conn_queued(&s->conn) >= ss->cfg->send_queue_limit) {
        metrics.slow_consumer_drops++;
        log_info("session %llu (%s): send queue over %zu bytes, closing as slow consumer",
                 (unsigned long long)s->id, s->req.name, ss->cfg->send_queue_limit);
        request_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "slow consumer");
        return;
    }
    conn_send(&ss->out, &s->conn, f, binary);
}

static void send_owned(struct sessions *ss, struct session *s, struct frame *f)
{
    if (f) {
        queue(ss, s, f, false);
        frame_unref(f);
    }
}

static struct session *of_requester(struct requester *q)
{
    return list_entry(q, struct session, req);
}

static void requester_send(void *ctx, void *owner, struct frame *f)
{
    queue(ctx, of_requester(owner), f, false);
}

static void requester_close(void *ctx, struct requester *q, uint16_t code, const char *reason)
{
    (void)ctx;
    request_close(of_requester(q), code, reason);
}

static void broadcast(void *ctx, struct frame *f)
{
    struct sessions *ss = ctx;
    counts_seen(&ss->counts, f);
    struct list *it;
    list_foreach(it, &ss->all)
    {
        struct session *s = list_entry(it, struct session, link);
        if (s->kind == SESSION_CHAT)
            queue(ss, s, f, false);
    }
}

/* The server API's disconnect and removal, on every session of the name. */
static void control(void *ctx, const struct proto_control *c)
{
    struct sessions *ss = ctx;
    struct list *it;
    list_foreach(it, &ss->all)
    {
        struct session *s = list_entry(it, struct session, link);
        if (s->kind != SESSION_CHAT || s->req.closing || strcmp(s->req.name, c->user) != 0)
            continue;
        if (c->op == PROTO_CONTROL_DISCONNECT) {
            log_info("session %llu (%s): disconnected by the server API (%u %s)",
                     (unsigned long long)s->id, s->req.name, c->code, c->reason);
            request_close(s, c->code, c->reason);
        } else {
            requests_remove_from_room(ss->requests, &s->req, c->room, c->room_len);
        }
    }
}

const struct requester_ops session_requester_ops = {requester_send, requester_close, broadcast,
                                                    control};

static void keepalive_fire(struct ka_entry *e, void *ctx)
{
    struct sessions *ss = ctx;
    struct session *s = list_entry(e, struct session, ka);
    if (s->req.closing)
        return;
    const struct config *cfg = ss->cfg;
    int64_t now = clock_coarse_ms();
    int64_t idle = now - s->last_rx_ms;
    if (idle >= cfg->pong_timeout_ms) {
        metrics.keepalive_timeouts++;
        log_info("session %llu (%s): no pong for %lld ms, closing", (unsigned long long)s->id,
                 s->req.name, (long long)idle);
        request_close(s, LWS_CLOSE_STATUS_POLICY_VIOLATION, "keepalive timeout");
        return;
    }
    if (now - s->last_ping_ms + KEEPALIVE_TICK_MS >= cfg->ping_interval_ms) {
        s->last_ping_ms = now;
        conn_ping(&s->conn);
    }
    int64_t next_ping = s->last_ping_ms + cfg->ping_interval_ms - now;
    int64_t deadline = s->last_rx_ms + cfg->pong_timeout_ms - now;
    int64_t delay = next_ping < deadline ? next_ping : deadline;
    keepalive_schedule(&ss->keepalive, &s->ka, delay > 0 ? (uint32_t)delay : 1);
}

void sessions_keepalive_tick(struct sessions *ss)
{
    keepalive_tick(&ss->keepalive);
}

int sessions_init(struct sessions *ss, struct event_base *base, const struct config *cfg,
                  struct bus *bus, struct requests *requests)
{
    memset(ss, 0, sizeof(*ss));
    ss->cfg = cfg;
    ss->bus = bus;
    ss->requests = requests;
    list_init(&ss->all);
    peers_init(&ss->peers, cfg->max_conns_per_ip);
    uint32_t longest =
        cfg->ping_interval_ms > cfg->pong_timeout_ms ? cfg->ping_interval_ms : cfg->pong_timeout_ms;
    /* With TLS every write goes through the TLS library, not the socket. */
    bool io_uring = cfg->io_uring && !cfg->tls_cert[0];
    if (keepalive_init(&ss->keepalive, KEEPALIVE_TICK_MS, longest, keepalive_fire, ss) < 0 ||
        conn_out_init(&ss->out, base, io_uring, conn_failed) < 0 ||
        counts_init(&ss->counts, base, bus) < 0) {
        sessions_free(ss);
        return -1;
    }
    return 0;
}

void sessions_free(struct sessions *ss)
{
    counts_free(&ss->counts);
    conn_out_free(&ss->out);
    keepalive_free(&ss->keepalive);
    peers_free(&ss->peers);
}

void sessions_shutdown(struct sessions *ss)
{
    ss->shutting_down = true;
    struct list *it;
    list_foreach(it, &ss->all)
    {
        request_close(list_entry(it, struct session, link), LWS_CLOSE_STATUS_GOINGAWAY,
                      "gateway shutting down");
    }
}

int session_open(struct sessions *ss, struct session *s, struct lws *wsi, enum session_kind kind,
                 const char *name, const char *peer_addr)
{
    memset(s, 0, sizeof(*s));
    conn_open(&ss->out, &s->conn, wsi);
    s->kind = (uint8_t)kind;
    s->id = ++ss->next_id;
    s->last_rx_ms = s->last_ping_ms = clock_coarse_ms();
    ratelimit_init(&s->rate, s->last_rx_ms, ss->cfg->rate_burst);
    s->peer_addr = peers_acquire(&ss->peers, peer_addr);
    list_insert_head(&ss->all, &s->link);
    ss->all_count++;

    /* The first ping comes at a random point of the first interval, so that
     * clients that connected together are not all pinged together. */
    uint32_t interval = ss->cfg->ping_interval_ms;
    keepalive_schedule(&ss->keepalive, &s->ka,
                       interval / 2 + (uint32_t)((uint64_t)rand() % (interval / 2 + 1)));
    if (kind == SESSION_ECHO) {
        conn_release_handshake(&s->conn); /* nothing follows the 101 until the client speaks */
        return 0;
    }

    if (name && *name)
        snprintf(s->req.name, sizeof(s->req.name), "%s", name);
    else
        snprintf(s->req.name, sizeof(s->req.name), "User%llu", (unsigned long long)s->id);
    ss->chat_count++;
    metrics.connections_total++;
    char conn_id[sizeof(ss->cfg->id) + 24];
    snprintf(conn_id, sizeof(conn_id), "%s-%llu", ss->cfg->id, (unsigned long long)s->id);
    log_info("session %llu (%s): connected", (unsigned long long)s->id, s->req.name);
    send_owned(ss, s, proto_welcome(s->req.name, conn_id, ss->cfg->id, clock_wall_ms()));
    /* The count as last known: the next one may be a second away. */
    if (counts_last(&ss->counts))
        queue(ss, s, counts_last(&ss->counts), false);
    if (ss->cfg->announce_connections)
        ss->bus->ops->announce(ss->bus, NULL, 0, ANNOUNCE_ARRIVED, s->req.name);
    ss->bus->ops->connection_event(ss->bus, true, s->req.name);
    counts_changed(&ss->counts, ss->chat_count);
    return 0;
}

static void handle_message(struct sessions *ss, struct session *s, const unsigned char *data,
                           size_t len, bool binary)
{
    metrics.frames_in++;
    const struct config *cfg = ss->cfg;
    const struct ratelimit_limits lim = {cfg->rate_limit, cfg->rate_burst, cfg->rate_limit_grace};
    uint32_t retry_after_ms = 0;
    /* The precise clock: the limit tells clients when to send again to the
     * millisecond, and the coarse one, up to a tick behind, would count a
     * client that waited exactly that long as too early. */
    switch (ratelimit_take(&s->rate, clock_mono_ms(), &lim, &retry_after_ms)) {
    case RATELIMIT_OK:
        break;
    case RATELIMIT_REFUSED: {
        /* A refused chat is named by its cid, so that the client knows which
         * message to send again. */
        char cid[PROTO_CID_MAX];
        size_t cid_len = binary ? 0 : proto_peek_cid((const char *)data, len, cid);
        metrics.rate_limited++;
        metrics.errors[PROTO_RATE_LIMITED]++;
        send_owned(ss, s, proto_rate_limited(retry_after_ms, cid_len ? cid : NULL, cid_len));
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
            queue(ss, s, f, binary);
        frame_unref(f);
        return;
    }
    if (binary) {
        requests_error(ss->requests, &s->req, PROTO_BAD_JSON,
                       "binary frames are not accepted: send JSON text frames");
        return;
    }
    requests_receive(ss->requests, &s->req, data, len);
}

int session_receive(struct sessions *ss, struct session *s, const void *in, size_t len)
{
    struct lws *wsi = s->conn.wsi;
    s->last_rx_ms = clock_coarse_ms();
    metrics.bytes_in += len;
    if (s->req.closing)
        return 0;
    if (lws_is_first_fragment(wsi)) {
        s->rx_len = 0;
        s->rx_binary = lws_frame_is_binary(wsi);
    }
    /* Checked before buffering: the declared rest of this frame counts. */
    size_t total = (size_t)s->rx_len + len + lws_remaining_packet_payload(wsi);
    if (total > ss->cfg->max_message_bytes) {
        metrics.oversize_closes++;
        log_info("session %llu (%s): message over %zu bytes, closing", (unsigned long long)s->id,
                 s->req.name, ss->cfg->max_message_bytes);
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
        handle_message(ss, s, in, len, s->rx_binary);
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
        handle_message(ss, s, s->rx, s->rx_len, s->rx_binary);
        /* Large messages are rare: an idle session keeps no buffer. */
        free(s->rx);
        s->rx = NULL;
        s->rx_len = s->rx_cap = 0;
    }
    return 0;
}

void session_pong(struct session *s)
{
    s->last_rx_ms = clock_coarse_ms();
}

int session_writable(struct session *s)
{
    return conn_writable(&s->conn);
}

void session_closed(struct sessions *ss, struct session *s)
{
    if (!s->conn.wsi)
        return; /* the upgrade failed before the session opened */
    list_remove(&s->link);
    ss->all_count--;
    peers_release(&ss->peers, s->peer_addr);
    s->peer_addr = NULL;
    keepalive_cancel(&s->ka);
    conn_closed(&ss->out, &s->conn);
    free(s->rx);
    s->rx = NULL;
    if (s->kind != SESSION_CHAT)
        return;
    bool tell = !ss->shutting_down;
    requests_close(ss->requests, &s->req, tell);
    ss->chat_count--;
    log_info("session %llu (%s): disconnected", (unsigned long long)s->id, s->req.name);
    ss->bus->ops->connection_event(ss->bus, false, s->req.name);
    if (tell) {
        if (ss->cfg->announce_connections)
            ss->bus->ops->announce(ss->bus, NULL, 0, ANNOUNCE_DEPARTED, s->req.name);
        counts_changed(&ss->counts, ss->chat_count);
    }
}
