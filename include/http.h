/* http: the plain HTTP endpoints (/healthz, /readyz, /metrics) and the
 * checks that a WebSocket upgrade must pass (path, origin, username, the
 * connections per address), for the sessions of one gateway. */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "session.h"

struct lws;

/* Answers GET on one of the endpoints; returns the lws callback result. */
int http_serve_endpoint(const struct sessions *ss, struct lws *wsi, const char *path);

/* Vets an upgrade. Returns 0 to let it proceed, 1 when a refusal was
 * written, -1 to hang up. */
int http_confirm_upgrade(const struct sessions *ss, struct lws *wsi);
/* The kind of session the upgraded connection serves, the user name it
 * speaks for (PROTO_NAME_MAX + 1 bytes; "" when none was asked for) and the
 * client's address. Valid from the upgrade to ESTABLISHED. */
enum session_kind http_upgrade_kind(const struct sessions *ss, struct lws *wsi, char *name,
                                    char *addr, size_t addr_size);

/* Pure checks, shared with the tests. */
bool http_origin_allowed(const char *origin, const char *host, char *const *allowed,
                         size_t n_allowed);

#endif
