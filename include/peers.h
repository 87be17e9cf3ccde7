/* peers: open connections per client address, for the optional limit on
 * connections from one address. Behind a load balancer every client has
 * the balancer's address, which is why the limit is off by default. */
#ifndef GATEWAY_PEERS_H
#define GATEWAY_PEERS_H

#include <stdbool.h>

#include "strmap.h"

struct peers {
    struct strmap by_addr; /* address -> (uintptr_t) open connections */
    unsigned limit;        /* 0: no limit */
};

void peers_init(struct peers *p, unsigned limit);
void peers_free(struct peers *p);
/* Whether one more connection from addr is allowed now. */
bool peers_allowed(const struct peers *p, const char *addr);
/* Counts a connection; returns the stored address copy to give back to
 * peers_release, or NULL (not counted: no limit, or out of memory). */
const char *peers_acquire(struct peers *p, const char *addr);
void peers_release(struct peers *p, const char *addr);

#endif
