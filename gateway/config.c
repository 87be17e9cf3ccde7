#include "config.h"

#include "proto.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind {
    K_LISTEN,
    K_REDIS,
    K_STRING,
    K_ID,
    K_SIZE,
    K_DURATION,
    K_UINT,
    K_ORIGINS,
    K_LOGLEVEL,
    K_BOOL
};

struct option_def {
    const char *flag;
    const char *env;
    enum kind kind;
    size_t offset; /* of the field in struct config */
    size_t size;   /* of the field, for strings */
    const char *help;
};

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)

static const struct option_def defs[] = {
    {"listen", "GATEWAY_LISTEN", K_LISTEN, FIELD(listen_host),
     "HOST:PORT to serve HTTP and WebSocket on (default 0.0.0.0:8080)"},
    {"redis", "GATEWAY_REDIS", K_REDIS, FIELD(redis_host),
     "redis://HOST:PORT; absent: single node with an in-process bus"},
    {"redis-prefix", "GATEWAY_REDIS_PREFIX", K_STRING, FIELD(redis_prefix),
     "prefix of Redis keys and channels (default chat:)"},
    {"id", "GATEWAY_ID", K_ID, FIELD(id),
     "gateway id, up to 64 bytes without control characters (default HOST:PORT)"},
    {"client-dir", "GATEWAY_CLIENT_DIR", K_STRING, FIELD(client_dir),
     "directory of the browser client served at /"},
    {"max-message-bytes", "GATEWAY_MAX_MESSAGE_BYTES", K_SIZE, FIELD(max_message_bytes),
     "largest frame a client may send (default 65536)"},
    {"ping-interval", "GATEWAY_PING_INTERVAL", K_DURATION, FIELD(ping_interval_ms),
     "keepalive ping period (default 54s)"},
    {"pong-timeout", "GATEWAY_PONG_TIMEOUT", K_DURATION, FIELD(pong_timeout_ms),
     "silence after which a client is dropped (default 75s)"},
    {"send-queue-limit", "GATEWAY_SEND_QUEUE_LIMIT", K_SIZE, FIELD(send_queue_limit),
     "bytes queued for one client before it is closed as slow (default 1m)"},
    {"allowed-origins", "GATEWAY_ALLOWED_ORIGINS", K_ORIGINS, FIELD(allowed_origins),
     "comma-separated origins allowed besides the same origin"},
    {"history", "GATEWAY_HISTORY", K_UINT, FIELD(history),
     "chat messages kept per room (default 100)"},
    {"shutdown-timeout", "GATEWAY_SHUTDOWN_TIMEOUT", K_DURATION, FIELD(shutdown_timeout_ms),
     "longest wait for clients to close on SIGTERM (default 5s)"},
    {"jwt-secret", "GATEWAY_JWT_SECRET", K_STRING, FIELD(jwt_secret),
     "require ?token= with an HS256 JWT signed with this secret"},
    {"tls-cert", "GATEWAY_TLS_CERT", K_STRING, FIELD(tls_cert),
     "PEM certificate: serve HTTPS and WSS (with --tls-key)"},
    {"tls-key", "GATEWAY_TLS_KEY", K_STRING, FIELD(tls_key), "PEM private key of --tls-cert"},
    {"rate-limit", "GATEWAY_RATE_LIMIT", K_UINT, FIELD(rate_limit),
     "frames per second one connection may send, 0 for no limit (default 20)"},
    {"rate-burst", "GATEWAY_RATE_BURST", K_UINT, FIELD(rate_burst),
     "frames a connection may send at once before the rate applies (default 120)"},
    {"rate-limit-grace", "GATEWAY_RATE_LIMIT_GRACE", K_UINT, FIELD(rate_limit_grace),
     "frames a refused connection may send before the retry_after_ms it was told has "
     "passed (frames it had in flight); one more closes it with 1008 (default 30)"},
    {"max-rooms", "GATEWAY_MAX_ROOMS", K_UINT, FIELD(max_rooms),
     "rooms one connection may be in (default 100)"},
    {"max-connections-per-ip", "GATEWAY_MAX_CONNECTIONS_PER_IP", K_UINT, FIELD(max_conns_per_ip),
     "open WebSocket connections per client address, 0 for no limit "
     "(default 0: behind a load balancer all share one address)"},
    {"handshake-timeout", "GATEWAY_HANDSHAKE_TIMEOUT", K_DURATION, FIELD(handshake_timeout_ms),
     "longest time for an HTTP request or WebSocket upgrade (default 10s)"},
    {"max-header-bytes", "GATEWAY_MAX_HEADER_BYTES", K_SIZE, FIELD(max_header_bytes),
     "largest HTTP request header block (default 4096, at most 65535)"},
    {"announce-connections", "GATEWAY_ANNOUNCE_CONNECTIONS", K_BOOL, FIELD(announce_connections),
     "on or off: tell every client \"NAME connected\"/\"disconnected\" (default on)"},
    {"dedupe-window", "GATEWAY_DEDUPE_WINDOW", K_DURATION, FIELD(dedupe_window_ms),
     "how long a chat with a cid is remembered, so that a resend is answered with the "
     "original instead of being delivered again; 0 for off (default 300s)"},
    {"io-uring", "GATEWAY_IO_URING", K_BOOL, FIELD(io_uring),
     "on or off: write each fan-out with one io_uring submission where the kernel allows "
     "(default on)"},
    {"log-level", "GATEWAY_LOG_LEVEL", K_LOGLEVEL, FIELD(log_level),
     "error, warn, info or debug (default info)"},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

/* Reads a run of decimal digits (at least one, at most 18) into *v and
 * returns what follows, or NULL. Stricter than strtol: no sign, no spaces. */
static const char *digits(const char *s, unsigned long long *v)
{
    const char *p = s;
    *v = 0;
    while (*p >= '0' && *p <= '9' && p - s < 18)
        *v = *v * 10 + (unsigned long long)(*p++ - '0');
    return p == s || (*p >= '0' && *p <= '9') ? NULL : p;
}

static bool parse_port(const char *s, int *port)
{
    unsigned long long v;
    const char *end = digits(s, &v);
    if (!end || *end || v > 65535)
        return false;
    *port = (int)v;
    return true;
}

bool config_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return false;
    const char *h = s;
    size_t hl = (size_t)(colon - s);
    if (h[0] == '[') { /* [::1]:8080 */
        if (hl < 3 || h[hl - 1] != ']')
            return false;
        h++, hl -= 2;
    }
    if (hl >= hostlen)
        return false;
    for (size_t i = 0; i < hl; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr(".-:_", h[i]))
            return false;
    memcpy(host, h, hl);
    host[hl] = '\0';
    return parse_port(colon + 1, port);
}

bool config_parse_redis_url(const char *s, char *host, size_t hostlen, int *port)
{
    static const char scheme[] = "redis://";
    if (strncmp(s, scheme, sizeof(scheme) - 1) != 0)
        return false;
    s += sizeof(scheme) - 1;
    char buf[300];
    size_t n = strcspn(s, "/");
    if (n >= sizeof(buf) || (s[n] == '/' && s[n + 1] != '\0'))
        return false; /* database numbers are not supported: pub/sub ignores them */
    memcpy(buf, s, n);
    buf[n] = '\0';
    bool has_port = buf[0] == '[' ? strstr(buf, "]:") != NULL : strchr(buf, ':') != NULL;
    if (!has_port) {
        if (n + sizeof(":6379") > sizeof(buf))
            return false;
        strcat(buf, ":6379");
    }
    return config_parse_hostport(buf, host, hostlen, port) && *port > 0;
}

bool config_parse_duration_ms(const char *s, unsigned *out)
{
    /* DIGITS[.DDD][ms|s]: no signs, exponents, hex or spaces. */
    unsigned long long whole, frac = 0, frac_scale = 1;
    const char *p = digits(s, &whole);
    if (!p)
        return false;
    if (*p == '.') {
        const char *q = digits(p + 1, &frac);
        if (!q || q - p > 4) /* at most 3 decimals: finer than 1 ms means nothing */
            return false;
        for (const char *d = p + 1; d < q; d++)
            frac_scale *= 10;
        p = q;
    }
    unsigned long long scale = 1000;
    if (strcmp(p, "ms") == 0)
        scale = 1;
    else if (*p && strcmp(p, "s") != 0)
        return false;
    if (whole > 86400000ULL)
        return false;
    unsigned long long ms = whole * scale + frac * scale / frac_scale;
    if (ms > 86400000ULL)
        return false;
    *out = (unsigned)ms;
    return true;
}

bool config_parse_size(const char *s, size_t *out)
{
    unsigned long long v;
    const char *end = digits(s, &v);
    if (!end)
        return false;
    unsigned long long scale = 1;
    if (*end == 'k' || *end == 'K')
        scale = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        scale = 1024 * 1024, end++;
    if (*end || v > (1ULL << 40) / scale)
        return false;
    *out = (size_t)(v * scale);
    return true;
}

static void free_origins(struct config *c)
{
    for (size_t i = 0; i < c->n_allowed_origins; i++)
        free(c->allowed_origins[i]);
    free(c->allowed_origins);
    c->allowed_origins = NULL;
    c->n_allowed_origins = 0;
}

static bool parse_origins(struct config *c, const char *s)
{
    free_origins(c);
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        while (n && isspace((unsigned char)*p))
            p++, n--;
        size_t m = n;
        while (m && isspace((unsigned char)p[m - 1]))
            m--;
        if (m) {
            char **na = realloc(c->allowed_origins, sizeof(char *) * (c->n_allowed_origins + 1));
            if (!na)
                return false;
            c->allowed_origins = na;
            if (!(na[c->n_allowed_origins] = strndup(p, m)))
                return false;
            c->n_allowed_origins++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return true;
}

static bool apply(struct config *c, const struct option_def *d, const char *v)
{
    char *field = (char *)c + d->offset;
    switch (d->kind) {
    case K_LISTEN:
        return config_parse_hostport(v, c->listen_host, sizeof(c->listen_host), &c->listen_port);
    case K_REDIS:
        if (!*v) {
            c->redis_enabled = false;
            return true;
        }
        c->redis_enabled = true;
        return config_parse_redis_url(v, c->redis_host, sizeof(c->redis_host), &c->redis_port);
    case K_STRING:
        if (!*v || strlen(v) >= d->size)
            return false;
        strcpy(field, v);
        return true;
    case K_ID:
        if (!proto_valid_name(v, strlen(v), GATEWAY_ID_MAX))
            return false;
        strcpy(field, v);
        return true;
    case K_SIZE:
        return config_parse_size(v, (size_t *)(void *)field) && *(size_t *)(void *)field > 0;
    case K_DURATION:
        return config_parse_duration_ms(v, (unsigned *)(void *)field);
    case K_UINT: {
        size_t n;
        if (!config_parse_size(v, &n) || strpbrk(v, "kKmM") || n > 1000000)
            return false;
        *(unsigned *)(void *)field = (unsigned)n;
        return true;
    }
    case K_ORIGINS:
        return parse_origins(c, v);
    case K_LOGLEVEL:
        return log_parse_level(v, (enum log_level *)(void *)field);
    case K_BOOL:
        if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)(void *)field = true;
        else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)(void *)field = false;
        else
            return false;
        return true;
    }
    return false;
}

static void set_defaults(struct config *c, const char *default_client_dir)
{
    memset(c, 0, sizeof(*c));
    strcpy(c->listen_host, "0.0.0.0");
    c->listen_port = 8080;
    strcpy(c->redis_prefix, "chat:");
    snprintf(c->client_dir, sizeof(c->client_dir), "%s", default_client_dir);
    c->max_message_bytes = 65536;
    c->ping_interval_ms = 54000;
    /* 21 s for a pong after the ping: behind a saturated load balancer in
     * a reconnect storm, 6 s dropped healthy clients. */
    c->pong_timeout_ms = 75000;
    c->send_queue_limit = 1024 * 1024;
    c->history = 100;
    c->shutdown_timeout_ms = 5000;
    c->announce_connections = true;
    c->dedupe_window_ms = 5 * 60 * 1000;
    c->io_uring = true;
    c->rate_limit = 20;
    c->rate_burst = 120;      /* a reconnecting client rejoins up to max_rooms rooms at once */
    c->rate_limit_grace = 30; /* more than a client that pipelines 20 frames has in flight */
    c->max_rooms = 100;
    c->handshake_timeout_ms = 10000;
    c->max_header_bytes = 4096;
    c->log_level = LOG_INFO;
}

enum config_result config_parse(struct config *c, int argc, char **argv,
                                const char *default_client_dir, char *err, size_t errlen)
{
    set_defaults(c, default_client_dir);
    for (size_t i = 0; i < NDEFS; i++) {
        const char *v = getenv(defs[i].env);
        if (v && !apply(c, &defs[i], v)) {
            snprintf(err, errlen, "invalid value for %s (--%s): '%s'", defs[i].env, defs[i].flag,
                     v);
            return CONFIG_ERROR;
        }
    }

    struct option longopts[NDEFS + 2];
    for (size_t i = 0; i < NDEFS; i++)
        longopts[i] = (struct option){defs[i].flag, required_argument, NULL, (int)i};
    longopts[NDEFS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[NDEFS + 1] = (struct option){0};
    opterr = 0;
    optind = 0; /* 0, not 1: also resets getopt's state from an earlier parse */
    int opt;
    while ((opt = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (opt == 'h')
            return CONFIG_HELP;
        if (opt == '?' || opt == ':') {
            const char *arg = argv[optind - 1];
            snprintf(err, errlen, "%s: %s", opt == ':' ? "missing value for" : "unknown option",
                     arg ? arg : "?");
            return CONFIG_ERROR;
        }
        const struct option_def *d = &defs[opt];
        if (!apply(c, d, optarg)) {
            snprintf(err, errlen, "invalid value for --%s: '%s' (%s)", d->flag, optarg, d->help);
            return CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: '%s'", argv[optind]);
        return CONFIG_ERROR;
    }
    if (c->pong_timeout_ms <= c->ping_interval_ms) {
        snprintf(err, errlen,
                 "invalid value for --pong-timeout: must be longer than "
                 "--ping-interval");
        return CONFIG_ERROR;
    }
    if (c->ping_interval_ms < 100) {
        snprintf(err, errlen, "invalid value for --ping-interval: at least 100ms");
        return CONFIG_ERROR;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, errlen, "invalid value for --%s: --tls-cert and --tls-key go together",
                 c->tls_cert[0] ? "tls-key" : "tls-cert");
        return CONFIG_ERROR;
    }
    const char *unreadable = c->tls_cert[0] && access(c->tls_cert, R_OK) != 0 ? "tls-cert"
                             : c->tls_key[0] && access(c->tls_key, R_OK) != 0 ? "tls-key"
                                                                              : NULL;
    if (unreadable) {
        snprintf(err, errlen, "invalid value for --%s: cannot read %s", unreadable,
                 strcmp(unreadable, "tls-cert") == 0 ? c->tls_cert : c->tls_key);
        return CONFIG_ERROR;
    }
    if (c->max_header_bytes < 512 || c->max_header_bytes > 65535) {
        snprintf(err, errlen, "invalid value for --max-header-bytes: 512 to 65535");
        return CONFIG_ERROR;
    }
    if (c->handshake_timeout_ms < 1000) {
        snprintf(err, errlen, "invalid value for --handshake-timeout: at least 1s");
        return CONFIG_ERROR;
    }
    if (c->rate_limit && c->rate_burst == 0) {
        snprintf(err, errlen, "invalid value for --rate-burst: at least 1 with a rate limit");
        return CONFIG_ERROR;
    }
    if (!c->id[0])
        snprintf(c->id, sizeof(c->id), "%.50s:%d", c->listen_host, c->listen_port);
    return CONFIG_OK;
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: gateway [options]\n\nA WebSocket chat gateway. Every option has an "
                 "environment twin; the option wins.\nDurations take ms or s (54s, 500ms), sizes "
                 "k or m (64k, 1m).\n\n");
    for (size_t i = 0; i < NDEFS; i++)
        fprintf(out, "  --%-20s %-28s %s\n", defs[i].flag, defs[i].env, defs[i].help);
    fprintf(out, "  --%-20s %-28s %s\n", "help", "", "print this and exit");
}

void config_free(struct config *c)
{
    free_origins(c);
}
