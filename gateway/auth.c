#include "auth.h"

#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* Decodes unpadded base64url; returns the length or -1. */
static long b64url_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    /* Leftover bits must be the zero padding of a canonical encoding. */
    if (bits >= 6 || (acc & ((1u << bits) - 1)))
        return -1;
    return (long)n;
}

static json_t *decode_json_part(const char *in, size_t len)
{
    unsigned char buf[AUTH_TOKEN_MAX];
    long n = b64url_decode(in, len, buf, sizeof(buf));
    if (n < 0)
        return NULL;
    json_t *v = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

static bool fail(json_t *a, json_t *b, const char **why, const char *reason)
{
    json_decref(a);
    json_decref(b);
    *why = reason;
    return false;
}

bool auth_verify(const char *token, size_t len, const char *secret, int64_t now, char *name,
                 const char **why)
{
    if (len == 0)
        return fail(NULL, NULL, why, "a token is required: connect with ?token=JWT");
    if (len > AUTH_TOKEN_MAX)
        return fail(NULL, NULL, why, "token too long");
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return fail(NULL, NULL, why, "malformed token: expected header.payload.signature");

    unsigned char sig[64];
    long sig_len = b64url_decode(dot2 + 1, len - (size_t)(dot2 + 1 - token), sig, sizeof(sig));
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)token,
              (size_t)(dot2 - token), mac, &mac_len))
        return fail(NULL, NULL, why, "token could not be checked");
    if (sig_len != (long)mac_len || CRYPTO_memcmp(sig, mac, mac_len) != 0)
        return fail(NULL, NULL, why, "invalid token signature");

    json_t *header = decode_json_part(token, (size_t)(dot1 - token));
    json_t *claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!header || !claims)
        return fail(header, claims, why, "malformed token: header or payload is not JSON");
    const char *alg = json_string_value(json_object_get(header, "alg"));
    if (!alg || strcmp(alg, "HS256") != 0)
        return fail(header, claims, why, "unsupported token algorithm: only HS256");

    json_t *exp = json_object_get(claims, "exp");
    if (!json_is_number(exp))
        return fail(header, claims, why, "token has no exp claim");
    if ((double)now >= json_number_value(exp))
        return fail(header, claims, why, "token expired");
    json_t *nbf = json_object_get(claims, "nbf");
    if (nbf && (!json_is_number(nbf) || (double)now < json_number_value(nbf)))
        return fail(header, claims, why, "token not valid yet");

    json_t *who = json_object_get(claims, "name");
    if (!who)
        who = json_object_get(claims, "sub");
    const char *s = json_string_value(who);
    size_t slen = json_string_length(who);
    if (!s || !proto_valid_name(s, slen, PROTO_NAME_MAX))
        return fail(header, claims, why,
                    "token name (or sub) must be 1 to 32 bytes of UTF-8 without control "
                    "characters");
    memcpy(name, s, slen);
    name[slen] = '\0';
    json_decref(header);
    json_decref(claims);
    return true;
}
