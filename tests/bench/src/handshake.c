#include "handshake.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void hs_make_key(const uint8_t nonce[16], char key[HS_KEY_LEN + 1])
{
    EVP_EncodeBlock((unsigned char *)key, nonce, 16);
}

void hs_accept_for(const char *key, char out[HS_ACCEPT_LEN + 1])
{
    unsigned char in[HS_KEY_LEN + sizeof(ws_guid)];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    size_t klen = strlen(key);

    if (klen > HS_KEY_LEN)
        klen = HS_KEY_LEN;
    memcpy(in, key, klen);
    memcpy(in + klen, ws_guid, sizeof(ws_guid) - 1);
    if (!EVP_Digest(in, klen + sizeof(ws_guid) - 1, md, &mdlen, EVP_sha1(), NULL)) {
        out[0] = '\0'; /* matches no server answer: the upgrade fails */
        return;
    }
    EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

int hs_build_request(char *out, size_t cap, const char *host, const char *target, const char *key)
{
    int n = snprintf(out, cap,
                     "GET %s HTTP/1.1\r\n"
                     "Host: %s\r\n"
                     "Upgrade: websocket\r\n"
                     "Connection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\n"
                     "Sec-WebSocket-Version: 13\r\n"
                     "\r\n",
                     target, host, key);

    return (n < 0 || (size_t)n >= cap) ? -1 : n;
}

size_t hs_head_len(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' && buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Value of header name in head (case-insensitive name), trimmed; its length
 * goes to *vlen. NULL when absent. */
static const char *header_value(const char *head, size_t len, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *end = head + len;
    const char *line = memchr(head, '\n', len);

    while (line && ++line < end) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));

        if (!eol)
            break;
        if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
            strncasecmp(line, name, nlen) == 0) {
            const char *v = line + nlen + 1;
            const char *ve = eol;

            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            *vlen = (size_t)(ve - v);
            return v;
        }
        line = eol;
    }
    return NULL;
}

int hs_check_response(const char *head, size_t len, const char *key, int *status)
{
    char want[HS_ACCEPT_LEN + 1];
    const char *v;
    size_t vlen;

    *status = 0;
    if (len < 12 || strncmp(head, "HTTP/1.1 ", 9) != 0)
        return -1;
    for (int i = 9; i < 12; i++) {
        if (head[i] < '0' || head[i] > '9')
            return -1;
        *status = *status * 10 + (head[i] - '0');
    }
    if (*status != 101)
        return -1;
    v = header_value(head, len, "Sec-WebSocket-Accept", &vlen);
    hs_accept_for(key, want);
    if (!v || vlen != strlen(want) || memcmp(v, want, vlen) != 0)
        return -1;
    return 0;
}
