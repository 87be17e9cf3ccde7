/* auth: HS256 JSON Web Tokens for /ws. A backend that knows the shared
 * secret mints a token per user; the gateway takes the user name from the
 * token's `name` claim (else `sub`) and checks `exp` (and `nbf` when
 * present). Only HS256 is accepted: the algorithm is not the token's
 * choice. */
#ifndef GATEWAY_AUTH_H
#define GATEWAY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Longest token accepted, in bytes. */
#define AUTH_TOKEN_MAX 4096

/* Verifies token (len bytes) against secret at time now (Unix seconds).
 * On success copies the user name into name (PROTO_NAME_MAX + 1 bytes) and
 * returns true; otherwise sets *why to a one-line reason. */
bool auth_verify(const char *token, size_t len, const char *secret, int64_t now, char *name,
                 const char **why);

#endif
