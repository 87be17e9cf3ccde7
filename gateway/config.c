#include "config.h"

#include "proto.h"

#include <ctype.h>
#include <errno.h>
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
/* The longest secret a file may hold: the Redis password's 511 bytes. */
#define CONFIG_SECRET_FILE_MAX 512

/* The reasons for the ranges are next to each row. The help text gets
 * "(default D; MIN to MAX)" appended by config_usage. */
const struct config_option config_options[] = {
    {"listen", "GATEWAY_LISTEN", CONFIG_LISTEN, FIELD(listen_host), "0.0.0.0:8080", NONE,
     "HOST:PORT to serve HTTP and WebSocket on"},
    {"redis", "GATEWAY_REDIS", CONFIG_REDIS, FIELD(redis_host), NULL, NONE,
     "redis[s]://[USER[:PASSWORD]@]HOST[:PORT][/DB], or "
     "redis[s]+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB] to follow "
     "the primary the sentinels name, or redis[s]+cluster://[USER[:PASSWORD]@]HOST[:PORT][,HOST"
     "[:PORT]...] for Redis Cluster; USER and PASSWORD (the data nodes') percent-encoded, "
     "rediss for TLS; absent: single node with an in-process bus"},
    /* A file, or GATEWAY_REDIS_PASSWORD, keeps the secret out of the
     * process list, where a URL with a password shows. Two sources would
     * leave the reader guessing which one is used: that is an error. */
    {"redis-password-file", "GATEWAY_REDIS_PASSWORD_FILE", CONFIG_STRING,
     FIELD(redis_password_file), NULL, NONE,
     "file holding the Redis password (a trailing newline is dropped); the password comes from "
     "one of the URL, this file or " CONFIG_REDIS_PASSWORD_ENV},
    /* The sentinels' own password (their requirepass), which is not the
     * data nodes': a file, or GATEWAY_REDIS_SENTINEL_PASSWORD. */
    {"redis-sentinel-password-file", "GATEWAY_REDIS_SENTINEL_PASSWORD_FILE", CONFIG_STRING,
     FIELD(redis_sentinel_password_file), NULL, NONE,
     "file holding the sentinels' own password (redis+sentinel:// only; a trailing newline is "
     "dropped); or " CONFIG_REDIS_SENTINEL_PASSWORD_ENV},
    /* The TLS files are checked for readability at start-up, so that a
     * typo is an exit 2 rather than a reconnect loop. */
    {"redis-tls-ca", "GATEWAY_REDIS_TLS_CA", CONFIG_STRING, FIELD(redis_tls_ca), NULL, NONE,
     "PEM file of the CAs that sign Redis's certificate (rediss:// only; default: the system's "
     "CA store)"},
    {"redis-tls-cert", "GATEWAY_REDIS_TLS_CERT", CONFIG_STRING, FIELD(redis_tls_cert), NULL, NONE,
     "PEM client certificate for Redis's mutual TLS (with --redis-tls-key)"},
    {"redis-tls-key", "GATEWAY_REDIS_TLS_KEY", CONFIG_STRING, FIELD(redis_tls_key), NULL, NONE,
     "PEM private key of --redis-tls-cert"},
    {"redis-tls-server-name", "GATEWAY_REDIS_TLS_SERVER_NAME", CONFIG_STRING,
     FIELD(redis_tls_server_name), NULL, NONE,
     "name Redis's certificate must hold, also sent as SNI (default: the host of --redis)"},
    /* Off by default and logged as a warning at start and on every connect:
     * without the check anyone on the path can read and forge the traffic. */
    {"redis-tls-insecure-skip-verify", "GATEWAY_REDIS_TLS_INSECURE_SKIP_VERIFY", CONFIG_BOOL,
     FIELD(redis_tls_insecure), "off", NONE,
     "on or off: do not verify Redis's certificate or name (testing only: anyone on the path "
     "can read and change the traffic)"},
    {"redis-prefix", "GATEWAY_REDIS_PREFIX", CONFIG_STRING, FIELD(redis_prefix), "chat:", NONE,
     "prefix of Redis keys and channels"},
    /* Below 100 ms the canaries are traffic of their own; above a minute a
     * subscriber that stopped delivering goes unnoticed too long. */
    {"redis-canary-interval", "GATEWAY_REDIS_CANARY_INTERVAL", CONFIG_DURATION,
     FIELD(redis_canary_interval_ms), "5s", 100, 60 * SEC,
     "how often the gateway publishes a canary to a channel it subscribes to; one not back "
     "within as long restarts the link to Redis (resubscribe and replay)"},
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
    /* The server API: off unless given, on a port of its own so that it
     * stays off the public load balancer. */
    {"api-listen", "GATEWAY_API_LISTEN", CONFIG_STRING, FIELD(api_listen), NULL, NONE,
     "HOST:PORT of the server API for backends (with --api-key-file); absent: no API"},
    {"api-key-file", "GATEWAY_API_KEY_FILE", CONFIG_STRING, FIELD(api_key_file), NULL, NONE,
     "file holding the server API's bearer key, 16 to 255 bytes (a trailing newline is dropped)"},
    /* Each connection is at most one request in flight: this bounds what
     * backends can make the one event loop do for them at once. */
    {"api-max-connections", "GATEWAY_API_MAX_CONNECTIONS", CONFIG_UINT, FIELD(api_max_connections),
     "64", 1, 10000, "open server API connections; more wait in the listen queue"},
    /* A publish carries one chat message: the chat limit and some JSON. */
    {"api-max-body-bytes", "GATEWAY_API_MAX_BODY_BYTES", CONFIG_SIZE, FIELD(api_max_body_bytes),
     "128k", 1 * KIB, 32 * MIB, "largest server API request body (413 above)"},
    /* A backend that reads with a consumer group keeps its place in the
     * stream; the cap bounds Redis's memory when none reads (about 200
     * bytes an event: the default holds a day of 10 messages a second). */
    {"events-stream", "GATEWAY_EVENTS_STREAM", CONFIG_BOOL, FIELD(events_stream), "off", NONE,
     "on or off: write chat, join, leave, connect and disconnect events to the Redis stream "
     "<prefix>events for backends (needs --redis, not redis+cluster://)"},
    {"events-maxlen", "GATEWAY_EVENTS_MAXLEN", CONFIG_UINT, FIELD(events_maxlen), "1000000", 1000,
     100000000, "entries the events stream keeps, about (older ones are trimmed)"},
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

/* What a URL given before (the twin's, then the flag's) set. */
static void forget_redis_login(struct config *c)
{
    explicit_bzero(c->redis_password, sizeof(c->redis_password));
    c->redis_user[0] = '\0';
    c->redis_password_from = CONFIG_SECRET_NONE;
    c->redis_db = 0;
    c->redis_tls = false;
    c->redis_cluster = false;
    c->redis_seeds[0] = '\0';
    c->redis_sentinel = false;
    c->n_redis_sentinels = 0;
    c->redis_master_name[0] = '\0';
    c->redis_host[0] = '\0';
    c->redis_port = 0;
}

/* USER or PASSWORD of a Redis URL. */
enum url_part { URL_USER, URL_PASSWORD };

/* Percent-decodes s[0..n) into out (outlen bytes with the NUL). */
static bool percent_decode(const char *s, size_t n, char *out, size_t outlen, enum url_part part,
                           const char **why)
{
    static const char *const bad_escape[] = {
        "a '%' not followed by two hex digits in the user",
        "a '%' not followed by two hex digits in the password"};
    static const char *const nul[] = {"%00 in the user", "%00 in the password"};
    static const char *const too_long[] = {"user longer than 255 bytes",
                                           "password longer than 511 bytes"};
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '%') {
            if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
                !isxdigit((unsigned char)s[i + 2])) {
                *why = bad_escape[part];
                return false;
            }
            char hex[3] = {s[i + 1], s[i + 2], '\0'};
            ch = (unsigned char)strtoul(hex, NULL, 16);
            i += 2;
            if (!ch) { /* the secret is kept as a C string */
                *why = nul[part];
                return false;
            }
        }
        if (o + 1 >= outlen) {
            *why = too_long[part];
            return false;
        }
        out[o++] = (char)ch;
    }
    out[o] = '\0';
    return true;
}

/* USER[:PASSWORD], the part before the '@'. */
static bool parse_userinfo(const char *s, size_t n, struct config *c, const char **why)
{
    const char *colon = memchr(s, ':', n);
    size_t ulen = colon ? (size_t)(colon - s) : n;
    if (!colon && !ulen) {
        *why = "nothing before the '@' (USER[:PASSWORD]@)";
        return false;
    }
    if (colon && colon + 1 == s + n) {
        *why = "an empty password after the ':'";
        return false;
    }
    if (!percent_decode(s, ulen, c->redis_user, sizeof(c->redis_user), URL_USER, why))
        return false;
    if (colon) {
        if (!percent_decode(colon + 1, n - ulen - 1, c->redis_password, sizeof(c->redis_password),
                            URL_PASSWORD, why))
            return false;
        c->redis_password_from = CONFIG_SECRET_URL;
    }
    return true;
}

/* The database after a '/' ("" or "/" alone: 0). */
static bool parse_db(const char *s, struct config *c, const char **why)
{
    if (*s != '/' || !s[1])
        return true;
    unsigned long long db;
    const char *end = digits(s + 1, &db);
    if (!end || *end || db > CONFIG_REDIS_DB_MAX) {
        *why = "the database is not a number from 0 to 2147483647";
        return false;
    }
    c->redis_db = (unsigned)db;
    return true;
}

/* HOST[:PORT], the n bytes at s, into host (256 bytes) and port. */
static bool parse_address(const char *s, size_t n, int default_port, char *host, int *port,
                          const char **why)
{
    char buf[300];
    if (!n) {
        *why = "no host";
        return false;
    }
    if (n + sizeof(":65535") > sizeof(buf)) {
        *why = "a host longer than 255 bytes";
        return false;
    }
    memcpy(buf, s, n);
    buf[n] = '\0';
    const char *colon = buf[0] == '[' ? strstr(buf, "]:") : strrchr(buf, ':');
    if (colon && buf[0] == '[')
        colon++;
    if (!colon)
        snprintf(buf + n, sizeof(buf) - n, ":%d", default_port);
    else if (!parse_port(colon + 1, port) || *port == 0) {
        *why = "the port is not a number from 1 to 65535";
        return false;
    }
    if (!config_parse_hostport(buf, host, 256, port)) {
        *why = "a bad host (letters, digits, '.', '-', '_', or [IPv6])";
        return false;
    }
    return true;
}

/* HOST[:PORT][/DB], the part after any '@'. */
static bool parse_hostpart(const char *s, struct config *c, const char **why)
{
    size_t n = strcspn(s, "/");
    return parse_db(s + n, c, why) && parse_address(s, n, 6379, c->redis_host, &c->redis_port, why);
}

/* A master name as Sentinel's configuration and its +switch-master
 * messages (space-separated) can carry it, and as a log line shows it. */
static bool valid_master_name(const char *s, size_t n)
{
    if (!n || n > CONFIG_MASTER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr(".-_", s[i]))
            return false;
    return true;
}

/* HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB], the part after any '@' of a
 * redis[s]+sentinel:// URL. */
static bool parse_sentinel_part(const char *s, struct config *c, const char **why)
{
    size_t list = strcspn(s, "/");
    for (const char *p = s, *end = s + list; p <= end;) {
        size_t n = strcspn(p, ",/");
        if (!n) {
            *why = list ? "an empty sentinel address (HOST[:PORT],HOST[:PORT]...)"
                        : "no sentinel (redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER)";
            return false;
        }
        if (c->n_redis_sentinels == CONFIG_SENTINELS_MAX) {
            *why = "more than 16 sentinels";
            return false;
        }
        struct config_address *a = &c->redis_sentinels[c->n_redis_sentinels];
        if (!parse_address(p, n, CONFIG_SENTINEL_PORT, a->host, &a->port, why))
            return false;
        for (unsigned i = 0; i < c->n_redis_sentinels; i++) {
            if (strcmp(c->redis_sentinels[i].host, a->host) == 0 &&
                c->redis_sentinels[i].port == a->port) {
                *why = "a sentinel listed twice";
                return false;
            }
        }
        c->n_redis_sentinels++;
        p += n + 1;
    }
    if (s[list] != '/' || !s[list + 1]) {
        *why = "no master name (redis+sentinel://HOST[:PORT][,HOST[:PORT]...]/MASTER)";
        return false;
    }
    const char *name = s + list + 1;
    size_t n = strcspn(name, "/");
    if (!valid_master_name(name, n)) {
        *why = "the master name is not 1 to 128 letters, digits, '.', '-' or '_'";
        return false;
    }
    memcpy(c->redis_master_name, name, n);
    c->redis_master_name[n] = '\0';
    return parse_db(name + n, c, why);
}

/* HOST[:PORT][,HOST[:PORT]...] of redis[s]+cluster://: the seeds, into
 * redis_seeds, and the first into redis_host and redis_port. */
static bool parse_seeds(const char *s, struct config *c, const char **why)
{
    if (strchr(s, '/')) {
        *why = "a database: Redis Cluster has database 0 only";
        return false;
    }
    size_t at = 0;
    for (const char *p = s;; p++) {
        char host[256];
        int port = 6379;
        size_t n = strcspn(p, ",");
        if (!parse_address(p, n, 6379, host, &port, why))
            return false;
        if (p == s) /* the first seed is the one named in logs and, with TLS, checked */
            memcpy(c->redis_host, host, sizeof(host)), c->redis_port = port;
        bool v6 = strchr(host, ':');
        int w = snprintf(c->redis_seeds + at, sizeof(c->redis_seeds) - at, "%s%s%s%s:%d",
                         at ? "," : "", v6 ? "[" : "", host, v6 ? "]" : "", port);
        if (w < 0 || (size_t)w >= sizeof(c->redis_seeds) - at) {
            *why = "more seeds than 1023 bytes hold";
            return false;
        }
        at += (size_t)w;
        p += n;
        if (!*p)
            return true;
    }
}

bool config_parse_redis_url(const char *s, struct config *c, const char **why)
{
    static const struct {
        const char *scheme;
        bool tls, sentinel, cluster;
    } schemes[] = {
        {"redis://", false, false, false},         {"rediss://", true, false, false},
        {"redis+sentinel://", false, true, false}, {"rediss+sentinel://", true, true, false},
        {"redis+cluster://", false, false, true},  {"rediss+cluster://", true, false, true}};
    forget_redis_login(c);
    size_t i = 0, n_schemes = sizeof(schemes) / sizeof(schemes[0]);
    while (i < n_schemes && strncmp(s, schemes[i].scheme, strlen(schemes[i].scheme)) != 0)
        i++;
    if (i == n_schemes) {
        *why = "not redis[s]://[USER[:PASSWORD]@]HOST[:PORT][/DB], "
               "redis[s]+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB] "
               "nor redis[s]+cluster://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]";
        return false;
    }
    s += strlen(schemes[i].scheme);
    c->redis_tls = schemes[i].tls;
    c->redis_sentinel = schemes[i].sentinel;
    c->redis_cluster = schemes[i].cluster;
    /* The credentials end at the last '@', as Python's urllib reads them: a
     * password with an '@' or a '/' that was not encoded still works (a
     * database number, a sentinel list and a master name hold neither). */
    const char *at = strrchr(s, '@');
    const char *rest = at ? at + 1 : s;
    bool ok = (!at || parse_userinfo(s, (size_t)(at - s), c, why)) &&
              (c->redis_sentinel  ? parse_sentinel_part(rest, c, why)
               : c->redis_cluster ? parse_seeds(rest, c, why)
                                  : parse_hostpart(rest, c, why));
    if (!ok) {
        explicit_bzero(c->redis_password, sizeof(c->redis_password));
        c->redis_password_from = CONFIG_SECRET_NONE;
    }
    return ok;
}

void config_redact_url(const char *s, char *buf, size_t len)
{
    const char *at = strrchr(s, '@');
    const char *start = strstr(s, "://");
    start = start && (!at || start < at) ? start + 3 : s;
    if (at)
        snprintf(buf, len, "%.*s***%s", (int)(start - s), s, at);
    else
        snprintf(buf, len, "%s", s);
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

/* *why: what is wrong with v, when its kind says more than its help. */
static enum apply_result apply(struct config *c, const struct config_option *d, const char *v,
                               const char **why)
{
    char *field = (char *)c + d->offset;
    bool ok = false;
    switch (d->kind) {
    case CONFIG_LISTEN:
        ok = config_parse_hostport(v, c->listen_host, sizeof(c->listen_host), &c->listen_port);
        break;
    case CONFIG_REDIS:
        c->redis_enabled = *v != '\0';
        if (!*v)
            forget_redis_login(c);
        ok = !*v || config_parse_redis_url(v, c, why);
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
                        const char *v, enum apply_result r, const char *why)
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
        snprintf(allowed, sizeof(allowed), "%s", why ? why : d->help);
    }
    char shown[320];
    if (d->kind == CONFIG_REDIS) /* the password stays off the terminal and the logs */
        config_redact_url(v, shown, sizeof(shown));
    else
        snprintf(shown, sizeof(shown), "%s", v);
    snprintf(err, errlen, "invalid value for %s: '%s' (%s)", name, shown, allowed);
}

/* Rules between settings, checked once every source was read. Returns
 * false with err set when one is broken. */
/* The --redis-tls-* flags: only with rediss://, certificate and key
 * together, every file readable. */
static bool check_redis_tls(const struct config *c, char *err, size_t errlen)
{
    const struct {
        const char *flag;
        const char *value;
    } files[] = {{"redis-tls-ca", c->redis_tls_ca},
                 {"redis-tls-cert", c->redis_tls_cert},
                 {"redis-tls-key", c->redis_tls_key},
                 {"redis-tls-server-name", c->redis_tls_server_name},
                 {"redis-tls-insecure-skip-verify", c->redis_tls_insecure ? "on" : ""}};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        /* A TLS setting on a plain connection would be silently ignored:
         * the operator believes the traffic is protected when it is not. */
        if (files[i].value[0] && !(c->redis_enabled && c->redis_tls)) {
            snprintf(err, errlen,
                     "invalid value for --%s: TLS settings need --redis rediss://... (or "
                     "rediss+sentinel://...)",
                     files[i].flag);
            return false;
        }
        /* The server name is not a file. */
        if (i < 3 && files[i].value[0] && access(files[i].value, R_OK) != 0) {
            snprintf(err, errlen, "invalid value for --%s: cannot read %s: %s", files[i].flag,
                     files[i].value, strerror(errno));
            return false;
        }
    }
    if (!c->redis_tls_cert[0] != !c->redis_tls_key[0]) {
        snprintf(err, errlen,
                 "invalid value for --%s: --redis-tls-cert and --redis-tls-key go together",
                 c->redis_tls_cert[0] ? "redis-tls-key" : "redis-tls-cert");
        return false;
    }
    return true;
}

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
    if (c->events_stream && !c->redis_enabled) {
        snprintf(err, errlen, "invalid value for --events-stream: 'on' needs --redis");
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
    if (c->redis_enabled && c->redis_cluster && strpbrk(c->redis_prefix, "{}")) {
        /* A brace in the prefix would be taken for the keys' hash tag, and
         * a room's keys would no longer share one slot. */
        snprintf(err, errlen,
                 "invalid value for --redis-prefix: '%s' (no '{' or '}' with "
                 "redis+cluster://)",
                 c->redis_prefix);
        return false;
    }
    if (c->redis_enabled && c->redis_cluster && c->events_stream) {
        /* The one stream would have to be written in the same step as each
         * room's change, by scripts on the room's node: Redis Cluster
         * refuses keys of other slots in one step. */
        snprintf(err, errlen,
                 "invalid value for --events-stream: not with redis+cluster:// (README: Redis "
                 "Cluster)");
        return false;
    }
    return check_redis_tls(c, err, errlen);
}

/* The contents of a secret file (--flag) into out (cap bytes with the
 * NUL), a trailing newline dropped: false with err set when it cannot be
 * read, is empty, too long or holds a NUL. */
static bool read_secret_file(const char *flag, const char *path, char *out, size_t cap, char *err,
                             size_t errlen)
{
    char buf[CONFIG_SECRET_FILE_MAX + 2]; /* room for a newline and one byte too many */
    size_t want = cap + 1 < sizeof(buf) ? cap + 1 : sizeof(buf);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(buf, 1, want, f) : 0;
    const char *problem = !f || ferror(f) ? strerror(errno) : NULL;
    if (f)
        fclose(f);
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    char too_long[48];
    snprintf(too_long, sizeof(too_long), "it is longer than %zu bytes", cap - 1);
    if (!problem && !n)
        problem = "it is empty";
    else if (!problem && n >= cap)
        problem = too_long;
    else if (!problem && memchr(buf, '\0', n))
        problem = "it holds a NUL byte";
    if (!problem) {
        memcpy(out, buf, n);
        out[n] = '\0';
    }
    explicit_bzero(buf, sizeof(buf));
    if (problem)
        snprintf(err, errlen, "invalid value for --%s: cannot use %s: %s", flag, path, problem);
    return !problem;
}

/* The contents of --redis-password-file into c->redis_password. */
static bool read_password_file(struct config *c, char *err, size_t errlen)
{
    if (!read_secret_file("redis-password-file", c->redis_password_file, c->redis_password,
                          sizeof(c->redis_password), err, errlen))
        return false;
    c->redis_password_from = CONFIG_SECRET_FILE;
    return true;
}

/* --api-listen and --api-key-file go together; the key is read now, so
 * that a missing or short one is an exit 2 rather than an open API. */
static bool load_api(struct config *c, char *err, size_t errlen)
{
    if (!c->api_listen[0] != !c->api_key_file[0]) {
        snprintf(err, errlen, "invalid value for --%s: --api-listen and --api-key-file go together",
                 c->api_listen[0] ? "api-key-file" : "api-listen");
        return false;
    }
    if (!c->api_listen[0])
        return true;
    if (!config_parse_hostport(c->api_listen, c->api_host, sizeof(c->api_host), &c->api_port) ||
        c->api_port == 0) {
        snprintf(err, errlen, "invalid value for --api-listen: '%s' (HOST:PORT)", c->api_listen);
        return false;
    }
    if (c->api_port == c->listen_port) { /* the API's point is a port of its own */
        snprintf(err, errlen, "invalid value for --api-listen: '%s' (a port other than --listen's)",
                 c->api_listen);
        return false;
    }
    if (!read_secret_file("api-key-file", c->api_key_file, c->api_key, sizeof(c->api_key), err,
                          errlen))
        return false;
    if (strlen(c->api_key) < CONFIG_API_KEY_MIN) {
        snprintf(err, errlen,
                 "invalid value for --api-key-file: the key in %s is shorter than %d "
                 "bytes",
                 c->api_key_file, CONFIG_API_KEY_MIN);
        explicit_bzero(c->api_key, sizeof(c->api_key));
        return false;
    }
    return true;
}

/* The sentinels' password from GATEWAY_REDIS_SENTINEL_PASSWORD or
 * --redis-sentinel-password-file: one of them, and only with
 * redis[s]+sentinel:// (elsewhere it would be silently unused). */
static bool load_sentinel_password(struct config *c, char *err, size_t errlen)
{
    const char *env = getenv(CONFIG_REDIS_SENTINEL_PASSWORD_ENV);
    bool from_env = env && *env, from_file = c->redis_sentinel_password_file[0] != '\0';
    if (!from_env && !from_file)
        return true;
    const char *name = from_file ? "--redis-sentinel-password-file"
                                 : CONFIG_REDIS_SENTINEL_PASSWORD_ENV
                           " (--redis-sentinel-password-file)";
    if (!c->redis_enabled || !c->redis_sentinel) {
        snprintf(err, errlen,
                 "invalid value for %s: a sentinel password needs --redis redis+sentinel://...",
                 name);
        return false;
    }
    if (from_env && from_file) {
        snprintf(err, errlen,
                 "invalid value for --redis-sentinel-password-file: a password is also given in "
                 "" CONFIG_REDIS_SENTINEL_PASSWORD_ENV " (give the password one way)");
        return false;
    }
    if (from_file) {
        if (!read_secret_file("redis-sentinel-password-file", c->redis_sentinel_password_file,
                              c->redis_sentinel_password, sizeof(c->redis_sentinel_password), err,
                              errlen))
            return false;
        c->redis_sentinel_password_from = CONFIG_SECRET_FILE;
        return true;
    }
    if (strlen(env) >= sizeof(c->redis_sentinel_password)) {
        snprintf(err, errlen, "invalid value for %s: longer than 511 bytes", name);
        return false;
    }
    strcpy(c->redis_sentinel_password, env);
    c->redis_sentinel_password_from = CONFIG_SECRET_ENV;
    return true;
}

/* The Redis password from GATEWAY_REDIS_PASSWORD or --redis-password-file,
 * once every source was read: at most one source, the URL included. */
static bool load_redis_password(struct config *c, char *err, size_t errlen)
{
    const char *env = getenv(CONFIG_REDIS_PASSWORD_ENV);
    if (env && *env) { /* empty: unset, like an empty GATEWAY_REDIS */
        if (c->redis_password_from == CONFIG_SECRET_URL) {
            snprintf(
                err, errlen,
                "invalid value for --redis: the URL holds a password and " CONFIG_REDIS_PASSWORD_ENV
                " is set too (give the password one way)");
            return false;
        }
        if (strlen(env) >= sizeof(c->redis_password)) {
            snprintf(err, errlen,
                     "invalid value for " CONFIG_REDIS_PASSWORD_ENV " (--redis): longer than 511 "
                     "bytes");
            return false;
        }
        strcpy(c->redis_password, env);
        c->redis_password_from = CONFIG_SECRET_ENV;
    }
    if (c->redis_password_file[0]) {
        if (c->redis_password_from != CONFIG_SECRET_NONE) {
            snprintf(err, errlen,
                     "invalid value for --redis-password-file: a password is also given %s (give "
                     "the password one way)",
                     c->redis_password_from == CONFIG_SECRET_URL ? "in the URL of --redis"
                                                                 : "in " CONFIG_REDIS_PASSWORD_ENV);
            return false;
        }
        if (!read_password_file(c, err, errlen))
            return false;
    }
    if (c->redis_enabled && c->redis_user[0] && !c->redis_password[0]) {
        /* Not the user's name: redis://SECRET@host is a password put where
         * the user goes more often than a user without one. */
        snprintf(err, errlen,
                 "invalid value for --redis: a user without a password (give it in the URL as "
                 "USER:PASSWORD@, in --redis-password-file or " CONFIG_REDIS_PASSWORD_ENV ")");
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
        const char *why = NULL;
        enum apply_result r = d->dflt ? apply(c, d, d->dflt, &why) : APPLY_OK;
        if (r != APPLY_OK) { /* a mistake in the table, which the unit tests catch */
            snprintf(name, sizeof(name), "the default of --%s", d->flag);
            value_error(err, errlen, name, d, d->dflt, r, why);
            return CONFIG_ERROR;
        }
    }
    snprintf(c->client_dir, sizeof(c->client_dir), "%s", default_client_dir);

    for (size_t i = 0; i < NDEFS; i++) {
        const struct config_option *d = &config_options[i];
        const char *v = getenv(d->env);
        const char *why = NULL;
        enum apply_result r = v ? apply(c, d, v, &why) : APPLY_OK;
        if (r != APPLY_OK) {
            snprintf(name, sizeof(name), "%s (--%s)", d->env, d->flag);
            value_error(err, errlen, name, d, v, r, why);
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
        const char *why = NULL;
        enum apply_result r = apply(c, d, optarg, &why);
        if (r != APPLY_OK) {
            snprintf(name, sizeof(name), "--%s", d->flag);
            value_error(err, errlen, name, d, optarg, r, why);
            return CONFIG_ERROR;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument: '%s'", argv[optind]);
        return CONFIG_ERROR;
    }
    if (!load_redis_password(c, err, errlen) || !load_sentinel_password(c, err, errlen) ||
        !check_together(c, err, errlen) || !load_api(c, err, errlen))
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
    fprintf(out, "    %-20s %-28s %s\n", "", CONFIG_REDIS_PASSWORD_ENV,
            "the Redis password, kept out of the process list (no flag); the password comes "
            "from one of the --redis URL, --redis-password-file or this");
    fprintf(out, "    %-20s %-28s %s\n", "", CONFIG_REDIS_SENTINEL_PASSWORD_ENV,
            "the sentinels' own password (no flag); or --redis-sentinel-password-file");
}

void config_free(struct config *c)
{
    free_origins(c);
    explicit_bzero(c->redis_password, sizeof(c->redis_password));
    explicit_bzero(c->api_key, sizeof(c->api_key));
    explicit_bzero(c->redis_sentinel_password, sizeof(c->redis_sentinel_password));
}
