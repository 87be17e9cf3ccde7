#include "http.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libwebsockets.h>

#include "log.h"
#include "metrics.h"

static const struct config *http_cfg;
static struct bus *http_bus;

void http_init(const struct config *cfg, struct bus *bus)
{
    http_cfg = cfg;
    http_bus = bus;
}

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

int http_serve_endpoint(struct lws *wsi, const char *path)
{
    if (strcmp(path, "/healthz") == 0)
        return respond_text(wsi, 200, "ok");
    if (strcmp(path, "/readyz") == 0) {
        if (sessions.shutting_down)
            return respond_text(wsi, 503, "shutting down");
        if (!http_bus->ops->ready(http_bus))
            return respond_text(wsi, 503, "redis unavailable");
        return respond_text(wsi, 200, "ready");
    }
    if (strcmp(path, "/metrics") == 0) {
        size_t len;
        char *body = metrics_render(&len);
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

static int refuse(struct lws *wsi, unsigned status, const char *why)
{
    metrics.rejected_upgrades++;
    log_info("upgrade refused (%u): %s", status, why);
    return respond_text(wsi, status, why) < 0 ? -1 : 1;
}

/* Copies the request path (no query) into buf. */
static void request_path(struct lws *wsi, char *buf, size_t size)
{
    buf[0] = '\0';
    if (lws_hdr_copy(wsi, buf, (int)size, WSI_TOKEN_GET_URI) < 0)
        buf[0] = '\0';
}

/* Looks up ?username=; returns 1 if present (copied), 0 if absent, -1 if
 * it does not fit. */
static int username_arg(struct lws *wsi, char *out, size_t size)
{
    char frag[1024];
    for (int i = 0; lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) >= 0;
         i++) {
        if (strncmp(frag, "username=", 9) != 0)
            continue;
        size_t len = strlen(frag + 9);
        if (len >= size)
            return -1;
        memcpy(out, frag + 9, len + 1);
        return 1;
    }
    /* An argument longer than frag is not copied at all: call it too long. */
    return lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, 0) >= (int)sizeof(frag) ? -1 : 0;
}

enum session_kind http_upgrade_kind(struct lws *wsi, char *name, size_t name_size)
{
    char path[256];
    request_path(wsi, path, sizeof(path));
    name[0] = '\0';
    if (strcmp(path, "/echo") == 0)
        return SESSION_ECHO;
    if (username_arg(wsi, name, name_size) < 0)
        name[0] = '\0';
    return SESSION_CHAT;
}

int http_confirm_upgrade(struct lws *wsi)
{
    char path[256], origin[512], host[512];
    request_path(wsi, path, sizeof(path));
    bool chat = strcmp(path, "/ws") == 0;
    if (!chat && strcmp(path, "/echo") != 0)
        return refuse(wsi, 404, "no WebSocket endpoint here: use /ws or /echo");
    if (sessions.shutting_down)
        return refuse(wsi, 503, "the gateway is shutting down");
    if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) < 0)
        origin[0] = '\0';
    if (lws_hdr_copy(wsi, host, sizeof(host), WSI_TOKEN_HOST) < 0)
        host[0] = '\0';
    if (!http_origin_allowed(origin, host, http_cfg->allowed_origins, http_cfg->n_allowed_origins))
        return refuse(wsi, 403, "origin not allowed");
    if (!chat)
        return 0;
    char name[64];
    int found = username_arg(wsi, name, sizeof(name));
    if (found < 0 || (found && !proto_valid_name(name, strlen(name), PROTO_NAME_MAX)))
        return refuse(wsi, 400,
                      "username must be 1 to 32 bytes of UTF-8 without control characters");
    return 0;
}
