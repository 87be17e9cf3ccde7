/* fuzz_config: the command line and the value parsers.
 *
 * Input: records separated by NUL or '\n'. A record GATEWAY_<NAME>=<value>
 * is put in the environment (cleared of GATEWAY_* around every input);
 * the others are argv[1..] of config_parse. Every record also goes through
 * each value parser, with a host buffer whose size comes from the record,
 * so that their bounds are tried too.
 *
 * Checks: a parse that succeeds leaves a configuration config_parse
 * promises (NUL-terminated strings, a valid id, every number in its row's
 * range, the rules between settings, 1 to 16 distinct sentinels and a valid
 * master name with redis[s]+sentinel://, seeds and database 0 with
 * redis[s]+cluster://); an
 * error leaves a message; durations and sizes have the value exact
 * arithmetic gives. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "proto.h"

#define RECORDS_MAX 64
#define TERMINATED(c, field) (strnlen((c)->field, sizeof((c)->field)) < sizeof((c)->field))
#define MAX_MS 86400000u

extern char **environ;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fail(const char *what, const char *value)
{
    fprintf(stderr, "fuzz_config: %s: '%s'\n", what, value);
    abort();
}

static void clear_gateway_env(void)
{
    for (bool again = true; again;) {
        again = false;
        for (char **e = environ; *e; e++) {
            if (strncmp(*e, "GATEWAY_", 8) == 0) {
                char *name = strndup(*e, strcspn(*e, "="));
                if (!name || unsetenv(name) < 0)
                    abort();
                free(name);
                again = true; /* environ changed: start over */
                break;
            }
        }
    }
}

/* DIGITS as config.c reads them: 1 to 18 decimal digits. */
static const char *ref_digits(const char *s, unsigned __int128 *v, unsigned *n)
{
    *v = 0;
    *n = 0;
    while (s[*n] >= '0' && s[*n] <= '9') {
        *v = *v * 10 + (unsigned)(s[*n] - '0');
        (*n)++;
    }
    return *n >= 1 && *n <= 18 ? s + *n : NULL;
}

/* The duration grammar, DIGITS[.DDD][ms|s] (at most three decimals),
 * valued with exact arithmetic: whole * unit + fraction * unit, rounded
 * down. */
static bool ref_duration(const char *s, unsigned *out)
{
    unsigned __int128 whole, frac = 0, scale = 1;
    unsigned n;
    const char *p = ref_digits(s, &whole, &n);
    if (!p)
        return false;
    if (*p == '.') {
        if (!(p = ref_digits(p + 1, &frac, &n)) || n > 3)
            return false;
        while (n--)
            scale *= 10;
    }
    unsigned unit = strcmp(p, "ms") == 0 ? 1 : 1000;
    if (*p && strcmp(p, "ms") != 0 && strcmp(p, "s") != 0)
        return false;
    unsigned __int128 ms = whole * unit + frac * unit / scale;
    if (ms > MAX_MS)
        return false;
    *out = (unsigned)ms;
    return true;
}

static bool ref_size(const char *s, size_t *out)
{
    unsigned __int128 v;
    unsigned n;
    const char *p = ref_digits(s, &v, &n);
    if (!p)
        return false;
    unsigned __int128 scale = 1;
    if (*p == 'k' || *p == 'K')
        scale = 1024, p++;
    else if (*p == 'm' || *p == 'M')
        scale = 1024 * 1024, p++;
    else if (*p == 'g' || *p == 'G')
        scale = 1024 * 1024 * 1024, p++;
    if (*p || v * scale > ((unsigned __int128)1 << 40))
        return false;
    *out = (size_t)(v * scale);
    return true;
}

static void check_host(const char *s, size_t hostlen)
{
    char *host = malloc(hostlen ? hostlen : 1);
    if (!host)
        abort();
    int port = -1;
    bool ok = config_parse_hostport(s, host, hostlen, &port);
    if (ok && (strnlen(host, hostlen) == hostlen || port < 0 || port > 65535))
        fail("a host and port accepted without a terminated host or a port in range", s);
    free(host);
}

/* Hex digits a '%' must be followed by in a URL's credentials. */
static bool ref_escapes_ok(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%')
            continue;
        if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
            !isxdigit((unsigned char)s[i + 2]) || (s[i + 1] == '0' && s[i + 2] == '0'))
            return false;
        i += 2;
    }
    return true;
}

/* The sentinels and the master name of a redis[s]+sentinel:// setting:
 * 1 to 16 distinct sentinels with a host and a port in range, a master name
 * of 1 to 128 letters, digits, '.', '-' or '_'. */
static bool sentinel_violation(const struct config *c)
{
    if (c->n_redis_sentinels < 1 || c->n_redis_sentinels > CONFIG_SENTINELS_MAX ||
        !TERMINATED(c, redis_master_name))
        return true;
    for (unsigned i = 0; i < c->n_redis_sentinels; i++) {
        const struct config_address *a = &c->redis_sentinels[i];
        if (strnlen(a->host, sizeof(a->host)) == sizeof(a->host) || !a->host[0] || a->port < 1 ||
            a->port > 65535)
            return true;
        for (unsigned j = 0; j < i; j++)
            if (strcmp(c->redis_sentinels[j].host, a->host) == 0 &&
                c->redis_sentinels[j].port == a->port)
                return true;
    }
    size_t n = strlen(c->redis_master_name);
    if (!n || strspn(c->redis_master_name,
                     "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != n)
        return true;
    return false;
}

static void check_redis_url(const char *s)
{
    struct config *c = calloc(1, sizeof(*c));
    if (!c)
        abort();
    const char *why = NULL;
    bool ok = config_parse_redis_url(s, c, &why);
    if (!ok && !why)
        fail("a Redis URL refused without a reason", s);
    if (!ok && (c->redis_password[0] || c->redis_password_from != CONFIG_SECRET_NONE))
        fail("a refused Redis URL left a password behind", s);
    if (ok &&
        (!TERMINATED(c, redis_host) || !TERMINATED(c, redis_user) ||
         !TERMINATED(c, redis_password) || c->redis_db > CONFIG_REDIS_DB_MAX ||
         (!c->redis_sentinel && (c->redis_port < 1 || c->redis_port > 65535 || !c->redis_host[0]))))
        fail("a Redis URL accepted with an unterminated field or a value out of range", s);
    if (ok && c->redis_sentinel && sentinel_violation(c))
        fail("a sentinel URL accepted with a sentinel or master name out of bounds", s);
    if (ok && (c->redis_password[0] != '\0') != (c->redis_password_from == CONFIG_SECRET_URL))
        fail("a Redis URL's password and its source disagree", s);
    if (ok && c->redis_cluster &&
        (!TERMINATED(c, redis_seeds) || !c->redis_seeds[0] || c->redis_db != 0))
        fail("a cluster URL accepted without seeds or with a database", s);
    /* The scheme decides TLS, Sentinel and Cluster; the credentials, before
     * the last '@', hold only complete escapes. */
    static const struct {
        const char *name;
        bool tls, sentinel, cluster;
    } schemes[] = {
        {"redis://", false, false, false},         {"rediss://", true, false, false},
        {"redis+sentinel://", false, true, false}, {"rediss+sentinel://", true, true, false},
        {"redis+cluster://", false, false, true},  {"rediss+cluster://", true, false, true}};
    size_t i = 0, n_schemes = sizeof(schemes) / sizeof(schemes[0]);
    while (i < n_schemes && strncmp(s, schemes[i].name, strlen(schemes[i].name)) != 0)
        i++;
    if (ok && (i == n_schemes || c->redis_tls != schemes[i].tls ||
               c->redis_sentinel != schemes[i].sentinel || c->redis_cluster != schemes[i].cluster))
        fail("a Redis URL whose TLS, Sentinel or Cluster setting disagrees with its scheme", s);
    size_t scheme = i < n_schemes ? strlen(schemes[i].name) : 0;
    const char *at = strrchr(s, '@');
    if (ok && at && !ref_escapes_ok(s + scheme, (size_t)(at - s) - scheme))
        fail("a Redis URL accepted with a bad escape in its credentials", s);
    free(c);
}

static void check_values(const char *s)
{
    unsigned ms = 0, ref_ms = 0;
    bool ok = config_parse_duration_ms(s, &ms);
    if (ok != ref_duration(s, &ref_ms) || (ok && ms != ref_ms))
        fail("a duration parsed to another value than its digits say", s);
    size_t sz = 0, ref_sz = 0;
    ok = config_parse_size(s, &sz);
    if (ok != ref_size(s, &ref_sz) || (ok && sz != ref_sz))
        fail("a size parsed to another value than its digits say", s);
    size_t hostlen = strlen(s) % 300;
    check_host(s, hostlen);
    check_redis_url(s);
}

/* Returns what c breaks of config_parse's promises, or NULL. */
static const char *config_violation(const struct config *c)
{
    if (!TERMINATED(c, listen_host) || !TERMINATED(c, redis_host) || !TERMINATED(c, redis_prefix) ||
        !TERMINATED(c, redis_user) || !TERMINATED(c, redis_password) ||
        !TERMINATED(c, redis_password_file) || !TERMINATED(c, id) || !TERMINATED(c, client_dir) ||
        !TERMINATED(c, jwt_secret) || !TERMINATED(c, tls_cert) || !TERMINATED(c, tls_key) ||
        !TERMINATED(c, redis_tls_ca) || !TERMINATED(c, redis_tls_cert) ||
        !TERMINATED(c, redis_tls_key) || !TERMINATED(c, redis_tls_server_name) ||
        !TERMINATED(c, redis_sentinel_password) || !TERMINATED(c, redis_sentinel_password_file) ||
        !TERMINATED(c, redis_master_name))
        return "a string setting without its NUL";
    if (!proto_valid_name(c->id, strlen(c->id), GATEWAY_ID_MAX))
        return "a gateway id that is not 1 to 64 bytes without control characters";
    for (size_t i = 0; i < config_n_options; i++) {
        const struct config_option *o = &config_options[i];
        if (config_numeric(o) && (config_number(c, o) < o->min || config_number(c, o) > o->max))
            return "a numeric setting out of its row's range";
    }
    if (c->pong_timeout_ms <= c->ping_interval_ms || !c->tls_cert[0] != !c->tls_key[0] ||
        (c->rate_limit && !c->rate_burst) || c->send_queue_limit / 2 < c->max_message_bytes)
        return "a configuration that breaks a rule between settings";
    if (c->redis_enabled && !c->redis_sentinel && (c->redis_port < 1 || c->redis_port > 65535))
        return "a Redis port out of range";
    if (c->redis_enabled && c->redis_sentinel && sentinel_violation(c))
        return "sentinels or a master name out of bounds";
    if ((c->redis_sentinel_password_from == CONFIG_SECRET_NONE) != !c->redis_sentinel_password[0])
        return "a sentinel password without its source, or a source without one";
    if (c->redis_sentinel_password[0] && !(c->redis_enabled && c->redis_sentinel))
        return "a sentinel password without sentinels";
    if (c->redis_enabled && c->redis_cluster &&
        (strpbrk(c->redis_prefix, "{}") || c->api_listen[0] || c->events_stream))
        return "Redis Cluster with a braced prefix, the server API or the event stream";
    if (c->redis_enabled && c->redis_user[0] && !c->redis_password[0])
        return "a Redis user without a password";
    if ((c->redis_password_from == CONFIG_SECRET_NONE) != !c->redis_password[0])
        return "a Redis password without its source, or a source without one";
    for (size_t i = 0; i < c->n_allowed_origins; i++) {
        const char *o = c->allowed_origins[i];
        size_t n = strlen(o);
        if (!n || o[0] == ' ' || o[n - 1] == ' ' || strchr(o, ','))
            return "an allowed origin that is empty, padded or holds a comma";
    }
    return NULL;
}

static void parse_argv(int argc, char **argv)
{
    struct config c;
    char err[256];
    err[0] = '\0';
    enum config_result r = config_parse(&c, argc, argv, "/client", err, sizeof(err));
    const char *bad = NULL;
    if (r == CONFIG_OK)
        bad = config_violation(&c);
    else if (r == CONFIG_ERROR && !err[0])
        bad = "an error without a message";
    if (bad) {
        fprintf(stderr, "fuzz_config: %s; argv:", bad);
        for (int i = 1; i < argc; i++)
            fprintf(stderr, " '%s'", argv[i]);
        fprintf(stderr, "\n");
        abort();
    }
    config_free(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = malloc(size + 1);
    char *argv[RECORDS_MAX + 2];
    static char prog[] = "gateway";
    if (!input)
        abort();
    memcpy(input, data, size);
    input[size] = '\0';
    clear_gateway_env();
    int argc = 0;
    argv[argc++] = prog;
    for (char *p = input, *end = input + size; p <= end && argc <= RECORDS_MAX;) {
        size_t n = strcspn(p, "\n");
        p[n] = '\0';
        check_values(p);
        char *eq = strchr(p, '=');
        if (strncmp(p, "GATEWAY_", 8) == 0 && eq) {
            *eq = '\0';
            setenv(p, eq + 1, 1);
            *eq = '=';
        } else if (p < end) {
            argv[argc++] = p;
        }
        p += n + 1;
    }
    argv[argc] = NULL;
    parse_argv(argc, argv);
    clear_gateway_env();
    free(input);
    return 0;
}
