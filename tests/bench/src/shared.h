#ifndef CHATBENCH_SHARED_H
#define CHATBENCH_SHARED_H

#include <stdatomic.h>
#include <stdint.h>

#include "stats.h"

/* Memory shared by the coordinator and its forked workers. The coordinator
 * moves the phase forward; each worker reports its state, live counters for
 * the progress line, and at the end its full statistics. */

enum phase {
    PH_SETUP,    /* connect (and join) */
    PH_RUN,      /* fanout: publish along the timeline below */
    PH_SHUTDOWN, /* idle: wait for the gateways to close us */
    PH_DONE,     /* storm: the gateways went quiet; count and leave */
    PH_STOP,     /* reconnect: publishers stop */
    PH_CHECK,    /* reconnect: drain, then count what is missing */
};

enum worker_state {
    WK_STARTING,
    WK_READY, /* every connection settled (fanout: joined) */
    WK_DONE,  /* final statistics written */
    WK_FAILED,
};

struct progress {
    _Atomic uint64_t connected;
    _Atomic uint64_t joined;
    _Atomic uint64_t sent;
    _Atomic uint64_t delivered;
    _Atomic uint64_t frames_in;
    _Atomic uint64_t pings;
    _Atomic uint64_t open;
    _Atomic uint64_t in_room;       /* reconnect: members in their room */
    _Atomic uint64_t unacked;       /* reconnect: chats not yet seen by their publisher */
    _Atomic uint64_t victims;       /* reconnect: members on the gateway to kill */
    _Atomic uint64_t victim_closes; /* reconnect: of those, closed after the kill */
};

struct slot {
    _Atomic int state;
    struct progress prog;
    struct wstats final;
};

struct shared {
    _Atomic int phase;
    /* Written before phase becomes PH_RUN, read after. */
    int64_t t_go;    /* publishing starts */
    int64_t m_start; /* measurement window [m_start, m_end) */
    int64_t m_end;
    int64_t shutdown_deadline;
    _Atomic int64_t t_kill; /* reconnect: when the victim was killed, 0 before */
    /* reconnect: bit s of room r's PUBLISHED_WORDS words is set once
     * message s of room r came back to its publisher. Mapped before the
     * fork like the rest. */
    _Atomic uint64_t *published;
    unsigned workers;
    uint32_t rooms; /* of published: 0 outside reconnect */
    struct slot slot[];
};

/* Messages per room that reconnect tracks; a publisher stops there. */
#define PUBLISHED_WORDS 128
#define MAX_ROOM_SEQ (PUBLISHED_WORDS * 64)

/* Maps the shared region for n workers; NULL on failure. */
struct shared *shared_create(unsigned n, uint32_t rooms);
void shared_destroy(struct shared *s);

#endif
