#ifndef CHATBENCH_STATS_H
#define CHATBENCH_STATS_H

#include <stdint.h>

#include "hist.h"

/* What one worker measured; the coordinator adds these up. */

enum close_kind {
    CLOSE_NORMAL,  /* 1000 */
    CLOSE_AWAY,    /* 1001: gateway shutting down */
    CLOSE_POLICY,  /* 1008: slow consumer or keepalive timeout */
    CLOSE_TOO_BIG, /* 1009 */
    CLOSE_ABRUPT,  /* no close frame (1006) */
    CLOSE_OTHER,
    CLOSE_KINDS
};

enum err_kind { ERR_RATE_LIMITED, ERR_UNAVAILABLE, ERR_NOT_IN_ROOM, ERR_OTHER, ERR_KINDS };

struct wstats {
    /* setup */
    uint64_t connected;
    uint64_t joined;
    uint64_t connect_failures;
    int64_t connect_first_us; /* first connect() */
    int64_t connect_last_us;  /* last upgrade answered */
    struct hist handshake;    /* connect() to 101, µs */
    /* traffic: messages */
    uint64_t sent;         /* chat frames published */
    uint64_t sent_window;  /* of those, stamped inside the window */
    uint64_t expected;     /* sent_window times the members of the room */
    uint64_t send_skipped; /* not sent: publisher's backlog too long */
    uint64_t delivered;    /* chat frames received, any time */
    uint64_t measured;     /* first arrivals stamped inside the window */
    uint64_t duplicates;
    uint64_t out_of_order;
    uint64_t foreign;         /* chat frames not from this benchmark */
    struct hist latency;      /* send to arrival at the socket, µs */
    struct hist read_latency; /* send to our read of the same, µs */
    /* traffic: everything */
    uint64_t frames_in;
    uint64_t pings;
    uint64_t errors[ERR_KINDS];
    uint64_t closes[CLOSE_KINDS];
    uint64_t closes_in_run; /* connections lost after setup */
    int64_t first_close_us;
    int64_t last_close_us;
    uint64_t max_tick_lag_us; /* how late the publishing timer fired */
    char first_error[160];
};

void wstats_merge(struct wstats *into, const struct wstats *from);

#endif
