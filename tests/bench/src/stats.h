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

/* Frames a client reads, by type (storm). */
enum frame_kind { FT_SYSTEM, FT_CLIENT_COUNT, FT_JOINED, FT_OTHER, FT_KINDS };

/* Why a reconnect attempt did not open (reconnect). */
enum refuse_kind {
    REF_TCP,     /* connect() failed: nobody listening, or reset */
    REF_HTTP502, /* the load balancer's answers when no gateway would */
    REF_HTTP503,
    REF_HTTP504,
    REF_HTTP_OTHER,
    REF_BAD_RESPONSE, /* a 101 without the right accept, or no HTTP at all */
    REF_KINDS
};

/* What reconnect measures beyond the common figures. */
struct rstats {
    uint64_t on_victim;      /* members whose first welcome came from --kill */
    uint64_t on_survivor;    /* the others */
    uint64_t victim_closes;  /* victims' connections closed after the kill */
    uint64_t survivor_drops; /* members in their room on a survivor, closed after setup */
    uint64_t reconnects;     /* upgrades after a drop */
    uint64_t rejoins;        /* joined after a drop */
    uint64_t refused[REF_KINDS];
    uint64_t attempt_timeouts; /* attempts given up after --attempt-timeout */
    uint64_t closed_rejoining; /* opened, then closed before joined */
    uint32_t max_attempt;      /* highest attempt number a member reached */
    uint64_t since_used;       /* rejoins that asked with since */
    uint64_t truncated;        /* rejoins answered truncated: true */
    uint64_t recovered;        /* messages that came in rejoin histories */
    uint64_t not_back;         /* members not in their room at the end */
    uint64_t missing;          /* published after a member's first joined, never seen */
    uint64_t members_missing;  /* members in their room that missed any */
    uint64_t missing_not_back; /* the same for members not back */
    uint64_t expected;         /* what the members in their rooms had to see */
    uint64_t publisher_drops;
    uint64_t published;      /* chat messages acknowledged to their publisher */
    uint64_t publish_errors; /* error frames to a publisher */
    uint64_t resends;
    uint64_t resend_overflow; /* resends not scheduled: the list was full */
    int64_t reconnect_last_us;
    int64_t rejoin_last_us;
    struct hist rejoin_wait; /* a rejoin's 101 to its joined, µs */
};

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
    /* storm */
    int64_t join_last_us;
    uint64_t frames_sum[FT_KINDS]; /* over clients, during the storm */
    uint64_t frames_max[FT_KINDS]; /* the most one client read */
    struct rstats r;
    char first_error[160];
};

void wstats_merge(struct wstats *into, const struct wstats *from);

#endif
