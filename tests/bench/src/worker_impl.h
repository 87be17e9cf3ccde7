#ifndef CHATBENCH_WORKER_IMPL_H
#define CHATBENCH_WORKER_IMPL_H

/* A worker's state, shared by worker.c (connections, phases, fanout, idle
 * and storm) and reconnect.c (what the reconnect scenario adds). */

#include <netinet/in.h>
#include <stdint.h>

#include "conn.h"
#include "jscan.h"
#include "layout.h"
#include "options.h"
#include "seqtrack.h"
#include "shared.h"
#include "stats.h"

/* A drain ends after this long without news. */
#define DRAIN_QUIET_US 500000

struct rmember;

/* Where a member's join stands (storm and fanout). */
enum { JOIN_NONE, JOIN_OK, JOIN_REFUSED };

struct member {
    struct conn c;
    uint32_t id;
    uint32_t room;
    uint8_t joined;            /* JOIN_NONE, JOIN_OK or JOIN_REFUSED */
    struct seqwin *track;      /* fanout: one per publisher of the room */
    uint64_t sched;            /* fanout publisher: messages due so far, sent or not */
    uint32_t seq;              /* fanout publisher: next sequence number */
    double offset;             /* fanout publisher: its phase within one period */
    uint32_t frames[FT_KINDS]; /* storm: frames read, by type */
    struct rmember *r;         /* reconnect */
};

struct resend;

struct worker {
    const struct options *o;
    struct layout l;
    struct shared *sh;
    struct slot *slot;
    struct event_base *base;
    struct event *tick;
    struct conn_io io;
    struct member *m;
    uint32_t n;
    uint32_t *pubs;
    uint32_t npubs;
    uint32_t next_connect;
    uint32_t inflight;
    uint32_t settled; /* opened and ready, or failed */
    uint64_t open;
    struct sockaddr_in *dst;
    char (*host)[80]; /* "HOST:PORT" for the Host header */
    struct wstats st;
    int running; /* PH_RUN seen and timeline loaded */
    int64_t t_go, m_start, m_end;
    double pub_rate; /* messages/s of one publisher */
    int64_t last_progress_us;
    int64_t last_news_us; /* last measured arrival */
    char *msg;            /* chat frame under construction */
    size_t msg_cap;
    /* reconnect */
    struct sockaddr_in lb_dst;
    char lb_host[80];
    uint64_t in_room;   /* members in their room, publishers in all theirs */
    uint64_t unacked;   /* chats sent and not seen back by their publisher */
    uint32_t *room_seq; /* next sequence number of each room this worker publishes to */
    struct resend *resends;
    uint32_t nresends;
    uint64_t rng;          /* backoff jitter */
    int64_t check_us;      /* PH_CHECK seen: no more attempts, drain from here */
    int64_t last_check_us; /* the drain's last completeness check */
};

__attribute__((format(printf, 2, 3))) void worker_note_error(struct worker *w, const char *fmt,
                                                             ...);

enum err_kind err_kind_of(struct jspan code);

/* Starts connecting mb to dst. Returns 0, or -1 (counted, noted) when the
 * attempt failed at once. */
int worker_connect(struct worker *w, struct member *mb, const struct sockaddr_in *dst,
                   const char *host);

#endif
