/* defer_bus: a bus in front of the in-process bus that answers joins and
 * subscriptions only when told, each kind in the order asked, as the Redis
 * bus does; and that can be "down" (the cluster unreachable), failing
 * what the Redis bus fails then. Everything else goes straight through, so
 * frames published while a join waits reach the joiner's held queue. */
#ifndef FUZZ_DEFER_BUS_H
#define FUZZ_DEFER_BUS_H

#include <stdbool.h>

#include "bus.h"

/* Takes inner (freed with the wrapper). NULL on OOM (inner freed too). */
struct bus *defer_bus_new(struct bus *inner);
/* Answers the oldest waiting join or subscription with status (0 or -1;
 * a subscription that failed waits again: the bus keeps trying). False
 * when none waits. A join's history is the room's as it was when the join
 * was asked, or with late, as it is now: Redis reads it at some point in
 * between, so what was published meanwhile may come both in the history
 * and as a held frame. */
bool defer_bus_answer_join(struct bus *b, int status, bool late);
bool defer_bus_answer_subscribe(struct bus *b, int status);
void defer_bus_set_down(struct bus *b, bool down);
bool defer_bus_is_down(const struct bus *b);

#endif
