/* server: the process around the sessions. Creates the event_base, runs
 * libwebsockets on it as a foreign loop together with the bus, routes lws
 * callbacks to http and session, and shuts down gracefully on SIGINT and
 * SIGTERM (every client gets 1001, then the process exits 0). */
#ifndef GATEWAY_SERVER_H
#define GATEWAY_SERVER_H

#include "config.h"

/* Runs until shutdown; returns the process exit status. */
int server_run(const struct config *cfg);

#endif
