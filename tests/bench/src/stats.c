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
    if (!into->first_error[0] && f->first_error[0])
        memcpy(into->first_error, f->first_error, sizeof(into->first_error));
}
