/* metrics: process-wide counters, rendered with the gauges (read from the
 * gateway's state when /metrics is asked for) in the Prometheus text
 * format. Plain integers: one thread touches them. */
#ifndef GATEWAY_METRICS_H
#define GATEWAY_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* What /metrics reports of the state at the moment it is asked. */
struct metrics_gauges {
    uint64_t connections; /* open /ws sessions */
    uint64_t rooms;       /* rooms with local members */
    uint64_t redis_up;    /* the bus is connected and its subscriptions live */
    uint64_t io_uring;    /* fan-out writes go through io_uring */
    /* Which Redis: gateway_redis_info{mode,primary,tls} 1. */
    const char *redis_mode;    /* "none", "single" or "sentinel" */
    const char *redis_primary; /* "HOST:PORT" used or last used, "" none yet */
    bool redis_tls;
};

/* The server API's requests are counted by endpoint and status (api.c
 * maps each to these indexes; metrics.c names them). */
enum metrics_api_endpoint {
    API_EP_PUBLISH,
    API_EP_BROADCAST,
    API_EP_PRESENCE,
    API_EP_ROOMS,
    API_EP_HISTORY,
    API_EP_DISCONNECT,
    API_EP_UNSUBSCRIBE,
    API_EP_INFO,
    API_EP_OTHER, /* an unknown path */
    API_EP_COUNT
};
enum metrics_api_status {
    API_ST_200,
    API_ST_400,
    API_ST_401,
    API_ST_404,
    API_ST_405,
    API_ST_413,
    API_ST_500,
    API_ST_503,
    API_ST_COUNT
};
extern const int metrics_api_status_codes[API_ST_COUNT];

struct metrics {
    uint64_t connections_total;
    uint64_t frames_in;
    uint64_t frames_out;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t errors[PROTO_ERROR_COUNT];
    uint64_t slow_consumer_drops;
    uint64_t keepalive_timeouts;
    uint64_t oversize_closes;
    uint64_t redis_reconnects;
    uint64_t redis_replays;       /* rooms' streams replayed after a resubscribe */
    uint64_t redis_history_lost;  /* replays that found the room's history lost messages */
    uint64_t redis_canary_misses; /* canaries not back in time: the link was restarted */
    uint64_t redis_failovers;     /* ready on another primary than last time */
    /* Redis Cluster gauges, kept by bus_redis_cluster.c: primaries whose
     * connections are up, and slots whose primary is not (all while the
     * link is down). */
    uint64_t redis_cluster_nodes_up;
    uint64_t redis_cluster_slots_unserved;
    uint64_t dead_gateways_reaped;
    uint64_t bus_published;
    uint64_t bus_received;
    uint64_t bus_publish_failures;
    uint64_t chat_resends; /* resends answered with the original, not delivered */
    uint64_t rate_limited;
    uint64_t rate_limit_closes;
    uint64_t rejected_upgrades;
    uint64_t incomplete_requests;
    uint64_t api_requests[API_EP_COUNT][API_ST_COUNT];
    /* Publish-to-delivery latency of this gateway's own chat messages. */
    uint64_t latency_buckets[12];
    uint64_t latency_count;
    uint64_t latency_sum_us;
};

extern struct metrics metrics;

void metrics_observe_latency_us(uint64_t us);
/* Renders the counters and g into a malloc'd string; NULL on OOM. */
char *metrics_render(const struct metrics_gauges *g, size_t *len);

#endif
