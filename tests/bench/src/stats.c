#include "stats.h"

#include <string.h>

static int64_t min_set(int64_t a, int64_t b)
{
    return !a ? b : (!b || a < b) ? a : b;
}

static int64_t max_of(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void rstats_merge(struct rstats *into, const struct rstats *f)
{
    into->on_victim += f->on_victim;
    into->on_survivor += f->on_survivor;
    into->victim_closes += f->victim_closes;
    into->survivor_drops += f->survivor_drops;
    into->reconnects += f->reconnects;
    into->rejoins += f->rejoins;
    for (int i = 0; i < REF_KINDS; i++)
        into->refused[i] += f->refused[i];
    into->attempt_timeouts += f->attempt_timeouts;
    into->closed_rejoining += f->closed_rejoining;
    if (f->max_attempt > into->max_attempt)
        into->max_attempt = f->max_attempt;
    into->since_used += f->since_used;
    into->truncated += f->truncated;
    into->recovered += f->recovered;
    into->not_back += f->not_back;
    into->missing += f->missing;
    into->members_missing += f->members_missing;
    into->missing_not_back += f->missing_not_back;
    into->expected += f->expected;
    into->publisher_drops += f->publisher_drops;
    into->published += f->published;
    into->publish_errors += f->publish_errors;
    into->resends += f->resends;
    into->resend_overflow += f->resend_overflow;
    into->reconnect_last_us = max_of(into->reconnect_last_us, f->reconnect_last_us);
    into->rejoin_last_us = max_of(into->rejoin_last_us, f->rejoin_last_us);
    hist_merge(&into->rejoin_wait, &f->rejoin_wait);
}

void wstats_merge(struct wstats *into, const struct wstats *f)
{
    into->connected += f->connected;
    into->joined += f->joined;
    into->connect_failures += f->connect_failures;
    into->connect_first_us = min_set(into->connect_first_us, f->connect_first_us);
    into->connect_last_us = max_of(into->connect_last_us, f->connect_last_us);
    hist_merge(&into->handshake, &f->handshake);
    into->sent += f->sent;
    into->sent_window += f->sent_window;
    into->expected += f->expected;
    into->send_skipped += f->send_skipped;
    into->delivered += f->delivered;
    into->measured += f->measured;
    into->duplicates += f->duplicates;
    into->out_of_order += f->out_of_order;
    into->foreign += f->foreign;
    hist_merge(&into->latency, &f->latency);
    hist_merge(&into->read_latency, &f->read_latency);
    into->frames_in += f->frames_in;
    into->pings += f->pings;
    for (int i = 0; i < ERR_KINDS; i++)
        into->errors[i] += f->errors[i];
    for (int i = 0; i < CLOSE_KINDS; i++)
        into->closes[i] += f->closes[i];
    into->closes_in_run += f->closes_in_run;
    into->first_close_us = min_set(into->first_close_us, f->first_close_us);
    into->last_close_us = max_of(into->last_close_us, f->last_close_us);
    into->max_tick_lag_us =
        (uint64_t)max_of((int64_t)into->max_tick_lag_us, (int64_t)f->max_tick_lag_us);
    into->join_last_us = max_of(into->join_last_us, f->join_last_us);
    for (int i = 0; i < FT_KINDS; i++) {
        into->frames_sum[i] += f->frames_sum[i];
        into->frames_max[i] =
            (uint64_t)max_of((int64_t)into->frames_max[i], (int64_t)f->frames_max[i]);
    }
    rstats_merge(&into->r, &f->r);
    if (!into->first_error[0] && f->first_error[0])
        memcpy(into->first_error, f->first_error, sizeof(into->first_error));
}
