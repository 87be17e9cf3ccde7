#include "worker.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "jscan.h"
#include "layout.h"
#include "reconnect.h"
#include "seqtrack.h"
#include "worker_impl.h"

#define RX_BUFFER (256u << 10)
#define TICK_US 1000
#define PROGRESS_US 100000
#define MAX_BACKLOG (4u << 20) /* a publisher stops queueing beyond this */

void worker_note_error(struct worker *w, const char *fmt, ...)
{
    va_list ap;

    if (w->st.first_error[0])
        return;
    va_start(ap, fmt);
    vsnprintf(w->st.first_error, sizeof(w->st.first_error), fmt, ap);
    va_end(ap);
}

int worker_connect(struct worker *w, struct member *mb, const struct sockaddr_in *dst,
                   const char *host)
{
    char target[sizeof(w->o->path) + 32];
    in_addr_t src = 0;
    const char *why;

    if (w->l.source_ips > 1)
        src = htonl(0x7F000000u | layout_source_octet(&w->l, mb->id));
    snprintf(target, sizeof(target), "%s?username=b%" PRIu32, w->o->path, mb->id);
    if (!w->st.connect_first_us)
        w->st.connect_first_us = now_us();
    if (conn_start(&mb->c, &w->io, dst, src, host, target, mb, &why)) {
        w->st.connect_failures++;
        worker_note_error(w, "connect: %s", why);
        return -1;
    }
    w->inflight++;
    return 0;
}

static void start_more(struct worker *w)
{
    while (w->inflight < w->o->connect_concurrency && w->next_connect < w->n) {
        struct member *mb = &w->m[w->next_connect++];

        if (w->o->mode == MODE_RECONNECT) {
            recon_connect(w, mb);
        } else {
            uint32_t g = layout_gateway(&w->l, mb->id);

            if (worker_connect(w, mb, &w->dst[g], w->host[g]))
                w->settled++;
        }
    }
}

static void send_join(struct member *mb)
{
    char join[96];
    int n = snprintf(join, sizeof(join), "{\"type\":\"join_room\",\"room\":\"bench-%" PRIu32 "\"}",
                     mb->room);

    conn_send_text(&mb->c, join, (size_t)n);
}

static void on_open(void *ctx, struct conn *c)
{
    struct worker *w = ctx;
    struct member *mb = c->user;
    int64_t now = now_us();

    w->inflight--;
    w->open++;
    /* Reconnect's connections after the kill are counted as reconnects,
     * not as the setup's. */
    if (!atomic_load(&w->sh->t_kill)) {
        w->st.connected++;
        w->st.connect_last_us = now;
    }
    hist_add(&w->st.handshake, (uint64_t)(now - c->started_us));
    /* Storm and reconnect join once the welcome is there, as the browser
     * client does. */
    if (w->o->mode == MODE_FANOUT)
        send_join(mb);
    else if (w->o->mode == MODE_IDLE)
        w->settled++;
    else if (w->o->mode == MODE_RECONNECT)
        recon_on_open(w, mb, now);
    start_more(w);
}

static enum close_kind close_kind_of(int code)
{
    switch (code) {
    case 1000:
        return CLOSE_NORMAL;
    case 1001:
        return CLOSE_AWAY;
    case 1008:
        return CLOSE_POLICY;
    case 1009:
        return CLOSE_TOO_BIG;
    case 1006:
        return CLOSE_ABRUPT;
    default:
        return CLOSE_OTHER;
    }
}

static void on_closed(void *ctx, struct conn *c, int code, const char *why)
{
    struct worker *w = ctx;
    struct member *mb = c->user;
    int64_t now = now_us();

    if (code == 0) {
        w->inflight--;
        if (w->o->mode == MODE_RECONNECT) {
            recon_on_refused(w, mb, c->status, why);
        } else {
            w->st.connect_failures++;
            w->settled++;
            worker_note_error(w, "connect: %s", why);
        }
        start_more(w);
        return;
    }
    w->open--;
    w->st.closes[close_kind_of(code)]++;
    if (!w->st.first_close_us)
        w->st.first_close_us = now;
    w->st.last_close_us = now;
    /* Reconnect expects closes and counts them itself. */
    if (atomic_load(&w->slot->state) == WK_READY && atomic_load(&w->sh->phase) != PH_SHUTDOWN &&
        w->o->mode != MODE_RECONNECT) {
        w->st.closes_in_run++;
        worker_note_error(w, "closed by the gateway with %d (%s)", code, why);
    }
    if (w->o->mode == MODE_RECONNECT) {
        recon_on_closed(w, mb, code, why);
    } else if (w->o->mode != MODE_IDLE && !mb->joined) {
        w->settled++;
        worker_note_error(w, "closed before joining: %s (%d)", why, code);
    }
}

static void on_ping(void *ctx, struct conn *c)
{
    struct worker *w = ctx;

    (void)c;
    w->st.pings++;
}

/* Parses the next decimal number at *p (then skips one space). */
static int take_num(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;

    if (s >= end || *s < '0' || *s > '9')
        return -1;
    while (s < end && *s >= '0' && *s <= '9')
        v = v * 10 + (uint64_t)(*s++ - '0');
    if (s < end && *s == ' ')
        s++;
    *p = s;
    *out = v;
    return 0;
}

static uint64_t since(int64_t t, int64_t sent_us)
{
    return t > sent_us ? (uint64_t)(t - sent_us) : 0;
}

static void on_chat(struct worker *w, struct member *mb, struct jspan content,
                    const struct rx_time *t)
{
    const char *p = content.p, *end = content.p + content.n;
    uint64_t pub, seq, sent_us;
    enum seq_verdict v;

    w->st.delivered++;
    if (!p || take_num(&p, end, &pub) || take_num(&p, end, &seq) || take_num(&p, end, &sent_us) ||
        pub >= w->l.publishers || layout_room(&w->l, (uint32_t)pub) != mb->room || !mb->track) {
        w->st.foreign++;
        return;
    }
    v = seq_note(&mb->track[layout_pub_slot(&w->l, (uint32_t)pub)], (uint32_t)seq);
    if ((int64_t)sent_us < w->m_start || (int64_t)sent_us >= w->m_end)
        return;
    if (v == SEQ_DUP) {
        w->st.duplicates++;
        return;
    }
    if (v == SEQ_LATE)
        w->st.out_of_order++;
    w->st.measured++;
    hist_add(&w->st.latency, since(t->arrived_us, (int64_t)sent_us));
    hist_add(&w->st.read_latency, since(t->read_us, (int64_t)sent_us));
    w->last_news_us = t->read_us;
}

/* The index of s in names, or n when it is none of them. */
static int kind_of(struct jspan s, const char *const *names, int n)
{
    int k = 0;

    while (k < n && !jspan_is(s, names[k]))
        k++;
    return k;
}

enum err_kind err_kind_of(struct jspan code)
{
    static const char *const names[ERR_OTHER] = {"rate_limited", "unavailable", "not_in_room"};

    return (enum err_kind)kind_of(code, names, ERR_OTHER);
}

static enum frame_kind frame_kind_of(struct jspan type)
{
    static const char *const names[FT_OTHER] = {"system", "client_count", "joined"};

    return (enum frame_kind)kind_of(type, names, FT_OTHER);
}

static void on_joined(struct worker *w, struct member *mb)
{
    if (mb->joined)
        return;
    mb->joined = JOIN_OK;
    w->st.joined++;
    w->st.join_last_us = now_us();
    w->settled++;
}

static void on_text(void *ctx, struct conn *c, const char *p, size_t n, const struct rx_time *t)
{
    struct worker *w = ctx;
    struct member *mb = c->user;
    struct jmsg m;

    w->st.frames_in++;
    if (jscan_message(p, n, &m)) {
        worker_note_error(w, "unreadable frame from the gateway");
        return;
    }
    if (w->o->mode == MODE_RECONNECT) {
        recon_on_text(w, mb, &m);
        return;
    }
    if (w->o->mode == MODE_STORM && atomic_load(&w->sh->phase) < PH_DONE)
        mb->frames[frame_kind_of(m.type)]++;
    if (jspan_is(m.type, "chat")) {
        on_chat(w, mb, m.content, t);
    } else if (jspan_is(m.type, "joined")) {
        on_joined(w, mb);
    } else if (jspan_is(m.type, "welcome")) {
        if (w->o->mode == MODE_STORM)
            send_join(mb);
    } else if (jspan_is(m.type, "error")) {
        /* A storm client sends nothing but its join: an error refused it,
         * and no joined will come. */
        if (w->o->mode == MODE_STORM && mb->joined == JOIN_NONE) {
            mb->joined = JOIN_REFUSED;
            w->settled++;
        }
        w->st.errors[err_kind_of(m.code)]++;
        worker_note_error(w, "error frame from the gateway: %.*s", m.code.p ? (int)m.code.n : 0,
                          m.code.p ? m.code.p : "");
    }
}

static const struct conn_handlers handlers = {
    .on_open = on_open,
    .on_text = on_text,
    .on_ping = on_ping,
    .on_closed = on_closed,
};

/* Sends publisher mb's next message, stamped now. The content is
 * "<publisher> <seq> <send time µs>", padded with 'x' to --size bytes. */
static void publish(struct worker *w, struct member *mb, int64_t now)
{
    char *b = w->msg;
    int pre =
        snprintf(b, w->msg_cap, "{\"type\":\"chat\",\"room\":\"bench-%" PRIu32 "\",\"content\":\"",
                 mb->room);
    int head = snprintf(b + pre, w->msg_cap - (size_t)pre, "%" PRIu32 " %" PRIu32 " %" PRId64,
                        mb->id, mb->seq, now);
    size_t content = (size_t)head;

    if (w->o->size > content + 1) {
        b[pre + head] = ' ';
        memset(b + pre + head + 1, 'x', w->o->size - content - 1);
        content = w->o->size;
    }
    memcpy(b + (size_t)pre + content, "\"}", 2);
    if (conn_send_text(&mb->c, b, (size_t)pre + content + 2))
        return;
    mb->seq++;
    w->st.sent++;
    if (now >= w->m_start && now < w->m_end) {
        w->st.sent_window++;
        w->st.expected += layout_room_members(&w->l, mb->room);
    }
}

/* Sends what each publisher owes by now: publisher p's k-th message is due
 * at t_go + (k + offset_p) / rate, offsets spreading them over a period. */
static void publish_due(struct worker *w, int64_t now)
{
    double elapsed = (double)(now - w->t_go) / 1e6;

    if (now < w->t_go || now >= w->m_end)
        return;
    for (uint32_t i = 0; i < w->npubs; i++) {
        struct member *mb = &w->m[w->pubs[i]];
        double due = floor(elapsed * w->pub_rate - mb->offset) + 1;

        if (mb->c.state != CS_OPEN)
            continue;
        while ((double)mb->sched < due) {
            int64_t at = w->t_go + (int64_t)(((double)mb->sched + mb->offset) / w->pub_rate * 1e6);

            if (now > at && (uint64_t)(now - at) > w->st.max_tick_lag_us)
                w->st.max_tick_lag_us = (uint64_t)(now - at);
            mb->sched++;
            if (conn_backlog(&mb->c) > MAX_BACKLOG) {
                if (now >= w->m_start)
                    w->st.send_skipped++;
                continue;
            }
            publish(w, mb, now);
            if (mb->c.state != CS_OPEN)
                break;
        }
    }
}

static void report_progress(struct worker *w)
{
    struct progress *p = &w->slot->prog;

    atomic_store_explicit(&p->connected, w->st.connected, memory_order_relaxed);
    atomic_store_explicit(&p->joined, w->st.joined, memory_order_relaxed);
    atomic_store_explicit(&p->sent, w->st.sent, memory_order_relaxed);
    atomic_store_explicit(&p->delivered, w->st.delivered, memory_order_relaxed);
    atomic_store_explicit(&p->frames_in, w->st.frames_in, memory_order_relaxed);
    atomic_store_explicit(&p->pings, w->st.pings, memory_order_relaxed);
    atomic_store_explicit(&p->open, w->open, memory_order_relaxed);
    atomic_store_explicit(&p->in_room, w->in_room, memory_order_relaxed);
    atomic_store_explicit(&p->unacked, w->unacked, memory_order_relaxed);
    atomic_store_explicit(&p->victims, w->st.r.on_victim, memory_order_relaxed);
    atomic_store_explicit(&p->victim_closes, w->st.r.victim_closes, memory_order_relaxed);
}

/* 1 when this worker's part is over. */
static int finished(struct worker *w, int phase, int64_t now)
{
    if (w->o->mode == MODE_IDLE)
        return phase == PH_SHUTDOWN && (w->open == 0 || now >= w->sh->shutdown_deadline);
    if (w->o->mode == MODE_STORM)
        return phase == PH_DONE;
    if (w->o->mode == MODE_RECONNECT)
        return recon_finished(w, phase, now);
    if (!w->running || now < w->m_end)
        return 0;
    return now >= w->m_end + (int64_t)(w->o->drain_s * 1e6) ||
           now - (w->last_news_us > w->m_end ? w->last_news_us : w->m_end) >= DRAIN_QUIET_US;
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    int64_t now = now_us();
    int phase = atomic_load_explicit(&w->sh->phase, memory_order_acquire);

    (void)fd;
    (void)what;
    if (w->o->mode == MODE_RECONNECT) {
        if (w->in_room == w->n && atomic_load(&w->slot->state) == WK_STARTING)
            atomic_store(&w->slot->state, WK_READY);
        recon_tick(w, phase, now);
    } else if (w->settled == w->n && atomic_load(&w->slot->state) == WK_STARTING) {
        if (w->o->mode == MODE_FANOUT && w->st.joined < w->n) {
            atomic_store(&w->slot->state, WK_FAILED);
            event_base_loopbreak(w->base);
            return;
        }
        atomic_store(&w->slot->state, WK_READY);
    }
    if (phase == PH_RUN && !w->running) {
        w->t_go = w->sh->t_go;
        w->m_start = w->sh->m_start;
        w->m_end = w->sh->m_end;
        w->running = 1;
    }
    if (w->running && w->o->mode == MODE_FANOUT)
        publish_due(w, now);
    if (now - w->last_progress_us >= PROGRESS_US) {
        report_progress(w);
        w->last_progress_us = now;
    }
    if (finished(w, phase, now))
        event_base_loopbreak(w->base);
}

static int setup_targets(struct worker *w)
{
    w->dst = calloc(w->o->gateways, sizeof(*w->dst));
    w->host = calloc(w->o->gateways, sizeof(*w->host));
    if (!w->dst || !w->host)
        return -1;
    for (unsigned g = 0; g < w->o->gateways; g++) {
        const struct gateway_addr *a = &w->o->gw[g];

        w->dst[g].sin_family = AF_INET;
        w->dst[g].sin_port = htons(a->port);
        if (inet_pton(AF_INET, a->host, &w->dst[g].sin_addr) != 1) {
            worker_note_error(w, "not a numeric IPv4 address: %s", a->host);
            return -1;
        }
        snprintf(w->host[g], sizeof(w->host[g]), "%s:%u", a->host, (unsigned)a->port);
    }
    return 0;
}

static int setup_members(struct worker *w, unsigned index)
{
    uint32_t k = 0, p = 0;

    uint32_t total = options_total_conns(w->o);

    w->n = total / w->l.workers + (index < total % w->l.workers);
    w->m = calloc(w->n, sizeof(*w->m));
    w->pubs = calloc(w->n, sizeof(*w->pubs));
    if (!w->m || !w->pubs)
        return -1;
    for (uint32_t id = index; id < total; id += w->l.workers, k++) {
        struct member *mb = &w->m[k];

        mb->id = id;
        mb->room = layout_room(&w->l, id);
        mb->c.state = CS_IDLE;
        if (w->o->mode != MODE_FANOUT)
            continue;
        mb->track = calloc(layout_room_publishers(&w->l, mb->room) + 1, sizeof(*mb->track));
        if (!mb->track)
            return -1;
        if (layout_is_publisher(&w->l, id)) {
            mb->offset = (double)id / w->l.publishers;
            w->pubs[p++] = k;
        }
    }
    w->npubs = p;
    return 0;
}

static void teardown(struct worker *w)
{
    for (uint32_t i = 0; w->m && i < w->n; i++) {
        conn_drop(&w->m[i].c);
        free(w->m[i].track);
    }
    recon_teardown(w);
    if (w->tick)
        event_free(w->tick);
    conn_io_free(&w->io);
    if (w->base)
        event_base_free(w->base);
    free(w->m);
    free(w->pubs);
    free(w->dst);
    free(w->host);
    free(w->msg);
}

static int setup(struct worker *w, unsigned index)
{
    const struct options *o = w->o;
    struct timeval tv = {0, TICK_US};

    w->l =
        (struct layout){o->conns, o->rooms, o->publishers, o->gateways, o->workers, o->source_ips};
    w->pub_rate = o->rate / o->publishers;
    w->msg_cap = o->size + 256;
    w->msg = malloc(w->msg_cap);
    w->base = event_base_new();
    if (!w->msg || !w->base || setup_targets(w) || setup_members(w, index) ||
        conn_io_init(&w->io, w->base, &handlers, w, RX_BUFFER, w->msg_cap,
                     (uint64_t)now_us() * 2654435761u + index))
        return -1;
    if (o->mode == MODE_RECONNECT && recon_setup(w))
        return -1;
    w->tick = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    if (!w->tick || event_add(w->tick, &tv))
        return -1;
    return 0;
}

/* Adds up what each member read during the storm. */
static void storm_count(struct worker *w)
{
    for (uint32_t i = 0; i < w->n; i++)
        for (int k = 0; k < FT_KINDS; k++) {
            w->st.frames_sum[k] += w->m[i].frames[k];
            if (w->m[i].frames[k] > w->st.frames_max[k])
                w->st.frames_max[k] = w->m[i].frames[k];
        }
}

int worker_main(const struct options *o, struct shared *sh, unsigned index)
{
    struct worker w = {.o = o, .sh = sh, .slot = &sh->slot[index]};
    int failed;

    if (setup(&w, index)) {
        worker_note_error(&w, "worker setup failed");
        failed = 1;
    } else {
        start_more(&w);
        failed = event_base_dispatch(w.base) < 0;
    }
    if (!failed && o->mode == MODE_STORM)
        storm_count(&w);
    else if (!failed && o->mode == MODE_RECONNECT)
        recon_count(&w);
    report_progress(&w);
    w.slot->final = w.st;
    failed = failed || atomic_load(&w.slot->state) == WK_FAILED;
    atomic_store_explicit(&w.slot->state, failed ? WK_FAILED : WK_DONE, memory_order_release);
    teardown(&w);
    return failed;
}
