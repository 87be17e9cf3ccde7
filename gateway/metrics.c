#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

struct metrics metrics;

const int metrics_api_status_codes[API_ST_COUNT] = {200, 400, 401, 404, 405, 413, 500, 503};
static const char *const api_endpoints[API_EP_COUNT] = {"publish",     "broadcast", "presence",
                                                        "rooms",       "history",   "disconnect",
                                                        "unsubscribe", "info",      "other"};

/* Upper bounds in microseconds. */
static const uint64_t latency_bounds[12] = {100,   250,   500,   1000,   2500,   5000,
                                            10000, 25000, 50000, 100000, 250000, 1000000};

void metrics_observe_latency_us(uint64_t us)
{
    for (size_t i = 0; i < 12; i++) {
        if (us <= latency_bounds[i]) {
            metrics.latency_buckets[i]++;
            break;
        }
    }
    metrics.latency_count++;
    metrics.latency_sum_us += us;
}

struct out {
    char *buf;
    size_t len, cap;
    int failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = 1;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = o->cap * 2 + (size_t)n;
        char *nb = realloc(o->buf, ncap);
        if (!nb) {
            o->failed = 1;
            return;
        }
        o->buf = nb;
        o->cap = ncap;
    }
}

static void metric(struct out *o, const char *name, const char *type, const char *help, uint64_t v)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n%s %" PRIu64 "\n", name, help, name, type, name, v);
}

/* A counter of struct metrics, or (G) a gauge of struct metrics_gauges. */
#define M(field, name, type, help)                                                                 \
    {                                                                                              \
        name, type, help, offsetof(struct metrics, field), false                                   \
    }
#define G(field, name, help)                                                                       \
    {                                                                                              \
        name, "gauge", help, offsetof(struct metrics_gauges, field), true                          \
    }
static const struct {
    const char *name, *type, *help;
    size_t offset;
    bool gauge;
} plain[] = {
    G(connections, "gateway_connections", "Open chat WebSocket connections."),
    M(connections_total, "gateway_connections_total", "counter",
      "Chat WebSocket connections accepted."),
    G(rooms, "gateway_rooms", "Rooms with at least one local member."),
    M(frames_in, "gateway_frames_in_total", "counter", "Frames received from clients."),
    M(frames_out, "gateway_frames_out_total", "counter", "Frames written to clients."),
    M(bytes_in, "gateway_bytes_in_total", "counter", "Payload bytes received from clients."),
    M(bytes_out, "gateway_bytes_out_total", "counter", "Payload bytes written to clients."),
    M(slow_consumer_drops, "gateway_slow_consumer_drops_total", "counter",
      "Clients closed because their send queue passed the limit."),
    M(keepalive_timeouts, "gateway_keepalive_timeouts_total", "counter",
      "Clients closed because they stopped answering pings."),
    M(oversize_closes, "gateway_oversize_closes_total", "counter",
      "Clients closed for a frame over the size limit."),
    M(rejected_upgrades, "gateway_rejected_upgrades_total", "counter",
      "WebSocket upgrades refused (username, origin, token or limits)."),
    M(incomplete_requests, "gateway_incomplete_requests_total", "counter",
      "Connections closed before a whole request: handshake timeout, headers over the "
      "limit, or not HTTP."),
    M(rate_limited, "gateway_rate_limited_total", "counter", "Frames refused by the rate limit."),
    M(rate_limit_closes, "gateway_rate_limit_closes_total", "counter",
      "Clients closed for sending past --rate-limit-grace frames before their retry time."),
    G(redis_up, "gateway_redis_up", "1 while the bus is connected and subscriptions are live."),
    G(io_uring, "gateway_io_uring",
      "1 while fan-out writes are batched through io_uring, 0 when written one by one."),
    M(redis_reconnects, "gateway_redis_reconnects_total", "counter",
      "Reconnections to Redis after a loss."),
    M(redis_replays, "gateway_redis_replays_total", "counter",
      "Rooms whose stream was replayed to local members after a resubscribe."),
    M(redis_history_lost, "gateway_redis_history_lost_total", "counter",
      "Replays that found the room's history had lost messages (Redis restarted empty or a "
      "failover lost writes): the members were told."),
    M(redis_canary_misses, "gateway_redis_canary_misses_total", "counter",
      "Subscription canaries not back in time: a subscriber connection (the seed's or a "
      "primary's sharded one under Redis Cluster) stopped delivering, and the link to Redis "
      "was restarted."),
    M(redis_failovers, "gateway_redis_failovers_total", "counter",
      "Failovers followed: the link became ready on another primary than before (Sentinel)."),
    M(redis_cluster_nodes_up, "gateway_redis_cluster_nodes_up", "gauge",
      "Redis Cluster primaries whose connections are up (0 without Redis Cluster)."),
    M(redis_cluster_slots_unserved, "gateway_redis_cluster_slots_unserved", "gauge",
      "Redis Cluster slots whose primary is not connected now (all 16384 while the link is "
      "down; 0 without Redis Cluster): their rooms answer unavailable."),
    M(dead_gateways_reaped, "gateway_dead_gateways_reaped_total", "counter",
      "Gateways whose heartbeat lapsed that this gateway finished cleaning up after."),
    M(bus_published, "gateway_bus_published_total", "counter", "Messages handed to the bus."),
    M(bus_received, "gateway_bus_received_total", "counter", "Messages received from the bus."),
    M(bus_publish_failures, "gateway_bus_publish_failures_total", "counter",
      "Messages the bus could not take (answered with unavailable)."),
    M(chat_resends, "gateway_chat_resends_total", "counter",
      "Chat resends (same sender and cid within the dedupe window) answered with the "
      "original message instead of being delivered again."),
};
#undef M
#undef G

char *metrics_render(const struct metrics_gauges *g, size_t *len)
{
    struct out o = {.buf = malloc(4096), .cap = 4096};
    if (!o.buf)
        return NULL;
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        const char *from = plain[i].gauge ? (const char *)g : (const char *)&metrics;
        metric(&o, plain[i].name, plain[i].type, plain[i].help,
               *(const uint64_t *)(const void *)(from + plain[i].offset));
    }
    /* Label values: a host as a sentinel named it is checked, but escape
     * what the text format needs escaped anyway. */
    put(&o,
        "# HELP gateway_redis_info The Redis this gateway uses: mode (none, single or "
        "sentinel), the primary used or last used, TLS.\n# TYPE gateway_redis_info gauge\n"
        "gateway_redis_info{mode=\"%s\",primary=\"",
        g->redis_mode ? g->redis_mode : "none");
    for (const char *p = g->redis_primary ? g->redis_primary : ""; *p; p++)
        put(&o, "%s%c", *p == '\\' || *p == '"' ? "\\" : "", *p == '\n' ? 'n' : *p);
    put(&o, "\",tls=\"%s\"} 1\n", g->redis_tls ? "on" : "off");
    put(&o, "# HELP gateway_errors_total Error frames sent to clients, by code.\n"
            "# TYPE gateway_errors_total counter\n");
    for (int e = PROTO_OK + 1; e < PROTO_ERROR_COUNT; e++)
        put(&o, "gateway_errors_total{code=\"%s\"} %" PRIu64 "\n",
            proto_error_code((enum proto_error)e), metrics.errors[e]);
    put(&o, "# HELP gateway_api_requests_total Server API requests answered, by endpoint and "
            "status (only those that happened).\n# TYPE gateway_api_requests_total counter\n");
    for (int e = 0; e < API_EP_COUNT; e++)
        for (int st = 0; st < API_ST_COUNT; st++)
            if (metrics.api_requests[e][st])
                put(&o, "gateway_api_requests_total{endpoint=\"%s\",status=\"%d\"} %" PRIu64 "\n",
                    api_endpoints[e], metrics_api_status_codes[st], metrics.api_requests[e][st]);
    put(&o, "# HELP gateway_publish_latency_seconds From a chat frame's arrival to its return "
            "from the bus on this gateway.\n# TYPE gateway_publish_latency_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i < 12; i++) {
        cum += metrics.latency_buckets[i];
        put(&o, "gateway_publish_latency_seconds_bucket{le=\"%g\"} %" PRIu64 "\n",
            (double)latency_bounds[i] / 1e6, cum);
    }
    put(&o,
        "gateway_publish_latency_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n"
        "gateway_publish_latency_seconds_sum %.6f\n"
        "gateway_publish_latency_seconds_count %" PRIu64 "\n",
        metrics.latency_count, (double)metrics.latency_sum_us / 1e6, metrics.latency_count);
    if (o.failed) {
        free(o.buf);
        return NULL;
    }
    *len = o.len;
    return o.buf;
}
