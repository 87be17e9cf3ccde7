/* http: the plain HTTP endpoints (/healthz, /readyz, /metrics) and the
 * checks that a WebSocket upgrade must pass (path, origin, username). */
#ifndef GATEWAY_HTTP_H
#define GATEWAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "config.h"
#include "session.h"

struct lws;

void http_init(const struct config *cfg, struct bus *bus);

/* Answers GET on one of the endpoints; returns the lws callback result. */
int http_serve_endpoint(struct lws *wsi, const char *path);

/* Vets an upgrade. Returns 0 to let it proceed, 1 when a refusal was
 * written, -1 to hang up. */
int http_confirm_upgrade(struct lws *wsi);
/* The kind of session the upgraded connection serves, the user name it
 * speaks for (PROTO_NAME_MAX + 1 bytes; "" when none was asked for) and the
 * client's address. Valid from the upgrade to ESTABLISHED. */
enum session_kind http_upgrade_kind(struct lws *wsi, char *name, char *addr, size_t addr_size);

/* Pure checks, shared with the tests. */
bool http_origin_allowed(const char *origin, const char *host, char *const *allowed,
                         size_t n_allowed);

#endif
