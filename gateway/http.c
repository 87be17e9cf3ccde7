#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "auth.h"
#include "clock.h"
#include "log.h"
#include "metrics.h"

/* What lws adds to its own responses with the best-practice option. */
#define SECURITY_HEADERS                                                                           \
    "content-security-policy: default-src 'none'; frame-ancestors 'none'\r\n"                      \
    "x-content-type-options: nosniff\r\n"                                                          \
    "x-frame-options: deny\r\n"                                                                    \
    "referrer-policy: no-referrer\r\n"

/* Writes a whole small response. Returns the lws callback result. */
static int respond(struct lws *wsi, unsigned status, const char *type, const char *body, size_t len)
{
    unsigned char hdr[LWS_PRE + 1024], *start = hdr + LWS_PRE, *p = start,
                                       *end = hdr + sizeof(hdr) - 1;
    if (lws_add_http_common_headers(wsi, status, type, (lws_filepos_t)len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return -1;
    /* lws_write wants writable headroom before the payload. */
    unsigned char *buf = malloc(LWS_PRE + len + 1);
    if (!buf)
        return -1;
    memcpy(buf + LWS_PRE, body, len);
    int n = lws_write(wsi, buf + LWS_PRE, len, LWS_WRITE_HTTP_FINAL);
    free(buf);
    if (n < 0)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int respond_text(struct lws *wsi, unsigned status, const char *line)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "%s\n", line);
    return respond(wsi, status, "text/plain; charset=utf-8", body, (size_t)n);
}

int http_serve_endpoint(const struct sessions *ss, struct lws *wsi, const char *path)
{
    if (strcmp(path, "/healthz") == 0)
        return respond_text(wsi, 200, "ok");
    if (strcmp(path, "/readyz") == 0) {
        if (ss->shutting_down)
            return respond_text(wsi, 503, "shutting down");
        if (!ss->bus->ops->ready(ss->bus))
            return respond_text(wsi, 503, "redis unavailable");
        return respond_text(wsi, 200, "ready");
    }
    if (strcmp(path, "/metrics") == 0) {
        char primary[300];
        struct metrics_gauges g = {
            .connections = (uint64_t)ss->chat_count,
            .rooms = rooms_count(&ss->requests->rooms),
            .redis_up = ss->bus->ops->ready(ss->bus),
            .io_uring = conn_out_batching(&ss->out),
            .redis_primary = primary,
        };
        bus_target(ss->bus, &g.redis_mode, primary, sizeof(primary), &g.redis_tls);
        size_t len;
        char *body = metrics_render(&g, &len);
        if (!body)
            return respond_text(wsi, 500, "out of memory");
        int r = respond(wsi, 200, "text/plain; version=0.0.4", body, len);
        free(body);
        return r;
    }
    return respond_text(wsi, 404, "not found");
}

bool http_origin_allowed(const char *origin, const char *host, char *const *allowed,
                         size_t n_allowed)
{
    if (!origin || !*origin)
        return true; /* not a browser, or a same-origin request */
    const char *sep = strstr(origin, "://");
    if (host && *host && sep && strcasecmp(sep + 3, host) == 0)
        return true;
    for (size_t i = 0; i < n_allowed; i++)
        if (strcasecmp(origin, allowed[i]) == 0 || strcmp(allowed[i], "*") == 0)
            return true;
    return false;
}

static const char *reason_phrase(unsigned status)
{
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 429:
        return "Too Many Requests";
    default:
        return "Service Unavailable";
    }
}

/* Refuses an upgrade. The response is written whole here because lws
 * only learns the request's HTTP version for requests that are not
 * upgrades, and would answer an upgrade with HTTP/1.0. */
static int refuse(struct lws *wsi, unsigned status, const char *why)
{
    metrics.rejected_upgrades++;
    log_info("upgrade refused (%u): %s", status, why);
    unsigned char buf[LWS_PRE + 1024];
    char *p = (char *)buf + LWS_PRE;
    int n = snprintf(p, sizeof(buf) - LWS_PRE,
                     "HTTP/1.1 %u %s\r\n"
                     "content-type: text/plain; charset=utf-8\r\n"
                     "content-length: %zu\r\n"
                     "cache-control: no-store\r\n"
                     "connection: close\r\n"
                     "%s"
                     "%s\r\n%s\n",
                     status, reason_phrase(status), strlen(why) + 1,
                     status == 401 ? "www-authenticate: Bearer\r\n" : "", SECURITY_HEADERS, why);
    if (n < 0 || (size_t)n >= sizeof(buf) - LWS_PRE)
        return -1;
    return lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_FINAL) < 0 ? -1 : 1;
}

/* Copies the request path (no query) into buf. */
static void request_path(struct lws *wsi, char *buf, size_t size)
{
    buf[0] = '\0';
    if (lws_hdr_copy(wsi, buf, (int)size, WSI_TOKEN_GET_URI) < 0)
        buf[0] = '\0';
}

/* Looks up ?KEY=value (key given with its '='); returns 1 if present
 * (copied), 0 if absent, -1 if it does not fit. */
static int query_arg(struct lws *wsi, const char *key, char *out, size_t size)
{
    char frag[AUTH_TOKEN_MAX + 32];
    size_t klen = strlen(key);
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
         i++) {
        if (strncmp(frag, key, klen) != 0)
            continue;
        size_t len = strlen(frag + klen);
        if (len >= size)
            return -1;
        memcpy(out, frag + klen, len + 1);
        return 1;
    }
    /* An argument longer than frag is not copied at all: call it too long. */
    return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, 0) >= (int)sizeof(frag) ? -1 : 0;
}

/* RFC 6455 4.2.1: the key is 16 bytes in base64, so 22 characters of the
 * alphabet and "==". lws only checks that there is one. */
static bool valid_key(struct lws *wsi)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char key[64];
    if (lws_hdr_copy(wsi, key, sizeof(key), WSI_TOKEN_KEY) != 24)
        return false;
    if (key[22] != '=' || key[23] != '=')
        return false;
    for (int i = 0; i < 22; i++)
        if (!key[i] || !strchr(alphabet, key[i]))
            return false;
    /* The last character carries 2 bits of the 16th byte, 4 of padding. */
    return strchr("AQgw", key[21]) != NULL;
}

static void peer_address(struct lws *wsi, char *addr, size_t size)
{
    if (!lws_get_peer_simple(wsi, addr, size))
        snprintf(addr, size, "unknown");
}

/* Who a /ws upgrade speaks for: the token's name when tokens are required,
 * else ?username= ("" when absent: the session picks one). Returns 0, or
 * the HTTP status to refuse with and *why. */
static unsigned chat_identity(const struct config *cfg, struct lws *wsi, char *name,
                              const char **why)
{
    name[0] = '\0';
    if (cfg->jwt_secret[0]) {
        char token[AUTH_TOKEN_MAX + 1];
        int found = query_arg(wsi, "token=", token, sizeof(token));
        if (found <= 0)
            token[0] = '\0';
        if (found < 0) {
            *why = "token too long";
            return 401;
        }
        return auth_verify(token, strlen(token), cfg->jwt_secret, clock_wall_ms() / 1000, name, why)
                   ? 0
                   : 401;
    }
    char arg[64];
    int found = query_arg(wsi, "username=", arg, sizeof(arg));
    if (found < 0 || (found && !proto_valid_name(arg, strlen(arg), PROTO_NAME_MAX))) {
        *why = "username must be 1 to 32 bytes of UTF-8 without control characters";
        return 400;
    }
    if (found)
        strcpy(name, arg);
    return 0;
}

enum session_kind http_upgrade_kind(const struct sessions *ss, struct lws *wsi, char *name,
                                    char *addr, size_t addr_size)
{
    char path[256];
    const char *why;
    request_path(wsi, path, sizeof(path));
    peer_address(wsi, addr, addr_size);
    name[0] = '\0';
    if (strcmp(path, "/echo") == 0)
        return SESSION_ECHO;
    if (chat_identity(ss->cfg, wsi, name, &why) != 0) /* vetted at the upgrade: cannot fail now */
        name[0] = '\0';
    return SESSION_CHAT;
}

int http_confirm_upgrade(const struct sessions *ss, struct lws *wsi)
{
    char path[256], origin[512], host[512];
    request_path(wsi, path, sizeof(path));
    bool chat = strcmp(path, "/ws") == 0;
    if (!chat && strcmp(path, "/echo") != 0)
        return refuse(wsi, 404, "no WebSocket endpoint here: use /ws or /echo");
    if (ss->shutting_down)
        return refuse(wsi, 503, "the gateway is shutting down");
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
        origin[0] = '\0';
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0)
        host[0] = '\0';
    if (!http_origin_allowed(origin, host, ss->cfg->allowed_origins, ss->cfg->n_allowed_origins))
        return refuse(wsi, 403, "origin not allowed");
    if (!valid_key(wsi))
        return refuse(wsi, 400, "Sec-WebSocket-Key must be base64 of 16 bytes");
    char addr[64];
    peer_address(wsi, addr, sizeof(addr));
    if (!peers_allowed(&ss->peers, addr))
        return refuse(wsi, 429, "too many connections from this address");
    if (!chat)
        return 0;
    char name[PROTO_NAME_MAX + 1];
    const char *why;
    unsigned status = chat_identity(ss->cfg, wsi, name, &why);
    return status ? refuse(wsi, status, why) : 0;
}
