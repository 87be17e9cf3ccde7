#include "wsframe.h"

#include <string.h>

int ws_parse_header(const uint8_t *buf, size_t n, int from_client, struct ws_frame *f)
{
    uint64_t len;
    size_t hl = 2;

    if (n < 2)
        return 0;
    if (buf[0] & 0x70)
        return -1; /* no extension was negotiated */
    if (!(buf[1] & 0x80) != !from_client)
        return -1; /* clients mask, servers do not */
    f->fin = (buf[0] & 0x80) != 0;
    f->opcode = buf[0] & 0x0F;
    len = buf[1] & 0x7F;
    if (len == 126) {
        hl = 4;
        if (n < hl)
            return 0;
        len = ((uint64_t)buf[2] << 8) | buf[3];
    } else if (len == 127) {
        hl = 10;
        if (n < hl)
            return 0;
        len = 0;
        for (int i = 2; i < 10; i++)
            len = (len << 8) | buf[i];
        if (len >> 63)
            return -1;
    }
    if (f->opcode & 0x8) {
        if (!f->fin || len > 125)
            return -1;
        if (f->opcode > WS_OP_PONG)
            return -1;
    } else if (f->opcode > WS_OP_BINARY) {
        return -1;
    }
    if (from_client) {
        if (n < hl + 4)
            return 0;
        memcpy(f->mask, buf + hl, 4);
        hl += 4;
    }
    f->len = len;
    f->header_len = hl;
    return 1;
}

size_t ws_encode_server_header(uint8_t *out, int opcode, size_t len)
{
    out[0] = (uint8_t)(0x80 | (opcode & 0x0F));
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    return 10;
}

size_t ws_encode_client(uint8_t *out, int opcode, const void *payload, size_t len,
                        uint32_t mask_key)
{
    const uint8_t *in = payload;
    uint8_t mask[4];
    size_t hl = ws_encode_server_header(out, opcode, len);

    out[1] |= 0x80; /* the same header, with the mask bit */
    memcpy(mask, &mask_key, 4);
    memcpy(out + hl, mask, 4);
    hl += 4;
    for (size_t i = 0; i < len; i++)
        out[hl + i] = in[i] ^ mask[i & 3];
    return hl + len;
}
