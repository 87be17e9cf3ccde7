#ifndef CHATBENCH_WSFRAME_H
#define CHATBENCH_WSFRAME_H

#include <stddef.h>
#include <stdint.h>

/* RFC 6455 framing: frames from a server are never masked, frames from a
 * client always are. The generator parses a server's frames; chatfloor, the
 * benchmark's bare server, parses a client's. */

enum ws_opcode {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

#define WS_MAX_HEADER 14

struct ws_frame {
    int fin;
    int opcode;
    uint64_t len;      /* payload length */
    size_t header_len; /* bytes before the payload, the masking key included */
    uint8_t mask[4];   /* a client frame's masking key */
};

/* Parses a frame header at buf: a client's (masked) when from_client, else
 * a server's. Returns 1 with *f filled when the header is complete, 0 when
 * more bytes are needed, -1 when the header breaks the protocol (reserved
 * bits, a mask where none belongs or none where one must be, a bad control
 * frame). */
int ws_parse_header(const uint8_t *buf, size_t n, int from_client, struct ws_frame *f);

/* Writes the header of an unmasked server frame (FIN set) with a payload
 * of len bytes to out (room for WS_MAX_HEADER). Returns its length. */
size_t ws_encode_server_header(uint8_t *out, int opcode, size_t len);

/* Writes one masked client frame (FIN set) to out, which must have room for
 * len + WS_MAX_HEADER bytes. Returns the number of bytes written. */
size_t ws_encode_client(uint8_t *out, int opcode, const void *payload, size_t len,
                        uint32_t mask_key);

#endif
