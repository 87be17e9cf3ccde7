#include "report.h"

#include <math.h>
#include <stdio.h>

#include "jout.h"

/* A worker busier than this may itself be what limits the run. */
#define BUSY_LIMIT 0.85
/* Publishers that sent less than this share of the asked rate fell behind. */
#define SENT_SHARE 0.95

static double per_100k(double cpu_s, uint64_t deliveries)
{
    return deliveries ? cpu_s * 1e5 / (double)deliveries : NAN;
}

static void latency(struct jout *j, const char *key, const struct hist *h)
{
    jo_obj(j, key);
    jo_int(j, "p50", (int64_t)hist_quantile(h, 0.50));
    jo_int(j, "p99", (int64_t)hist_quantile(h, 0.99));
    jo_int(j, "p999", (int64_t)hist_quantile(h, 0.999));
    jo_int(j, "max", (int64_t)h->max);
    jo_int(j, "mean", h->count ? (int64_t)(h->sum / h->count) : 0);
    jo_end(j);
}

static void closes(struct jout *j, const struct wstats *s)
{
    jo_obj(j, "close_codes");
    jo_int(j, "1000", (int64_t)s->closes[CLOSE_NORMAL]);
    jo_int(j, "1001", (int64_t)s->closes[CLOSE_AWAY]);
    jo_int(j, "1008", (int64_t)s->closes[CLOSE_POLICY]);
    jo_int(j, "1009", (int64_t)s->closes[CLOSE_TOO_BIG]);
    jo_int(j, "1006", (int64_t)s->closes[CLOSE_ABRUPT]);
    jo_int(j, "other", (int64_t)s->closes[CLOSE_OTHER]);
    jo_end(j);
}

static double handshake_rate(const struct wstats *s)
{
    double connect_s = (double)(s->connect_last_us - s->connect_first_us) / 1e6;

    return connect_s > 0 ? round((double)s->connected / connect_s) : NAN;
}

static void common(struct jout *j, const struct run_result *r, const char *scenario)
{
    const struct options *o = r->o;
    const struct wstats *s = &r->st;

    jo_str(j, "tool", "chatbench");
    jo_str(j, "scenario", scenario);
    jo_int(j, "gateways", o->gateways);
    jo_int(j, "workers", o->workers);
    jo_int(j, "conns", o->conns);
    jo_int(j, "connected", (int64_t)s->connected);
    jo_int(j, "connect_failures", (int64_t)s->connect_failures);
    jo_num(j, "handshakes_per_s", handshake_rate(s));
    latency(j, "handshake_us", &s->handshake);
    jo_num(j, "setup_s", round(r->setup_s * 1000) / 1000);
    jo_num(j, "settle_s", round(r->settle_s * 1000) / 1000);
    jo_bool(j, "settled", r->settled);
}

static void warn_unsettled(const struct run_result *r)
{
    if (!r->settled)
        fprintf(stderr,
                "  WARNING: the gateways were still sending setup "
                "traffic after %.0f s of settling: the figures "
                "include it\n",
                r->settle_s);
}

static void generator(struct jout *j, const struct run_result *r, uint64_t deliveries)
{
    jo_num(j, "generator_cpu_s", r->gen_cpu_s);
    jo_num(j, "generator_cpu_per_100k", per_100k(r->gen_cpu_s, deliveries));
    jo_num(j, "generator_busy", round(r->gen_busy_max * 100) / 100);
    jo_bool(j, "generator_limited", r->gen_busy_max > BUSY_LIMIT);
}

void report_fanout(const struct run_result *r)
{
    const struct options *o = r->o;
    const struct wstats *s = &r->st;
    uint64_t lost = s->expected > s->measured ? s->expected - s->measured : 0;
    double rate = (double)s->measured / r->window_s;
    int behind = (double)s->sent_window < SENT_SHARE * o->rate * r->window_s - 1;
    struct jout j;

    jo_begin(&j, stdout);
    common(&j, r, "fanout");
    jo_int(&j, "rooms", o->rooms);
    jo_int(&j, "publishers", o->publishers);
    jo_num(&j, "rate", o->rate);
    jo_int(&j, "size", o->size);
    jo_num(&j, "warmup_s", o->warmup_s);
    jo_num(&j, "duration_s", r->window_s);
    jo_int(&j, "sent", (int64_t)s->sent_window);
    jo_num(&j, "sent_per_s", (double)s->sent_window / r->window_s);
    jo_bool(&j, "publishers_behind", behind);
    jo_int(&j, "expected", (int64_t)s->expected);
    jo_int(&j, "delivered", (int64_t)s->measured);
    jo_num(&j, "deliveries_per_s", round(rate));
    jo_int(&j, "lost", (int64_t)lost);
    jo_num(&j, "loss_pct", s->expected ? 100.0 * (double)lost / (double)s->expected : 0);
    jo_int(&j, "duplicates", (int64_t)s->duplicates);
    jo_int(&j, "out_of_order", (int64_t)s->out_of_order);
    latency(&j, "latency_us", &s->latency);
    latency(&j, "read_latency_us", &s->read_latency);
    jo_num(&j, "gateway_cpu_s", r->have_gw ? r->gw_cpu_s : NAN);
    jo_num(&j, "gateway_cpu_per_100k", r->have_gw ? per_100k(r->gw_cpu_s, s->measured) : NAN);
    jo_num(&j, "redis_cpu_s", r->have_redis ? r->redis_cpu_s : NAN);
    jo_num(&j, "redis_cpu_per_100k", r->have_redis ? per_100k(r->redis_cpu_s, s->measured) : NAN);
    generator(&j, r, s->measured);
    jo_int(&j, "max_send_lag_us", (int64_t)s->max_tick_lag_us);
    jo_int(&j, "send_skipped", (int64_t)s->send_skipped);
    jo_int(&j, "lost_connections", (int64_t)s->closes_in_run);
    closes(&j, s);
    jo_obj(&j, "errors");
    jo_int(&j, "rate_limited", (int64_t)s->errors[ERR_RATE_LIMITED]);
    jo_int(&j, "unavailable", (int64_t)s->errors[ERR_UNAVAILABLE]);
    jo_int(&j, "not_in_room", (int64_t)s->errors[ERR_NOT_IN_ROOM]);
    jo_int(&j, "other", (int64_t)s->errors[ERR_OTHER]);
    jo_end(&j);
    jo_int(&j, "foreign", (int64_t)s->foreign);
    jo_str(&j, "first_error", s->first_error);
    jo_end(&j);
    if (o->quiet)
        return;
    fprintf(stderr,
            "fanout: %.0f deliveries/s (%llu of %llu, lost %llu, dup %llu, "
            "out of order %llu)\n"
            "  latency ms: p50 %.2f  p99 %.2f  p99.9 %.2f  max %.2f"
            "  (read by the generator: p50 %.2f  p99 %.2f)\n",
            rate, (unsigned long long)s->measured, (unsigned long long)s->expected,
            (unsigned long long)lost, (unsigned long long)s->duplicates,
            (unsigned long long)s->out_of_order, hist_quantile(&s->latency, 0.5) / 1e3,
            hist_quantile(&s->latency, 0.99) / 1e3, hist_quantile(&s->latency, 0.999) / 1e3,
            s->latency.max / 1e3, hist_quantile(&s->read_latency, 0.5) / 1e3,
            hist_quantile(&s->read_latency, 0.99) / 1e3);
    if (r->have_gw)
        fprintf(stderr, "  CPU-s per 100k deliveries: gateways %.3f",
                per_100k(r->gw_cpu_s, s->measured));
    if (r->have_redis)
        fprintf(stderr, "  redis %.3f", per_100k(r->redis_cpu_s, s->measured));
    fprintf(stderr, "%s  generator %.3f (busiest worker %.0f%% of a core)\n", r->have_gw ? "" : " ",
            per_100k(r->gen_cpu_s, s->measured), r->gen_busy_max * 100);
    warn_unsettled(r);
    if (r->gen_busy_max > BUSY_LIMIT)
        fprintf(stderr,
                "  WARNING: the generator was saturated (a worker "
                "used %.0f%% of a core): the figures are a lower "
                "bound; add --workers\n",
                r->gen_busy_max * 100);
    if (behind)
        fprintf(stderr,
                "  WARNING: publishers sent %.0f messages/s of the "
                "%.0f asked (late by up to %.1f ms): the machine "
                "was short of CPU\n",
                (double)s->sent_window / r->window_s, o->rate, (double)s->max_tick_lag_us / 1e3);
    if (s->first_error[0])
        fprintf(stderr, "  first error: %s\n", s->first_error);
}

void report_idle(const struct run_result *r)
{
    const struct wstats *s = &r->st;
    double rss_per_conn = NAN, cpu_pct_10k = NAN;
    double spread = (double)(s->last_close_us - s->first_close_us) / 1e6;
    struct jout j;

    if (r->have_gw && s->connected) {
        rss_per_conn = round((double)(r->gw_rss_after_kb - r->gw_rss_before_kb) * 1024.0 /
                             (double)s->connected);
        cpu_pct_10k = r->gw_cpu_s / r->window_s * 100.0 * 1e4 / (double)s->connected;
    }
    jo_begin(&j, stdout);
    common(&j, r, "idle");
    jo_num(&j, "idle_s", r->window_s);
    jo_int(&j, "gateway_rss_before_kb", r->gw_rss_before_kb);
    jo_int(&j, "gateway_rss_after_kb", r->gw_rss_after_kb);
    jo_num(&j, "rss_per_conn_bytes", rss_per_conn);
    jo_num(&j, "gateway_cpu_s", r->have_gw ? r->gw_cpu_s : NAN);
    jo_num(&j, "keepalive_cpu_pct_per_10k", cpu_pct_10k);
    jo_num(&j, "redis_cpu_s", r->have_redis ? r->redis_cpu_s : NAN);
    jo_int(&j, "pings", (int64_t)r->pings_window);
    jo_num(&j, "generator_cpu_s", r->gen_cpu_s);
    jo_int(&j, "frames_in", (int64_t)s->frames_in);
    jo_int(&j, "lost_connections", (int64_t)s->closes_in_run);
    closes(&j, s);
    jo_num(&j, "close_spread_s", s->last_close_us ? spread : NAN);
    jo_str(&j, "first_error", s->first_error);
    jo_end(&j);
    if (r->o->quiet)
        return;
    fprintf(stderr, "idle: %llu of %u connected, %.0f handshakes/s\n",
            (unsigned long long)s->connected, r->o->conns, handshake_rate(s));
    warn_unsettled(r);
    if (r->have_gw)
        fprintf(stderr,
                "  gateway RSS %.0f bytes per connection, "
                "keepalive %.2f%% of a core per 10k connections "
                "(%llu pings in %.1f s)\n",
                rss_per_conn, cpu_pct_10k, (unsigned long long)r->pings_window, r->window_s);
    if (s->first_error[0])
        fprintf(stderr, "  first error: %s\n", s->first_error);
}
