#include "reconnect.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "clock.h"
#include "jscan.h"
#include "rng.h"
#include "worker_impl.h"

#define RESENDS_MAX 1024
#define DEFAULT_RETRY_MS 1000 /* a refused chat without retry_after_ms */
#define CHECK_EVERY_US 100000 /* the drain checks completeness this often */

/* A publisher's chat refused with an error, to be sent again (same cid). */
struct resend {
    uint32_t member;
    uint32_t room, seq;
    int64_t at;
};

struct rmember {
    struct worker *w;
    struct event *timer; /* the backoff wait, then the attempt's timeout */
    uint64_t *seen;      /* bit s: message s of the room arrived */
    uint32_t seen_words;
    uint32_t low;               /* the first message this member must get */
    uint32_t attempt;           /* attempts since the last welcome */
    uint64_t last_ms, last_seq; /* newest message id seen */
    uint8_t have_id, in_room, ever_joined, welcomed, on_victim, dropped;
    /* publisher */
    uint8_t publisher;
    uint32_t rooms_joined; /* of its rooms, in this connection */
    uint32_t cursor;       /* its next room, round robin */
    uint64_t unacked;
    int64_t next_at;   /* its next message is due */
    int64_t opened_us; /* the current connection's 101 */
};

/* Publisher p (of P) owns rooms p, p + P, p + 2P, ...: every room has one
 * publisher, so a room's sequence numbers are one series. */
static uint32_t pub_index(const struct worker *w, const struct member *mb)
{
    return mb->id - w->o->conns;
}

static uint32_t pub_rooms(const struct worker *w, uint32_t p)
{
    return (w->o->rooms - p + w->o->publishers - 1) / w->o->publishers;
}

static uint32_t pub_room(const struct worker *w, uint32_t p, uint32_t k)
{
    return p + k * w->o->publishers;
}

/* Uniform in [0, 1): the top 53 bits over 2^53. */
static double rand01(struct worker *w)
{
    return (double)(rng_next(&w->rng) >> 11) / 9007199254740992.0;
}

static void on_timer(evutil_socket_t fd, short what, void *arg);

int recon_setup(struct worker *w)
{
    w->rng = (uint64_t)now_us() | 1;
    w->room_seq = calloc(w->o->rooms, sizeof(*w->room_seq));
    w->resends = calloc(RESENDS_MAX, sizeof(*w->resends));
    if (!w->room_seq || !w->resends)
        return -1;
    if (inet_pton(AF_INET, w->o->lb.host, &w->lb_dst.sin_addr) != 1) {
        worker_note_error(w, "not a numeric IPv4 address: %s", w->o->lb.host);
        return -1;
    }
    w->lb_dst.sin_family = AF_INET;
    w->lb_dst.sin_port = htons(w->o->lb.port);
    snprintf(w->lb_host, sizeof(w->lb_host), "%s:%u", w->o->lb.host, (unsigned)w->o->lb.port);
    for (uint32_t i = 0; i < w->n; i++) {
        struct member *mb = &w->m[i];
        struct rmember *r = calloc(1, sizeof(*r));

        if (!r)
            return -1;
        mb->r = r;
        r->w = w;
        r->publisher = mb->id >= w->o->conns;
        r->timer = evtimer_new(w->base, on_timer, mb);
        if (!r->timer)
            return -1;
    }
    return 0;
}

void recon_teardown(struct worker *w)
{
    for (uint32_t i = 0; w->m && i < w->n; i++) {
        struct rmember *r = w->m[i].r;

        if (!r)
            continue;
        if (r->timer)
            event_free(r->timer);
        free(r->seen);
        free(r);
    }
    free(w->room_seq);
    free(w->resends);
}

static void arm(struct rmember *r, int64_t us)
{
    struct timeval tv = {(time_t)(us / 1000000), (suseconds_t)(us % 1000000)};

    if (evtimer_add(r->timer, &tv))
        worker_note_error(r->w, "evtimer_add failed");
}

/* The browser's schedule: wait backoff(attempt), attempt 0 first. */
static void schedule_retry(struct worker *w, struct member *mb)
{
    struct rmember *r = mb->r;
    uint32_t ms =
        backoff_delay_ms(r->attempt, w->o->backoff_base_ms, w->o->backoff_cap_ms, rand01(w));

    if (w->check_us)
        return;
    r->attempt++;
    if (r->attempt > w->st.r.max_attempt)
        w->st.r.max_attempt = r->attempt;
    arm(r, (int64_t)ms * 1000);
}

void recon_connect(struct worker *w, struct member *mb)
{
    struct rmember *r = mb->r;
    int pub = r->publisher;

    if (w->check_us)
        return;
    /* Publishers go straight to the gateway that survives: they measure
     * delivery, and their own reconnect would be a second storm. */
    if (worker_connect(w, mb, pub ? &w->dst[0] : &w->lb_dst, pub ? w->host[0] : w->lb_host)) {
        schedule_retry(w, mb);
        return;
    }
    arm(r, (int64_t)(w->o->attempt_timeout_s * 1e6));
}

/* The timer: a backoff wait is over, or an attempt took too long. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct member *mb = arg;
    struct rmember *r = mb->r;
    struct worker *w = r->w;

    (void)fd;
    (void)what;
    if (mb->c.state == CS_IDLE || mb->c.state == CS_CLOSED) {
        recon_connect(w, mb);
        return;
    }
    if (r->in_room)
        return;
    if (mb->c.state == CS_OPEN)
        w->open--;
    else
        w->inflight--;
    conn_drop(&mb->c);
    w->st.r.attempt_timeouts++;
    worker_note_error(w, "no joined within %.0f s of an attempt", w->o->attempt_timeout_s);
    schedule_retry(w, mb);
}

void recon_on_open(struct worker *w, struct member *mb, int64_t now)
{
    mb->r->opened_us = now;
    if (!mb->r->dropped)
        return;
    w->st.r.reconnects++;
    if (now > w->st.r.reconnect_last_us)
        w->st.r.reconnect_last_us = now;
}

void recon_on_refused(struct worker *w, struct member *mb, int status, const char *why)
{
    enum refuse_kind k = status == 0     ? REF_TCP
                         : status == 502 ? REF_HTTP502
                         : status == 503 ? REF_HTTP503
                         : status == 504 ? REF_HTTP504
                         : status == 101 ? REF_BAD_RESPONSE
                                         : REF_HTTP_OTHER;

    w->st.r.refused[k]++;
    worker_note_error(w, "connect: %s", why);
    evtimer_del(mb->r->timer);
    schedule_retry(w, mb);
}

static void leave_room(struct worker *w, struct rmember *r)
{
    if (r->in_room) {
        r->in_room = 0;
        w->in_room--;
    }
}

void recon_on_closed(struct worker *w, struct member *mb, int code, const char *why)
{
    struct rmember *r = mb->r;
    int after_setup = atomic_load(&w->slot->state) == WK_READY;

    if (r->publisher) {
        if (after_setup)
            w->st.r.publisher_drops++;
        /* What it sent and did not see back is not counted as published. */
        w->unacked -= r->unacked;
        r->unacked = 0;
        r->rooms_joined = 0;
    } else if (atomic_load(&w->sh->t_kill) && r->on_victim && !r->dropped) {
        w->st.r.victim_closes++;
    } else if (after_setup && r->in_room) {
        /* A surviving gateway closed a member in its room: one that was
         * there from the start, or one that had come back to it. */
        w->st.r.survivor_drops++;
        worker_note_error(w, "a member of the surviving gateway was closed: %d (%s)", code, why);
    }
    if (r->dropped && !r->in_room)
        w->st.r.closed_rejoining++;
    leave_room(w, r);
    r->dropped = 1;
    evtimer_del(r->timer);
    schedule_retry(w, mb);
}

/* Parses "<a><sep><b>" of decimal numbers. */
static int two_nums(struct jspan s, char sep, uint64_t *a, uint64_t *b)
{
    const char *p = s.p, *end = s.p + s.n;
    uint64_t *out = a;

    if (!p || !s.n)
        return -1;
    *a = *b = 0;
    for (; p < end; p++) {
        if (*p == sep && out == a && p > s.p) {
            out = b;
            continue;
        }
        if (*p < '0' || *p > '9')
            return -1;
        *out = *out * 10 + (uint64_t)(*p - '0');
    }
    return out == b && end[-1] != sep ? 0 : -1;
}

static void send_join(struct worker *w, struct member *mb, uint32_t room)
{
    struct rmember *r = mb->r;
    char join[160];
    int n;

    /* A member that saw messages asks for what came after the newest. */
    if (!r->publisher && r->have_id) {
        n = snprintf(join, sizeof(join),
                     "{\"type\":\"join_room\",\"room\":\"bench-%" PRIu32 "\",\"since\":\"%" PRIu64
                     "-%" PRIu64 "\"}",
                     room, r->last_ms, r->last_seq);
        w->st.r.since_used += r->ever_joined;
    } else {
        n = snprintf(join, sizeof(join), "{\"type\":\"join_room\",\"room\":\"bench-%" PRIu32 "\"}",
                     room);
    }
    conn_send_text(&mb->c, join, (size_t)n);
}

static void note_id(struct rmember *r, struct jspan id)
{
    uint64_t ms, seq;

    if (two_nums(id, '-', &ms, &seq))
        return;
    if (!r->have_id || ms > r->last_ms || (ms == r->last_ms && seq > r->last_seq)) {
        r->last_ms = ms;
        r->last_seq = seq;
        r->have_id = 1;
    }
}

/* Records message seq of the member's room. Returns 1 when it had it. */
static int note_seq(struct worker *w, struct rmember *r, uint32_t seq)
{
    uint32_t word = seq / 64;
    uint64_t bit = 1ull << (seq % 64);

    if (word >= r->seen_words) {
        uint32_t n = r->seen_words ? r->seen_words : 2;
        uint64_t *p;

        while (n <= word)
            n *= 2;
        p = realloc(r->seen, n * sizeof(*p));
        if (!p) {
            worker_note_error(w, "out of memory for a member's messages");
            return 0;
        }
        memset(p + r->seen_words, 0, (n - r->seen_words) * sizeof(*p));
        r->seen = p;
        r->seen_words = n;
    }
    if (r->seen[word] & bit)
        return 1;
    r->seen[word] |= bit;
    return 0;
}

/* A chat of this benchmark: content "<room> <seq>". Returns -1 otherwise. */
static int bench_chat(const struct worker *w, struct jspan content, uint32_t *room, uint32_t *seq)
{
    uint64_t r, s;

    if (two_nums(content, ' ', &r, &s) || r >= w->o->rooms || s >= MAX_ROOM_SEQ)
        return -1;
    *room = (uint32_t)r;
    *seq = (uint32_t)s;
    return 0;
}

static void member_chat(struct worker *w, struct member *mb, const struct jmsg *m)
{
    uint32_t room, seq;

    w->st.delivered++;
    if (bench_chat(w, m->content, &room, &seq) || room != mb->room) {
        w->st.foreign++;
        return;
    }
    note_id(mb->r, m->id);
    w->st.duplicates += (uint64_t)note_seq(w, mb->r, seq);
}

/* The answer to a join: history, truncated, and the room's series. */
static void member_joined(struct worker *w, struct member *mb, const struct jmsg *m)
{
    struct rmember *r = mb->r;
    const char *pos = m->history.p;
    struct jspan e;
    int first = !r->ever_joined, more;
    int64_t low = -1;

    while (m->history.p && (more = jscan_array_next(m->history, &pos, &e)) != 0) {
        struct jmsg h;
        uint32_t room, seq;

        if (more < 0 || jscan_message(e.p, e.n, &h)) {
            worker_note_error(w, "unreadable history in joined");
            break;
        }
        if (bench_chat(w, h.content, &room, &seq) || room != mb->room)
            continue;
        note_id(r, h.id);
        if (first) {
            /* Before its first joined a member was not owed anything:
             * it counts from the message after its history's newest. */
            note_seq(w, r, seq);
            if ((int64_t)seq > low)
                low = seq;
        } else {
            w->st.r.recovered++;
            w->st.duplicates += (uint64_t)note_seq(w, r, seq);
        }
    }
    if (first) {
        r->low = (uint32_t)(low + 1);
        r->ever_joined = 1;
        w->st.joined++;
        w->st.join_last_us = now_us();
    } else {
        int64_t now = now_us();

        w->st.r.rejoins++;
        hist_add(&w->st.r.rejoin_wait, (uint64_t)(now - r->opened_us));
        if (now > w->st.r.rejoin_last_us)
            w->st.r.rejoin_last_us = now;
        w->st.r.truncated += jspan_is(m->truncated, "true");
    }
}

static void publisher_ack(struct worker *w, struct member *mb, const struct jmsg *m)
{
    struct rmember *r = mb->r;
    uint32_t room, seq;
    uint64_t bit, had;

    if (bench_chat(w, m->content, &room, &seq) || room % w->o->publishers != pub_index(w, mb))
        return;
    bit = 1ull << (seq % 64);
    had = atomic_fetch_or(&w->sh->published[(size_t)room * PUBLISHED_WORDS + seq / 64], bit) & bit;
    if (!had && r->unacked) {
        r->unacked--;
        w->unacked--;
        w->st.r.published++;
    }
}

static void queue_resend(struct worker *w, struct member *mb, const struct jmsg *m)
{
    uint64_t room, seq, retry = DEFAULT_RETRY_MS;
    struct rmember *r = mb->r;

    if (two_nums(m->cid, '-', &room, &seq) || room >= w->o->rooms)
        return;
    /* A comma or the closing brace follows the number: strtoull stops
     * there. A wait beyond a minute would outlast the run. */
    if (m->retry_after_ms.p)
        retry = strtoull(m->retry_after_ms.p, NULL, 10);
    if (retry > 60000)
        retry = 60000;
    if (w->nresends == RESENDS_MAX) {
        /* Given up: it no longer counts as waiting for its ack. */
        w->st.r.resend_overflow++;
        if (r->unacked) {
            r->unacked--;
            w->unacked--;
        }
        return;
    }
    w->resends[w->nresends++] = (struct resend){(uint32_t)(mb - w->m), (uint32_t)room,
                                                (uint32_t)seq, now_us() + (int64_t)retry * 1000};
}

void recon_on_text(struct worker *w, struct member *mb, const struct jmsg *m)
{
    struct rmember *r = mb->r;

    if (jspan_is(m->type, "chat")) {
        if (r->publisher)
            publisher_ack(w, mb, m);
        else
            member_chat(w, mb, m);
    } else if (jspan_is(m->type, "joined")) {
        if (r->publisher) {
            if (++r->rooms_joined < pub_rooms(w, pub_index(w, mb))) {
                send_join(w, mb, pub_room(w, pub_index(w, mb), r->rooms_joined));
                return;
            }
            w->st.joined += !r->ever_joined;
            r->ever_joined = 1;
        } else {
            member_joined(w, mb, m);
        }
        if (!r->in_room) {
            r->in_room = 1;
            w->in_room++;
        }
        evtimer_del(r->timer);
    } else if (jspan_is(m->type, "welcome")) {
        /* The browser starts its backoff over at each welcome. */
        r->attempt = 0;
        if (!r->welcomed && !r->publisher) {
            r->on_victim = jspan_is(m->gateway, w->o->kill_id);
            w->st.r.on_victim += r->on_victim;
            w->st.r.on_survivor += !r->on_victim;
        }
        r->welcomed = 1;
        send_join(w, mb, r->publisher ? pub_room(w, pub_index(w, mb), 0) : mb->room);
    } else if (jspan_is(m->type, "error")) {
        w->st.errors[err_kind_of(m->code)]++;
        worker_note_error(w, "error frame from the gateway: %.*s", m->code.p ? (int)m->code.n : 0,
                          m->code.p ? m->code.p : "");
        /* Without its cid an error does not say which chat it refused:
         * that chat stays unacknowledged and is not counted. */
        w->st.r.publish_errors += r->publisher;
        if (r->publisher && m->cid.p)
            queue_resend(w, mb, m);
    }
}

/* Returns 0, or -1 when the connection is gone (its close was handled). */
static int send_chat(struct member *mb, uint32_t room, uint32_t seq)
{
    char b[192];
    int n = snprintf(b, sizeof(b),
                     "{\"type\":\"chat\",\"room\":\"bench-%" PRIu32 "\",\"content\":\"%" PRIu32
                     " %" PRIu32 "\",\"cid\":\"%" PRIu32 "-%" PRIu32 "\"}",
                     room, room, seq, room, seq);

    return conn_send_text(&mb->c, b, (size_t)n);
}

/* Each publisher sends rate / publishers messages a second, to its rooms
 * in turn. One that is away (reconnecting) skips what fell due meanwhile. */
static void publish_due(struct worker *w, int64_t now)
{
    double period_us = 1e6 * w->o->publishers / w->o->rate;

    for (uint32_t i = 0; i < w->n; i++) {
        struct member *mb = &w->m[i];
        struct rmember *r = mb->r;
        uint32_t p, room;

        if (!r->publisher)
            continue;
        if (!r->in_room) {
            r->next_at = now;
            continue;
        }
        if (!r->next_at)
            r->next_at = w->t_go + (int64_t)(period_us * pub_index(w, mb) / w->o->publishers);
        while (now >= r->next_at && r->in_room) {
            if ((uint64_t)(now - r->next_at) > w->st.max_tick_lag_us)
                w->st.max_tick_lag_us = (uint64_t)(now - r->next_at);
            r->next_at += (int64_t)period_us;
            p = pub_index(w, mb);
            room = pub_room(w, p, r->cursor++ % pub_rooms(w, p));
            if (w->room_seq[room] >= MAX_ROOM_SEQ) {
                worker_note_error(w, "room %" PRIu32 " used all %d sequence numbers", room,
                                  MAX_ROOM_SEQ);
                continue;
            }
            if (send_chat(mb, room, w->room_seq[room]))
                break;
            w->room_seq[room]++;
            r->unacked++;
            w->unacked++;
            w->st.sent++;
        }
    }
}

static void resend_due(struct worker *w, int64_t now)
{
    for (uint32_t i = 0; i < w->nresends;) {
        struct resend *s = &w->resends[i];
        struct member *mb = &w->m[s->member];

        if (s->at > now || !mb->r->in_room) {
            i++;
            continue;
        }
        /* A resend the connection could not take is dropped with it. */
        if (send_chat(mb, s->room, s->seq) == 0)
            w->st.r.resends++;
        *s = w->resends[--w->nresends];
    }
}

void recon_tick(struct worker *w, int phase, int64_t now)
{
    if (phase >= PH_CHECK) {
        if (!w->check_us)
            w->check_us = now;
        return;
    }
    if (phase >= PH_RUN && !w->running) {
        w->t_go = w->sh->t_go;
        w->running = 1;
    }
    if (phase == PH_RUN && now >= w->t_go)
        publish_due(w, now);
    if (w->running)
        resend_due(w, now);
}

/* Words of a room's published bitmap that may hold a bit: up to the
 * highest word any room has used. */
static uint32_t used_words(const struct worker *w)
{
    uint32_t top = 0;

    for (uint32_t room = 0; room < w->o->rooms; room++)
        for (uint32_t k = top; k < PUBLISHED_WORDS; k++)
            if (atomic_load_explicit(&w->sh->published[(size_t)room * PUBLISHED_WORDS + k],
                                     memory_order_relaxed))
                top = k + 1;
    return top;
}

/* How many of the messages published after mb's first joined (*owed of
 * them) it has not received. */
static uint64_t member_missing(const struct worker *w, const struct member *mb, uint32_t words,
                               uint64_t *owed)
{
    const struct rmember *r = mb->r;
    uint64_t missing = 0;

    *owed = 0;
    for (uint32_t k = r->low / 64; k < words; k++) {
        uint64_t need = atomic_load_explicit(
            &w->sh->published[(size_t)mb->room * PUBLISHED_WORDS + k], memory_order_relaxed);
        uint64_t seen = k < r->seen_words ? r->seen[k] : 0;

        if (k * 64 < r->low)
            need &= ~0ull << (r->low - k * 64);
        *owed += (uint64_t)__builtin_popcountll(need);
        missing += (uint64_t)__builtin_popcountll(need & ~seen);
    }
    return missing;
}

/* 1 when every member in its room has everything it is owed. */
static int all_complete(const struct worker *w)
{
    uint32_t words = used_words(w);
    uint64_t owed;

    for (uint32_t i = 0; i < w->n; i++)
        if (!w->m[i].r->publisher && w->m[i].r->in_room &&
            member_missing(w, &w->m[i], words, &owed))
            return 0;
    return 1;
}

/* The drain ends when every member in its room has all it is owed (a
 * gateway that lost Redis may still replay what it missed), or after
 * --drain seconds. */
int recon_finished(struct worker *w, int phase, int64_t now)
{
    if (phase < PH_CHECK || !w->check_us)
        return 0;
    if (now - w->check_us >= (int64_t)(w->o->drain_s * 1e6))
        return 1;
    if (now - w->last_check_us < CHECK_EVERY_US)
        return 0;
    w->last_check_us = now;
    return all_complete(w);
}

void recon_count(struct worker *w)
{
    uint32_t words = used_words(w);

    for (uint32_t i = 0; i < w->n; i++) {
        struct member *mb = &w->m[i];
        struct rmember *r = mb->r;
        uint64_t owed, missing;

        if (r->publisher)
            continue;
        missing = member_missing(w, mb, words, &owed);
        if (r->in_room) {
            w->st.r.expected += owed;
            w->st.r.missing += missing;
            w->st.r.members_missing += missing > 0;
        } else {
            w->st.r.not_back++;
            w->st.r.missing_not_back += missing;
        }
    }
}
