#ifndef CHATBENCH_REPORT_H
#define CHATBENCH_REPORT_H

#include "options.h"
#include "stats.h"

/* What the coordinator measured around the workers' statistics. CPU figures
 * are CPU-seconds within the measured window; RSS is summed over gateways. */
struct run_result {
    const struct options *o;
    struct wstats st; /* every worker's, added up */
    double window_s;  /* fanout: the measured duration; idle: --idle */
    double setup_s;   /* first connect to the last worker ready */
    double settle_s;  /* after setup, until the gateways went quiet */
    int settled;      /* they did, before the cap */
    int have_gw;      /* every gateway's pid was given */
    int have_redis;
    double gw_cpu_s;
    double redis_cpu_s;
    double gen_cpu_s;    /* workers and coordinator */
    double gen_busy_max; /* busiest worker's share of one core */
    long gw_rss_before_kb;
    long gw_rss_after_kb;
    uint64_t pings_window;
    double settle_gw_cpu_s; /* storm: after the last joined, while settling */
    double settle_redis_cpu_s;
    int64_t kill_us;  /* reconnect: when the victim got SIGKILL */
    int deadline_hit; /* reconnect: not all were back by --deadline */
    uint64_t unacked; /* reconnect: chats never seen by their publisher */
};

/* One JSON line on stdout and, unless --quiet, a summary on stderr. */
void report_fanout(const struct run_result *r);
void report_idle(const struct run_result *r);
void report_storm(const struct run_result *r);
void report_reconnect(const struct run_result *r);

#endif
