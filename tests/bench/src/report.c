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

/* "key":{"name":value,...} for n counters. */
static void counts(struct jout *j, const char *key, const char *const *names, const uint64_t *v,
                   int n)
{
    jo_obj(j, key);
    for (int k = 0; k < n; k++)
        jo_int(j, names[k], (int64_t)v[k]);
    jo_end(j);
}

static void closes(struct jout *j, const struct wstats *s)
{
    static const char *const names[CLOSE_KINDS] = {"1000", "1001", "1008", "1009", "1006", "other"};

    counts(j, "close_codes", names, s->closes, CLOSE_KINDS);
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
    if (o->mode != MODE_RECONNECT) {
        jo_num(j, "settle_s", round(r->settle_s * 1000) / 1000);
        jo_bool(j, "settled", r->settled);
    }
}

static void traffic(struct jout *j, const struct options *o)
{
    jo_int(j, "rooms", o->rooms);
    jo_int(j, "publishers", o->publishers);
    jo_num(j, "rate", o->rate);
}

static void errors(struct jout *j, const struct wstats *s)
{
    static const char *const names[ERR_KINDS] = {"rate_limited", "unavailable", "not_in_room",
                                                 "other"};

    counts(j, "errors", names, s->errors, ERR_KINDS);
}

/* Ends the JSON line. Returns 1 when --quiet leaves out the summary. */
static int end_line(struct jout *j, const struct run_result *r)
{
    jo_str(j, "first_error", r->st.first_error);
    jo_end(j);
    return r->o->quiet;
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
    traffic(&j, o);
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
    errors(&j, s);
    jo_int(&j, "foreign", (int64_t)s->foreign);
    if (end_line(&j, r))
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
    if (end_line(&j, r))
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

static uint64_t closes_total(const struct wstats *s)
{
    uint64_t n = 0;

    for (int k = 0; k < CLOSE_KINDS; k++)
        n += s->closes[k];
    return n;
}

static double per_1k(double cpu_s, uint64_t conns)
{
    return conns ? cpu_s * 1000.0 / (double)conns : NAN;
}

static double secs_between(int64_t from_us, int64_t to_us)
{
    return from_us && to_us >= from_us ? (double)(to_us - from_us) / 1e6 : NAN;
}

void report_storm(const struct run_result *r)
{
    static const char *const kinds[FT_KINDS] = {"system", "client_count", "joined", "other"};
    const struct wstats *s = &r->st;
    double wall = secs_between(s->connect_first_us, s->join_last_us);
    struct jout j;

    jo_begin(&j, stdout);
    common(&j, r, "storm");
    jo_int(&j, "rooms", r->o->rooms);
    jo_int(&j, "joined", (int64_t)s->joined);
    jo_num(&j, "wall_s", round(wall * 1000) / 1000);
    jo_bool(&j, "timed_out", r->deadline_hit);
    jo_num(&j, "joins_per_s", s->joined ? round((double)s->joined / wall) : NAN);
    jo_num(&j, "gateway_cpu_s", r->have_gw ? r->gw_cpu_s : NAN);
    jo_num(&j, "gateway_cpu_per_1k", r->have_gw ? per_1k(r->gw_cpu_s, s->connected) : NAN);
    jo_num(&j, "redis_cpu_s", r->have_redis ? r->redis_cpu_s : NAN);
    jo_num(&j, "redis_cpu_per_1k", r->have_redis ? per_1k(r->redis_cpu_s, s->connected) : NAN);
    jo_num(&j, "settle_gateway_cpu_s", r->have_gw ? r->settle_gw_cpu_s : NAN);
    jo_num(&j, "settle_redis_cpu_s", r->have_redis ? r->settle_redis_cpu_s : NAN);
    generator(&j, r, 0);
    jo_obj(&j, "frames_mean");
    for (int k = 0; k < FT_KINDS; k++)
        jo_num(&j, kinds[k],
               s->connected ? round((double)s->frames_sum[k] / (double)s->connected * 100) / 100
                            : NAN);
    jo_end(&j);
    counts(&j, "frames_max", kinds, s->frames_max, FT_KINDS);
    jo_int(&j, "frames_in", (int64_t)s->frames_in);
    /* The generator never closes first during a storm: every close is the
     * gateways'. */
    jo_int(&j, "lost_connections", (int64_t)closes_total(s));
    closes(&j, s);
    errors(&j, s);
    if (end_line(&j, r))
        return;
    fprintf(stderr,
            "storm: %llu of %u connected, %llu joined in %.2f s (%.0f handshakes/s)%s\n"
            "  gateway CPU %.2f s (%.3f per 1,000 connections), then %.2f s while settling\n",
            (unsigned long long)s->connected, r->o->conns, (unsigned long long)s->joined, wall,
            handshake_rate(s), r->deadline_hit ? "; TIMED OUT waiting for the rest" : "",
            r->gw_cpu_s, per_1k(r->gw_cpu_s, s->connected), r->settle_gw_cpu_s);
    warn_unsettled(r);
    if (s->first_error[0])
        fprintf(stderr, "  first error: %s\n", s->first_error);
}

void report_reconnect(const struct run_result *r)
{
    static const char *const refused[REF_KINDS] = {"tcp", "502",        "503",
                                                   "504", "other_http", "bad_response"};
    const struct options *o = r->o;
    const struct wstats *s = &r->st;
    const struct rstats *x = &s->r;
    double back = secs_between(r->kill_us, x->reconnect_last_us);
    double rejoined = secs_between(r->kill_us, x->rejoin_last_us);
    struct jout j;

    jo_begin(&j, stdout);
    common(&j, r, "reconnect");
    traffic(&j, o);
    jo_str(&j, "killed", o->kill_id);
    jo_int(&j, "on_killed", (int64_t)x->on_victim);
    jo_int(&j, "on_survivors", (int64_t)x->on_survivor);
    jo_int(&j, "victim_closes", (int64_t)x->victim_closes);
    jo_num(&j, "reconnected_s", round(back * 1000) / 1000);
    jo_num(&j, "rejoined_s", round(rejoined * 1000) / 1000);
    jo_bool(&j, "deadline_hit", r->deadline_hit);
    jo_num(&j, "deadline_s", o->deadline_s);
    jo_int(&j, "reconnects", (int64_t)x->reconnects);
    jo_int(&j, "rejoins", (int64_t)x->rejoins);
    jo_int(&j, "not_back", (int64_t)x->not_back);
    jo_int(&j, "max_attempt", x->max_attempt);
    latency(&j, "rejoin_wait_us", &x->rejoin_wait);
    jo_int(&j, "since_used", (int64_t)x->since_used);
    jo_int(&j, "truncated", (int64_t)x->truncated);
    jo_int(&j, "recovered", (int64_t)x->recovered);
    jo_int(&j, "published", (int64_t)x->published);
    jo_int(&j, "unacked", (int64_t)r->unacked);
    jo_int(&j, "expected", (int64_t)x->expected);
    jo_int(&j, "missing", (int64_t)x->missing);
    jo_int(&j, "members_missing", (int64_t)x->members_missing);
    jo_int(&j, "missing_not_back", (int64_t)x->missing_not_back);
    jo_int(&j, "duplicates", (int64_t)s->duplicates);
    jo_int(&j, "survivor_drops", (int64_t)x->survivor_drops);
    jo_int(&j, "publisher_drops", (int64_t)x->publisher_drops);
    counts(&j, "refused", refused, x->refused, REF_KINDS);
    jo_int(&j, "attempt_timeouts", (int64_t)x->attempt_timeouts);
    jo_int(&j, "closed_rejoining", (int64_t)x->closed_rejoining);
    closes(&j, s);
    errors(&j, s);
    jo_int(&j, "publish_errors", (int64_t)x->publish_errors);
    jo_int(&j, "resends", (int64_t)x->resends);
    jo_int(&j, "resend_overflow", (int64_t)x->resend_overflow);
    jo_int(&j, "max_send_lag_us", (int64_t)s->max_tick_lag_us);
    jo_num(&j, "window_s", round(r->window_s * 1000) / 1000);
    jo_num(&j, "survivor_cpu_s", r->have_gw ? r->gw_cpu_s : NAN);
    jo_num(&j, "redis_cpu_s", r->have_redis ? r->redis_cpu_s : NAN);
    jo_num(&j, "generator_cpu_s", r->gen_cpu_s);
    jo_int(&j, "foreign", (int64_t)s->foreign);
    if (end_line(&j, r))
        return;
    fprintf(stderr,
            "reconnect: %llu members on %s, killed; all reconnected %.2f s and rejoined "
            "%.2f s after the kill%s\n"
            "  missing %llu of %llu, duplicates %llu, truncated %llu, survivors dropped %llu\n",
            (unsigned long long)x->on_victim, o->kill_id, back, rejoined,
            r->deadline_hit ? " (DEADLINE: some are not back)" : "", (unsigned long long)x->missing,
            (unsigned long long)x->expected, (unsigned long long)s->duplicates,
            (unsigned long long)x->truncated, (unsigned long long)x->survivor_drops);
    if (s->first_error[0])
        fprintf(stderr, "  first error: %s\n", s->first_error);
}
