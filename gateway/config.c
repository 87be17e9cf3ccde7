#include "config.h"

#include "proto.h"

#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KIB 1024ULL
#define MIB (1024 * KIB)
#define GIB (1024 * MIB)
#define SEC 1000ULL /* durations are in ms */

#define FIELD(f) offsetof(struct config, f), sizeof(((struct config *)0)->f)
#define NONE 0, 0 /* no range: not a numeric kind */

/* The reasons for the ranges are next to each row. The help text gets
 * "(default D; MIN to MAX)" appended by config_usage. */
const struct config_option config_options[] = {
    {"listen", "GATEWAY_LISTEN", CONFIG_LISTEN, FIELD(listen_host), "0.0.0.0:8080", NONE,
     "HOST:PORT to serve HTTP and WebSocket on"},
    {"redis", "GATEWAY_REDIS", CONFIG_REDIS, FIELD(redis_host), NULL, NONE,
     "redis://HOST:PORT; absent: single node with an in-process bus"},
    {"redis-prefix", "GATEWAY_REDIS_PREFIX", CONFIG_STRING, FIELD(redis_prefix), "chat:", NONE,
     "prefix of Redis keys and channels"},
    {"id", "GATEWAY_ID", CONFIG_ID, FIELD(id), NULL, NONE,
     "gateway id, up to 64 bytes without control characters (default HOST:PORT of --listen)"},
    /* Its default is the build's client/ directory, which only main knows. */
    {"client-dir", "GATEWAY_CLIENT_DIR", CONFIG_STRING, FIELD(client_dir), NULL, NONE,
     "directory of the browser client served at /"},
    /* At least 256: every request but a chat fits (the largest, a join of
     * a 64-byte room with the longest since id, is 143 bytes). At most
     * 16m: a message is reassembled whole per connection, kept in its
     * room's history and sent whole to every member; chat needs far less. */
    {"max-message-bytes", "GATEWAY_MAX_MESSAGE_BYTES", CONFIG_SIZE, FIELD(max_message_bytes),
     "65536", 256, 16 * MIB, "largest message a client may send; 1009 above"},
    /* The keepalive wheel ticks every 100 ms: no shorter period can be
     * kept. It holds a slot per tick of the longest of ping and pong (16
     * bytes each), and proxies drop idle connections long before an hour. */
    {"ping-interval", "GATEWAY_PING_INTERVAL", CONFIG_DURATION, FIELD(ping_interval_ms), "54s", 100,
     3600 * SEC, "keepalive ping period"},
    /* Longer than --ping-interval (checked after parsing): at least two of
     * the wheel's ticks. */
    {"pong-timeout", "GATEWAY_PONG_TIMEOUT", CONFIG_DURATION, FIELD(pong_timeout_ms), "75s", 200,
     7200 * SEC, "silence after which a client is dropped; longer than --ping-interval"},
    /* At most 1g: queue byte counts are to be kept in 32 bits. At least
     * twice --max-message-bytes (checked after parsing). */
    {"send-queue-limit", "GATEWAY_SEND_QUEUE_LIMIT", CONFIG_SIZE, FIELD(send_queue_limit), "1m",
     KIB, GIB,
     "bytes queued for one client before it is closed as slow (1008); at least twice "
     "--max-message-bytes"},
    {"allowed-origins", "GATEWAY_ALLOWED_ORIGINS", CONFIG_ORIGINS, FIELD(allowed_origins), NULL,
     NONE, "comma-separated origins allowed besides the same origin (*: any)"},
    /* A join sends the whole history in one frame. */
    {"history", "GATEWAY_HISTORY", CONFIG_UINT, FIELD(history), "100", 0, 10000,
     "chat messages kept per room"},
    /* Orchestrators kill a process that takes minutes to stop anyway. */
    {"shutdown-timeout", "GATEWAY_SHUTDOWN_TIMEOUT", CONFIG_DURATION, FIELD(shutdown_timeout_ms),
     "5s", 0, 600 * SEC, "longest wait for clients to close on SIGTERM"},
    {"jwt-secret", "GATEWAY_JWT_SECRET", CONFIG_STRING, FIELD(jwt_secret), NULL, NONE,
     "require ?token= with an HS256 JWT signed with this secret"},
    {"tls-cert", "GATEWAY_TLS_CERT", CONFIG_STRING, FIELD(tls_cert), NULL, NONE,
     "PEM certificate: serve HTTPS and WSS (with --tls-key)"},
    {"tls-key", "GATEWAY_TLS_KEY", CONFIG_STRING, FIELD(tls_key), NULL, NONE,
     "PEM private key of --tls-cert"},
    /* The token bucket keeps burst x 1000 milli-tokens in 32 bits: a
     * million is far from that and far above any client's need. */
    {"rate-limit", "GATEWAY_RATE_LIMIT", CONFIG_UINT, FIELD(rate_limit), "20", 0, 1000000,
     "frames per second one connection may send, 0 for no limit"},
    /* A reconnecting client rejoins up to --max-rooms rooms at once. */
    {"rate-burst", "GATEWAY_RATE_BURST", CONFIG_UINT, FIELD(rate_burst), "120", 0, 1000000,
     "frames a connection may send at once before the rate applies (at least 1 with a rate)"},
    /* More than a client that pipelines 20 frames has in flight. */
    {"rate-limit-grace", "GATEWAY_RATE_LIMIT_GRACE", CONFIG_UINT, FIELD(rate_limit_grace), "30", 0,
     1000000,
     "frames a refused connection may send before the retry_after_ms it was told has passed "
     "(frames it had in flight); one more closes it with 1008"},
    /* Each room costs a rejoin frame on every reconnect. */
    {"max-rooms", "GATEWAY_MAX_ROOMS", CONFIG_UINT, FIELD(max_rooms), "100", 0, 10000,
     "rooms one connection may be in, 0 for global chat only"},
    {"max-connections-per-ip", "GATEWAY_MAX_CONNECTIONS_PER_IP", CONFIG_UINT,
     FIELD(max_conns_per_ip), "0", 0, 1000000,
     "open WebSocket connections per client address, 0 for no limit (behind a load balancer all "
     "share one address)"},
    /* Given to libwebsockets in whole seconds; longer lets idle half-open
     * requests hold sockets. */
    {"handshake-timeout", "GATEWAY_HANDSHAKE_TIMEOUT", CONFIG_DURATION, FIELD(handshake_timeout_ms),
     "10s", SEC, 300 * SEC, "longest time for an HTTP request or WebSocket upgrade"},
    /* libwebsockets keeps it in 16 bits; below 512 browsers' own headers
     * do not fit. */
    {"max-header-bytes", "GATEWAY_MAX_HEADER_BYTES", CONFIG_SIZE, FIELD(max_header_bytes), "4096",
     512, 65535, "largest HTTP request header block"},
    {"announce-connections", "GATEWAY_ANNOUNCE_CONNECTIONS", CONFIG_BOOL,
     FIELD(announce_connections), "on", NONE,
     "on or off: tell every client \"NAME connected\"/\"disconnected\""},
    /* A resend follows a reconnect, within minutes; a longer window only
     * keeps keys in Redis longer. */
    {"dedupe-window", "GATEWAY_DEDUPE_WINDOW", CONFIG_DURATION, FIELD(dedupe_window_ms), "300s", 0,
     3600 * SEC,
     "how long a chat with a cid is remembered, so that a resend is answered with the "
     "original instead of being delivered again; 0 for off"},
    {"io-uring", "GATEWAY_IO_URING", CONFIG_BOOL, FIELD(io_uring), "on", NONE,
     "on or off: write each fan-out with one io_uring submission where the kernel allows"},
    {"log-level", "GATEWAY_LOG_LEVEL", CONFIG_LOGLEVEL, FIELD(log_level), "info", NONE,
     "error, warn, info or debug"},
};
const size_t config_n_options = sizeof(config_options) / sizeof(config_options[0]);
#define NDEFS (sizeof(config_options) / sizeof(config_options[0]))

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
        scale = KIB, end++;
    else if (*end == 'm' || *end == 'M')
        scale = MIB, end++;
    else if (*end == 'g' || *end == 'G')
        scale = GIB, end++;
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

unsigned long long config_number(const struct config *c, const struct config_option *o)
{
    const void *field = (const char *)c + o->offset;
    return o->kind == CONFIG_SIZE ? *(const size_t *)field : *(const unsigned *)field;
}

/* A value as the command line would take it: 64k, 1m, 54s, 500ms, 20. */
static void format_number(enum config_kind kind, unsigned long long v, char *buf, size_t len)
{
    if (kind == CONFIG_SIZE && v && v % GIB == 0)
        snprintf(buf, len, "%llug", v / GIB);
    else if (kind == CONFIG_SIZE && v && v % MIB == 0)
        snprintf(buf, len, "%llum", v / MIB);
    else if (kind == CONFIG_SIZE && v && v % KIB == 0)
        snprintf(buf, len, "%lluk", v / KIB);
    else if (kind == CONFIG_DURATION && v && v % SEC == 0)
        snprintf(buf, len, "%llus", v / SEC);
    else if (kind == CONFIG_DURATION && v)
        snprintf(buf, len, "%llums", v);
    else
        snprintf(buf, len, "%llu", v);
}

void config_format_range(const struct config_option *d, char *buf, size_t len)
{
    char lo[24], hi[24];
    format_number(d->kind, d->min, lo, sizeof(lo));
    format_number(d->kind, d->max, hi, sizeof(hi));
    snprintf(buf, len, "%s to %s", lo, hi);
}

static bool parse_number(enum config_kind kind, const char *v, unsigned long long *n)
{
    size_t size;
    unsigned ms;
    const char *end;
    switch (kind) {
    case CONFIG_SIZE:
        return config_parse_size(v, &size) && (*n = size, true);
    case CONFIG_DURATION:
        return config_parse_duration_ms(v, &ms) && (*n = ms, true);
    default: /* counts: no suffixes */
        return (end = digits(v, n)) && !*end;
    }
}

enum apply_result { APPLY_OK, APPLY_BAD, APPLY_OUT_OF_RANGE };

static enum apply_result apply(struct config *c, const struct config_option *d, const char *v)
{
    char *field = (char *)c + d->offset;
    bool ok = false;
    switch (d->kind) {
    case CONFIG_LISTEN:
        ok = config_parse_hostport(v, c->listen_host, sizeof(c->listen_host), &c->listen_port);
        break;
    case CONFIG_REDIS:
        c->redis_enabled = *v != '\0';
        ok = !*v || config_parse_redis_url(v, c->redis_host, sizeof(c->redis_host), &c->redis_port);
        break;
    case CONFIG_STRING:
        if ((ok = *v && strlen(v) < d->size))
            strcpy(field, v);
        break;
    case CONFIG_ID:
        if ((ok = proto_valid_name(v, strlen(v), GATEWAY_ID_MAX)))
            strcpy(field, v);
        break;
    case CONFIG_SIZE:
    case CONFIG_DURATION:
    case CONFIG_UINT: {
        unsigned long long n;
        if (!parse_number(d->kind, v, &n))
            return APPLY_BAD;
        if (n < d->min || n > d->max)
            return APPLY_OUT_OF_RANGE;
        if (d->kind == CONFIG_SIZE)
            *(size_t *)(void *)field = (size_t)n;
        else
            *(unsigned *)(void *)field = (unsigned)n;
        return APPLY_OK;
    }
    case CONFIG_ORIGINS:
        ok = parse_origins(c, v);
        break;
    case CONFIG_LOGLEVEL:
        ok = log_parse_level(v, (enum log_level *)(void *)field);
        break;
    case CONFIG_BOOL:
        if (strcmp(v, "on") == 0 || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
            *(bool *)(void *)field = ok = true;
        else if (strcmp(v, "off") == 0 || strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
            *(bool *)(void *)field = false, ok = true;
        break;
    }
    return ok ? APPLY_OK : APPLY_BAD;
}

/* "invalid value for --flag: 'v' (what is allowed)"; name is "--flag", or
 * "GATEWAY_FLAG (--flag)" for a value from the environment. */
static void value_error(char *err, size_t errlen, const char *name, const struct config_option *d,
                        const char *v, enum apply_result r)
{
    static const char *const syntax[] = {
        [CONFIG_SIZE] = "bytes, or with k, m or g: ",
        [CONFIG_DURATION] = "ms or s: ",
        [CONFIG_UINT] = "a whole number: ",
    };
    char allowed[320];
    if (config_numeric(d)) {
        char range[56];
        config_format_range(d, range, sizeof(range));
        snprintf(allowed, sizeof(allowed), "%s%s", r == APPLY_BAD ? syntax[d->kind] : "", range);
    } else {
        snprintf(allowed, sizeof(allowed), "%s", d->help);
    }
    snprintf(err, errlen, "invalid value for %s: '%s' (%s)", name, v, allowed);
}

/* Rules between settings, checked once every source was read. Returns
 * false with err set when one is broken. */
static bool check_together(const struct config *c, char *err, size_t errlen)
{
    char v[32], other[32];
    if (c->pong_timeout_ms <= c->ping_interval_ms) {
        /* A client that answers every ping would be dropped between two. */
        format_number(CONFIG_DURATION, c->pong_timeout_ms, v, sizeof(v));
        format_number(CONFIG_DURATION, c->ping_interval_ms, other, sizeof(other));
        snprintf(err, errlen,
                 "invalid value for --pong-timeout: '%s' (must be longer than --ping-interval, "
                 "%s)",
                 v, other);
        return false;
    }
    if (c->send_queue_limit / 2 < c->max_message_bytes) {
        /* A join holds the room's frames, and a busy connection its
         * requests, under this limit: a largest chat, with the envelope
         * the gateway adds, must fit with room to spare. */
        format_number(CONFIG_SIZE, c->send_queue_limit, v, sizeof(v));
        format_number(CONFIG_SIZE, 2 * (unsigned long long)c->max_message_bytes, other,
                      sizeof(other));
        snprintf(err, errlen,
                 "invalid value for --send-queue-limit: '%s' (at least twice "
                 "--max-message-bytes: %s)",
                 v, other);
        return false;
    }
    if (c->rate_limit && c->rate_burst == 0) {
        snprintf(err, errlen, "invalid value for --rate-burst: '0' (at least 1 with a rate limit)");
        return false;
    }
    if (!c->tls_cert[0] != !c->tls_key[0]) {
        snprintf(err, errlen, "invalid value for --%s: --tls-cert and --tls-key go together",
                 c->tls_cert[0] ? "tls-key" : "tls-cert");
        return false;
    }
    const char *unreadable = c->tls_cert[0] && access(c->tls_cert, R_OK) != 0 ? "tls-cert"
                             : c->tls_key[0] && access(c->tls_key, R_OK) != 0 ? "tls-key"
                                                                              : NULL;
    if (unreadable) {
        snprintf(err, errlen, "invalid value for --%s: cannot read %s", unreadable,
                 strcmp(unreadable, "tls-cert") == 0 ? c->tls_cert : c->tls_key);
        return false;
    }
    return true;
}

enum config_result config_parse(struct config *c, int argc, char **argv,
                                const char *default_client_dir, char *err, size_t errlen)
{
    char name[96];
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < NDEFS; i++) {
        const struct config_option *d = &config_options[i];
        enum apply_result r = d->dflt ? apply(c, d, d->dflt) : APPLY_OK;
        if (r != APPLY_OK) { /* a mistake in the table, which the unit tests catch */
            snprintf(name, sizeof(name), "the default of --%s", d->flag);
            value_error(err, errlen, name, d, d->dflt, r);
            return CONFIG_ERROR;
        }
    }
    snprintf(c->client_dir, sizeof(c->client_dir), "%s", default_client_dir);

    for (size_t i = 0; i < NDEFS; i++) {
        const struct config_option *d = &config_options[i];
        const char *v = getenv(d->env);
        enum apply_result r = v ? apply(c, d, v) : APPLY_OK;
        if (r != APPLY_OK) {
            snprintf(name, sizeof(name), "%s (--%s)", d->env, d->flag);
            value_error(err, errlen, name, d, v, r);
            return CONFIG_ERROR;
        }
    }

    struct option longopts[NDEFS + 2];
    for (size_t i = 0; i < NDEFS; i++)
        longopts[i] = (struct option){config_options[i].flag, required_argument, NULL, (int)i};
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
        const struct config_option *d = &config_options[opt];
        enum apply_result r = apply(c, d, optarg);
        if (r != APPLY_OK) {
            snprintf(name, sizeof(name), "--%s", d->flag);
            value_error(err, errlen, name, d, optarg, r);
            return CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: '%s'", argv[optind]);
        return CONFIG_ERROR;
    }
    if (!check_together(c, err, errlen))
        return CONFIG_ERROR;
    if (!c->id[0])
        snprintf(c->id, sizeof(c->id), "%.50s:%d", c->listen_host, c->listen_port);
    return CONFIG_OK;
}

void config_usage(FILE *out)
{
    fprintf(out, "usage: gateway [options]\n\nA WebSocket chat gateway. Every option has an "
                 "environment twin; the option wins.\nDurations take ms or s (54s, 500ms), sizes "
                 "k, m or g (64k, 1m).\n\n");
    for (size_t i = 0; i < NDEFS; i++) {
        const struct config_option *d = &config_options[i];
        char range[56] = "", tail[128] = "";
        if (config_numeric(d))
            config_format_range(d, range, sizeof(range));
        if (d->dflt || range[0])
            snprintf(tail, sizeof(tail), " (%s%s%s%s)", d->dflt ? "default " : "",
                     d->dflt ? d->dflt : "", d->dflt && range[0] ? "; " : "", range);
        fprintf(out, "  --%-20s %-28s %s%s\n", d->flag, d->env, d->help, tail);
    }
    fprintf(out, "  --%-20s %-28s %s\n", "help", "", "print this and exit");
}

void config_free(struct config *c)
{
    free_origins(c);
}
