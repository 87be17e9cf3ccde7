#include "gateway.h"

#include <string.h>

#include "log.h"

int gateway_init(struct gateway *g, struct event_base *base, const struct config *cfg)
{
    memset(g, 0, sizeof(*g));
    g->cfg = cfg;
    /* The handlers only need the requests' address: they are set up next. */
    struct bus_handlers h = requests_bus_handlers(&g->requests);
    g->bus = bus_new(base, cfg, &h);
    if (!g->bus)
        return -1; /* the bus said why */
    requests_init(&g->requests, cfg, g->bus, &session_requester_ops, &g->sessions);
    if (sessions_init(&g->sessions, base, cfg, g->bus, &g->requests) < 0) {
        log_error("could not set up the sessions: out of memory");
        requests_free(&g->requests);
        bus_free(g->bus);
        g->bus = NULL;
        return -1;
    }
    return 0;
}

void gateway_free(struct gateway *g)
{
    bus_free(g->bus);
    g->bus = NULL;
    requests_free(&g->requests);
    sessions_free(&g->sessions);
}
