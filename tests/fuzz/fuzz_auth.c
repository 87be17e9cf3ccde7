/* fuzz_auth: auth_verify with a fixed secret and time.
 *
 * Input: the first byte says what the rest is:
 *   'J'  "<header>\n<claims>", which the harness encodes and signs with
 *        the secret, so that fuzzing reaches the checks behind the
 *        signature;
 *   'S'  the first two parts of a token, as they are, which the harness
 *        signs (malformed base64url behind a good signature);
 *   else the token as it is.
 *
 * Checks: an accepted token carries the HMAC of its first two parts as its
 * signature (in the canonical encoding), an HS256 header, a number exp
 * after now, no nbf after now, and a valid user name, which is what
 * auth_verify copied out; a refused one has a reason. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth.h"

#define SECRET "fuzz-secret"
#define NOW 1700000000 /* 2023-11-14 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *token, size_t len)
{
    fprintf(stderr, "fuzz_auth: %s\n  token: %.*s\n", what, (int)len, token);
    abort();
}

/* Unpadded base64url of in into out (4 * len / 3 + 4 bytes); returns the
 * length. */
static size_t b64url(const unsigned char *in, size_t len, char *out)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t n = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        size_t chars = len - i >= 3 ? 4 : len - i + 1;
        for (size_t k = 0; k < chars; k++)
            out[n++] = abc[(v >> (18 - 6 * k)) & 63];
    }
    return n;
}

/* The canonical signature of the signed part (header.payload) into out. */
static size_t sign(const char *signed_part, size_t len, char *out)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned mac_len = 0;
    if (!HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET), (const unsigned char *)signed_part, len,
              mac, &mac_len))
        abort();
    return b64url(mac, mac_len, out);
}

/* Room for a signature's dot and encoding after the signed part. */
#define SIG_ROOM 64

/* Appends ".signature" to the signed part in t (n bytes); returns the
 * token's length. */
static size_t append_signature(char *t, size_t n)
{
    size_t signed_len = n;
    t[n++] = '.';
    return n + sign(t, signed_len, t + n);
}

/* Builds header.claims.signature from the raw parts of a 'J' input into a
 * malloc'd token. */
static char *mint(const char *in, size_t len, size_t *token_len)
{
    const char *nl = memchr(in, '\n', len);
    size_t hlen = nl ? (size_t)(nl - in) : len;
    const char *claims = nl ? nl + 1 : in + len;
    size_t clen = len - hlen - (nl ? 1 : 0);
    char *t = malloc(4 * len / 3 + 8 + SIG_ROOM);
    if (!t)
        abort();
    size_t n = b64url((const unsigned char *)in, hlen, t);
    t[n++] = '.';
    n += b64url((const unsigned char *)claims, clen, t + n);
    *token_len = append_signature(t, n);
    return t;
}

/* A token of the signed part of an 'S' input and its signature. */
static char *sign_as_is(const char *in, size_t len, size_t *token_len)
{
    char *t = malloc(len + SIG_ROOM);
    if (!t)
        abort();
    memcpy(t, in, len);
    *token_len = append_signature(t, len);
    return t;
}

static json_t *decode_part(const char *in, size_t len)
{
    static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char *buf = malloc(len + 1);
    if (!buf)
        abort();
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        acc = (acc << 6) | (uint32_t)(strchr(abc, in[i]) - abc);
        if ((bits += 6) >= 8)
            buf[n++] = (unsigned char)(acc >> (bits -= 8));
    }
    json_t *v = json_loadb((const char *)buf, n, 0, NULL);
    free(buf);
    return v;
}

/* Re-checks by other means a token auth_verify accepted. */
static void check_accepted(const char *token, size_t len, const char *name)
{
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot2)
        fail("accepted a token without three parts", token, len);
    char sig[128];
    size_t sig_len = sign(token, (size_t)(dot2 - token), sig);
    if (sig_len != len - (size_t)(dot2 + 1 - token) || memcmp(sig, dot2 + 1, sig_len) != 0)
        fail("accepted a token whose signature is not the HMAC of its parts", token, len);
    json_t *header = decode_part(token, (size_t)(dot1 - token));
    json_t *claims = decode_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    const char *alg = json_string_value(json_object_get(header, "alg"));
    json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
    if (!alg || strcmp(alg, "HS256") != 0)
        fail("accepted a token whose alg is not HS256", token, len);
    if (!json_is_number(exp) || json_number_value(exp) <= NOW ||
        (nbf && (!json_is_number(nbf) || json_number_value(nbf) > NOW)))
        fail("accepted a token outside its validity", token, len);
    json_t *who = json_object_get(claims, "name");
    if (!who)
        who = json_object_get(claims, "sub");
    if (!json_is_string(who) || strcmp(json_string_value(who), name) != 0 ||
        !proto_valid_name(name, strlen(name), PROTO_NAME_MAX))
        fail("accepted a token with a user name other than its claim's, or an invalid one", token,
             len);
    json_decref(header);
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t len;
    char *token;
    if (data[0] == 'J') {
        token = mint((const char *)data + 1, size - 1, &len);
    } else if (data[0] == 'S') {
        token = sign_as_is((const char *)data + 1, size - 1, &len);
    } else {
        len = size - 1;
        /* A buffer of the token's size: reading past it is an overflow. */
        token = malloc(len ? len : 1);
        if (!token)
            abort();
        memcpy(token, data + 1, len);
    }
    char *name = malloc(PROTO_NAME_MAX + 1);
    const char *why = NULL;
    if (!name)
        abort();
    if (auth_verify(token, len, SECRET, NOW, name, &why))
        check_accepted(token, len, name);
    else if (!why || !*why)
        fail("refused a token without a reason", token, len);
    free(name);
    free(token);
    return 0;
}
