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
    unsigned workers;
    struct slot slot[];
};

/* Maps the shared region for n workers; NULL on failure. */
struct shared *shared_create(unsigned n);
void shared_destroy(struct shared *s);

#endif
