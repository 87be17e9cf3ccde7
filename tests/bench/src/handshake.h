#ifndef CHATBENCH_HANDSHAKE_H
#define CHATBENCH_HANDSHAKE_H

#include <stddef.h>
#include <stdint.h>

/* The HTTP/1.1 upgrade of a WebSocket client (RFC 6455 section 4). */

#define HS_KEY_LEN 24    /* base64 of 16 random bytes */
#define HS_ACCEPT_LEN 28 /* base64 of a SHA-1 digest */

/* Encodes the 16-byte nonce as the Sec-WebSocket-Key, into key (25 bytes). */
void hs_make_key(const uint8_t nonce[16], char key[HS_KEY_LEN + 1]);

/* The Sec-WebSocket-Accept a server must answer to key, into out (29 bytes). */
void hs_accept_for(const char *key, char out[HS_ACCEPT_LEN + 1]);

/* Writes the upgrade request. Returns its length, or -1 if cap is too small. */
int hs_build_request(char *out, size_t cap, const char *host, const char *target, const char *key);

/* Checks a response head (everything up to and including the blank line).
 * Returns 0 for a 101 with the right Sec-WebSocket-Accept, -1 otherwise;
 * *status gets the HTTP status (0 if the status line is unreadable). */
int hs_check_response(const char *head, size_t len, const char *key, int *status);

/* Length of the response head in buf, blank line included, or 0 if the
 * blank line has not arrived yet. */
size_t hs_head_len(const char *buf, size_t n);

#endif
