/* gateway: one gateway instance and the wiring of its parts, in one place:
 * the bus (Redis or in-process) hands room frames to the rooms and global
 * frames to every session (requests_bus_handlers), the requests and rooms
 * answer the sessions' clients, and every session's output goes through
 * the one connection writer (conn.h).
 *
 * The server owns one and reaches it from every libwebsockets callback as
 * the lws context's user pointer; nothing else is global but the metrics
 * and the log. */
#ifndef GATEWAY_GATEWAY_H
#define GATEWAY_GATEWAY_H

#include "bus.h"
#include "config.h"
#include "requests.h"
#include "session.h"

struct event_base;

struct gateway {
    const struct config *cfg;
    struct bus *bus;
    struct requests requests; /* and the rooms */
    struct sessions sessions;
};

/* Makes the bus cfg asks for and everything around it. -1 (logged) when a
 * part cannot be made, with nothing left to free. */
int gateway_init(struct gateway *g, struct event_base *base, const struct config *cfg);
/* Once the bus is closed and every session is gone. */
void gateway_free(struct gateway *g);

#endif
