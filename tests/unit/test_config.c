#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

#define DEFAULT_DIR "/srv/client"

static void clear_env(void)
{
    for (size_t i = 0; i < config_n_options; i++)
        unsetenv(config_options[i].env);
}

static char err[512];

/* Parses the flags given (NULL-terminated) after a program name. The
 * config is freed by the caller, whatever the result. */
static enum config_result parse(struct config *c, ...)
{
    char *argv[32] = {"gateway"};
    int argc = 1;
    va_list ap;
    va_start(ap, c);
    for (char *a; argc < 31 && (a = va_arg(ap, char *));)
        argv[argc++] = a;
    va_end(ap);
    err[0] = '\0';
    return config_parse(c, argc, argv, DEFAULT_DIR, err, sizeof(err));
}

/* Parses one flag with one value; true when it was accepted. */
static bool accepts(const char *flag, const char *value)
{
    struct config c;
    enum config_result r = parse(&c, flag, value, NULL);
    config_free(&c);
    return r == CONFIG_OK;
}

static void test_defaults(void)
{
    clear_env();
    struct config c;
    CHECK_INT(parse(&c, NULL), ==, CONFIG_OK);
    CHECK_STR(c.listen_host, "0.0.0.0");
    CHECK_INT(c.listen_port, ==, 8080);
    CHECK(!c.redis_enabled);
    CHECK_STR(c.redis_prefix, "chat:");
    CHECK_STR(c.id, "0.0.0.0:8080");
    CHECK_STR(c.client_dir, DEFAULT_DIR);
    CHECK_INT(c.max_message_bytes, ==, 65536);
    CHECK_INT(c.ping_interval_ms, ==, 54000);
    CHECK_INT(c.pong_timeout_ms, ==, 75000);
    CHECK_INT(c.send_queue_limit, ==, 1048576);
    CHECK_INT(c.n_allowed_origins, ==, 0);
    CHECK_INT(c.history, ==, 100);
    CHECK_INT(c.shutdown_timeout_ms, ==, 5000);
    CHECK_INT(c.log_level, ==, LOG_INFO);
    config_free(&c);
}

static void test_every_flag(void)
{
    clear_env();
    struct config c;
    enum config_result r =
        parse(&c, "--listen", "127.0.0.1:8081", "--redis", "redis://10.0.0.5:6380",
              "--redis-prefix", "t1:", "--id", "gw-7", "--client-dir", "/tmp/www",
              "--max-message-bytes", "8k", "--ping-interval", "500ms", "--pong-timeout", "2s",
              "--send-queue-limit", "2m", "--allowed-origins", "https://a.example, http://b:8080",
              "--history", "7", "--shutdown-timeout", "250ms", "--log-level", "debug", NULL);
    CHECK_INT(r, ==, CONFIG_OK);
    CHECK_STR(err, "");
    CHECK_STR(c.listen_host, "127.0.0.1");
    CHECK_INT(c.listen_port, ==, 8081);
    CHECK(c.redis_enabled);
    CHECK_STR(c.redis_host, "10.0.0.5");
    CHECK_INT(c.redis_port, ==, 6380);
    CHECK_STR(c.redis_prefix, "t1:");
    CHECK_STR(c.id, "gw-7");
    CHECK_STR(c.client_dir, "/tmp/www");
    CHECK_INT(c.max_message_bytes, ==, 8192);
    CHECK_INT(c.ping_interval_ms, ==, 500);
    CHECK_INT(c.pong_timeout_ms, ==, 2000);
    CHECK_INT(c.send_queue_limit, ==, 2 * 1048576);
    if (CHECK_INT(c.n_allowed_origins, ==, 2)) {
        CHECK_STR(c.allowed_origins[0], "https://a.example");
        CHECK_STR(c.allowed_origins[1], "http://b:8080");
    }
    CHECK_INT(c.history, ==, 7);
    CHECK_INT(c.shutdown_timeout_ms, ==, 250);
    CHECK_INT(c.log_level, ==, LOG_DEBUG);
    config_free(&c);
    CHECK(c.allowed_origins == NULL && c.n_allowed_origins == 0);

    /* --flag=value works too, and the id defaults to the listen address. */
    CHECK_INT(parse(&c, "--listen=localhost:9000", "--history=0", NULL), ==, CONFIG_OK);
    CHECK_STR(c.id, "localhost:9000");
    CHECK_INT(c.history, ==, 0);
    config_free(&c);
}

static void test_env_twins(void)
{
    clear_env();
    setenv("GATEWAY_LISTEN", "127.0.0.2:7000", 1);
    setenv("GATEWAY_REDIS", "redis://localhost", 1);
    setenv("GATEWAY_REDIS_PREFIX", "env:", 1);
    setenv("GATEWAY_ID", "env-gw", 1);
    setenv("GATEWAY_CLIENT_DIR", "/env/www", 1);
    setenv("GATEWAY_MAX_MESSAGE_BYTES", "1000", 1);
    setenv("GATEWAY_PING_INTERVAL", "10", 1);
    setenv("GATEWAY_PONG_TIMEOUT", "15s", 1);
    setenv("GATEWAY_SEND_QUEUE_LIMIT", "64K", 1);
    setenv("GATEWAY_ALLOWED_ORIGINS", "https://x", 1);
    setenv("GATEWAY_HISTORY", "50", 1);
    setenv("GATEWAY_SHUTDOWN_TIMEOUT", "1s", 1);
    setenv("GATEWAY_LOG_LEVEL", "warn", 1);
    struct config c;
    CHECK_INT(parse(&c, NULL), ==, CONFIG_OK);
    CHECK_STR(c.listen_host, "127.0.0.2");
    CHECK_INT(c.listen_port, ==, 7000);
    CHECK(c.redis_enabled);
    CHECK_STR(c.redis_host, "localhost");
    CHECK_INT(c.redis_port, ==, 6379);
    CHECK_STR(c.redis_prefix, "env:");
    CHECK_STR(c.id, "env-gw");
    CHECK_STR(c.client_dir, "/env/www");
    CHECK_INT(c.max_message_bytes, ==, 1000);
    CHECK_INT(c.ping_interval_ms, ==, 10000);
    CHECK_INT(c.pong_timeout_ms, ==, 15000);
    CHECK_INT(c.send_queue_limit, ==, 65536);
    CHECK(c.n_allowed_origins == 1 && strcmp(c.allowed_origins[0], "https://x") == 0);
    CHECK_INT(c.history, ==, 50);
    CHECK_INT(c.shutdown_timeout_ms, ==, 1000);
    CHECK_INT(c.log_level, ==, LOG_WARN);
    config_free(&c);

    /* Every flag wins over its twin. */
    CHECK_INT(parse(&c, "--listen", "127.0.0.3:7001", "--redis", "redis://other:1",
                    "--redis-prefix", "flag:", "--id", "flag-gw", "--client-dir", "/flag",
                    "--max-message-bytes", "2000", "--ping-interval", "20s", "--pong-timeout",
                    "30s", "--send-queue-limit", "4k", "--allowed-origins", "https://y,https://z",
                    "--history", "5", "--shutdown-timeout", "2s", "--log-level", "error", NULL),
              ==, CONFIG_OK);
    CHECK_STR(c.listen_host, "127.0.0.3");
    CHECK_INT(c.listen_port, ==, 7001);
    CHECK_STR(c.redis_host, "other");
    CHECK_INT(c.redis_port, ==, 1);
    CHECK_STR(c.redis_prefix, "flag:");
    CHECK_STR(c.id, "flag-gw");
    CHECK_STR(c.client_dir, "/flag");
    CHECK_INT(c.max_message_bytes, ==, 2000);
    CHECK_INT(c.ping_interval_ms, ==, 20000);
    CHECK_INT(c.pong_timeout_ms, ==, 30000);
    CHECK_INT(c.send_queue_limit, ==, 4096);
    if (CHECK_INT(c.n_allowed_origins, ==, 2)) /* replaced, not appended */
        CHECK_STR(c.allowed_origins[1], "https://z");
    CHECK_INT(c.history, ==, 5);
    CHECK_INT(c.shutdown_timeout_ms, ==, 2000);
    CHECK_INT(c.log_level, ==, LOG_ERROR);
    config_free(&c);

    /* An empty GATEWAY_REDIS means single node. */
    setenv("GATEWAY_REDIS", "", 1);
    CHECK_INT(parse(&c, NULL), ==, CONFIG_OK);
    CHECK(!c.redis_enabled);
    config_free(&c);

    /* A bad twin is an error naming both the variable and the flag. */
    clear_env();
    setenv("GATEWAY_HISTORY", "lots", 1);
    CHECK_INT(parse(&c, NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "GATEWAY_HISTORY") && strstr(err, "--history"));
    config_free(&c);
    clear_env();
}

static void test_bad_flags(void)
{
    clear_env();
    struct config c;
    CHECK_INT(parse(&c, "--bogus", "1", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--bogus") != NULL);
    config_free(&c);
    CHECK_INT(parse(&c, "-x", NULL), ==, CONFIG_ERROR);
    config_free(&c);
    CHECK_INT(parse(&c, "--listen", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--listen") != NULL);
    config_free(&c);
    CHECK_INT(parse(&c, "stray", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "stray") != NULL);
    config_free(&c);
    CHECK_INT(parse(&c, "--help", NULL), ==, CONFIG_HELP);
    config_free(&c);
    CHECK_INT(parse(&c, "-h", NULL), ==, CONFIG_HELP);
    config_free(&c);
    CHECK_INT(parse(&c, "--listen", "127.0.0.1:1", "--help", NULL), ==, CONFIG_HELP);
    config_free(&c);

    /* A bad value names its flag on one line. */
    CHECK_INT(parse(&c, "--max-message-bytes", "lots", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--max-message-bytes") != NULL);
    CHECK(strchr(err, '\n') == NULL);
    config_free(&c);

    CHECK(!accepts("--listen", "nohost"));
    CHECK(!accepts("--redis", "http://x:1"));
    CHECK(!accepts("--redis-prefix", ""));
    CHECK(!accepts("--id", ""));
    char longid[200];
    memset(longid, 'g', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    CHECK(!accepts("--id", longid));
    CHECK(!accepts("--client-dir", ""));
    CHECK(!accepts("--max-message-bytes", "0"));
    CHECK(!accepts("--send-queue-limit", "0"));
    CHECK(!accepts("--send-queue-limit", "-5"));
    CHECK(!accepts("--ping-interval", "fast"));
    CHECK(!accepts("--ping-interval", "99ms")); /* at least 100ms */
    CHECK(accepts("--ping-interval", "100ms"));
    CHECK(!accepts("--shutdown-timeout", "-1s"));
    CHECK(accepts("--shutdown-timeout", "0"));
    CHECK(!accepts("--history", "1k"));
    CHECK(!accepts("--history", "10001"));
    CHECK(accepts("--history", "10000"));
    CHECK(!accepts("--history", "-1"));
    CHECK(!accepts("--log-level", "verbose"));
    CHECK(!accepts("--log-level", "INFO"));
    CHECK(accepts("--allowed-origins", ""));
}

static void test_pong_after_ping(void)
{
    clear_env();
    struct config c;
    CHECK_INT(parse(&c, "--ping-interval", "75s", NULL), ==, CONFIG_ERROR); /* == pong */
    CHECK(strstr(err, "--pong-timeout") != NULL);
    config_free(&c);
    CHECK_INT(parse(&c, "--pong-timeout", "54s", NULL), ==, CONFIG_ERROR);
    config_free(&c);
    CHECK_INT(parse(&c, "--pong-timeout", "53s", NULL), ==, CONFIG_ERROR);
    config_free(&c);
    CHECK_INT(parse(&c, "--pong-timeout", "54001ms", NULL), ==, CONFIG_OK);
    config_free(&c);
    CHECK_INT(parse(&c, "--ping-interval", "1s", "--pong-timeout", "1001ms", NULL), ==, CONFIG_OK);
    config_free(&c);
    /* Checked after both sources: a twin's ping against a flag's pong. */
    setenv("GATEWAY_PING_INTERVAL", "90s", 1);
    CHECK_INT(parse(&c, NULL), ==, CONFIG_ERROR);
    config_free(&c);
    CHECK_INT(parse(&c, "--pong-timeout", "91s", NULL), ==, CONFIG_OK);
    config_free(&c);
    clear_env();
}

static void test_origins(void)
{
    clear_env();
    struct config c;
    CHECK_INT(parse(&c, "--allowed-origins", " https://a ,, https://b ,\thttps://c,", NULL), ==,
              CONFIG_OK);
    if (CHECK_INT(c.n_allowed_origins, ==, 3)) {
        CHECK_STR(c.allowed_origins[0], "https://a");
        CHECK_STR(c.allowed_origins[1], "https://b");
        CHECK_STR(c.allowed_origins[2], "https://c");
    }
    config_free(&c);
    /* Given twice: the last wins and the first list is not leaked. */
    CHECK_INT(parse(&c, "--allowed-origins", "https://a,https://b", "--allowed-origins",
                    "https://c", NULL),
              ==, CONFIG_OK);
    CHECK(c.n_allowed_origins == 1 && strcmp(c.allowed_origins[0], "https://c") == 0);
    config_free(&c);
    CHECK_INT(parse(&c, "--allowed-origins", " , ", NULL), ==, CONFIG_OK);
    CHECK_INT(c.n_allowed_origins, ==, 0);
    config_free(&c);
}

static void test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    if (!CHECK(out != NULL))
        return;
    config_usage(out);
    fclose(out);
    CHECK(strstr(text, "  --help ") != NULL);
    /* Every row has a line with its flag, its twin, and its default and
     * range as the table has them. */
    for (size_t i = 0; i < config_n_options; i++) {
        const struct config_option *o = &config_options[i];
        char flag[64], want[128] = "", range[64] = "";
        snprintf(flag, sizeof(flag), "\n  --%s ", o->flag);
        const char *line = strstr(text, flag);
        if (!CHECK(line != NULL)) {
            fprintf(stderr, "  usage lacks --%s\n", o->flag);
            continue;
        }
        const char *eol = strchr(line + 1, '\n');
        char copy[512];
        snprintf(copy, sizeof(copy), "%.*s", (int)(eol - line), line);
        CHECK(strstr(copy, o->env) != NULL);
        if (config_numeric(o))
            config_format_range(o, range, sizeof(range));
        if (o->dflt)
            snprintf(want, sizeof(want), "(default %s%s%s)", o->dflt, range[0] ? "; " : "", range);
        else if (range[0])
            snprintf(want, sizeof(want), "(%s)", range);
        if (want[0] && !CHECK(strstr(copy, want) != NULL))
            fprintf(stderr, "  --%s: no %s in%s\n", o->flag, want, copy);
    }
    free(text);
}

/* The table's rows are sound: numeric ranges fit their fields, and every
 * default given parses (config_parse starts from them) to the value the
 * flag with that text gives. */
static void test_table(void)
{
    clear_env();
    struct config dflt;
    if (!CHECK_INT(parse(&dflt, NULL), ==, CONFIG_OK))
        return;
    for (size_t i = 0; i < config_n_options; i++) {
        const struct config_option *o = &config_options[i];
        check_test = o->flag;
        CHECK(o->flag && o->env && o->help);
        CHECK(strncmp(o->env, "GATEWAY_", 8) == 0);
        if (config_numeric(o)) {
            bool is_size = o->kind == CONFIG_SIZE;
            CHECK_INT(o->size, ==, is_size ? sizeof(size_t) : sizeof(unsigned));
            CHECK(o->min <= o->max);
            CHECK(o->max <= (is_size ? (unsigned long long)SIZE_MAX : UINT_MAX));
            CHECK(o->dflt != NULL);
        } else {
            CHECK(o->min == 0 && o->max == 0);
        }
        if (!o->dflt)
            continue;
        struct config c;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        if (CHECK_INT(parse(&c, flag, o->dflt, NULL), ==, CONFIG_OK) && o->kind != CONFIG_ORIGINS)
            CHECK(memcmp((char *)&c + o->offset, (char *)&dflt + o->offset, o->size) == 0);
        config_free(&c);
    }
    check_test = "test_table";
    config_free(&dflt);
}

/* The values a numeric flag's range check sees: with these before it, no
 * rule between settings refuses the tested flag's own ends. */
#define ROOMY                                                                                      \
    "--ping-interval", "100ms", "--pong-timeout", "7200s", "--max-message-bytes", "256",           \
        "--send-queue-limit", "1g", "--rate-limit", "0"

static void number_text(const struct config_option *o, unsigned long long v, char *buf, size_t len)
{
    snprintf(buf, len, "%llu%s", v, o->kind == CONFIG_DURATION ? "ms" : "");
}

/* Each numeric flag takes its two ends and refuses one past each, with a
 * message naming the flag, the value and the range. */
static void test_bounds(void)
{
    clear_env();
    for (size_t i = 0; i < config_n_options; i++) {
        const struct config_option *o = &config_options[i];
        if (!config_numeric(o))
            continue;
        check_test = o->flag;
        char flag[64], v[32], range[64], want[256];
        snprintf(flag, sizeof(flag), "--%s", o->flag);
        config_format_range(o, range, sizeof(range));
        struct config c;
        const unsigned long long ends[] = {o->min, o->max};
        for (size_t e = 0; e < 2; e++) {
            number_text(o, ends[e], v, sizeof(v));
            if (CHECK_INT(parse(&c, ROOMY, flag, v, NULL), ==, CONFIG_OK))
                CHECK(config_number(&c, o) == ends[e]);
            else
                fprintf(stderr, "  %s %s: %s\n", flag, v, err);
            config_free(&c);
        }
        const unsigned long long past[] = {o->min - 1, o->max + 1};
        for (size_t e = o->min ? 0 : 1; e < 2; e++) {
            number_text(o, past[e], v, sizeof(v));
            CHECK_INT(parse(&c, ROOMY, flag, v, NULL), ==, CONFIG_ERROR);
            snprintf(want, sizeof(want), "invalid value for %s: '%s' (%s)", flag, v, range);
            CHECK_STR(err, want);
            config_free(&c);
        }
        /* Not a number: the message says what one looks like. */
        CHECK_INT(parse(&c, flag, "-1", NULL), ==, CONFIG_ERROR);
        snprintf(want, sizeof(want), "invalid value for %s: '-1' (", flag);
        CHECK(strncmp(err, want, strlen(want)) == 0 && strstr(err, range) && !strchr(err, '\n'));
        config_free(&c);
    }
    check_test = "test_bounds";
}

static void expect_error(const char *flag, const char *value, const char *message)
{
    struct config c;
    CHECK_INT(parse(&c, flag, value, NULL), ==, CONFIG_ERROR);
    CHECK_STR(err, message);
    config_free(&c);
}

/* The messages as an operator reads them, and the ranges chosen. */
static void test_range_messages(void)
{
    clear_env();
    expect_error("--send-queue-limit", "8g",
                 "invalid value for --send-queue-limit: '8g' (1k to 1g)");
    expect_error("--send-queue-limit", "lots",
                 "invalid value for --send-queue-limit: 'lots' (bytes, or with k, m or g: 1k to "
                 "1g)");
    CHECK(accepts("--send-queue-limit", "1g"));
    CHECK(!accepts("--send-queue-limit", "1073741825"));
    expect_error("--max-message-bytes", "255",
                 "invalid value for --max-message-bytes: '255' (256 to 16m)");
    expect_error("--max-message-bytes", "17m",
                 "invalid value for --max-message-bytes: '17m' (256 to 16m)");
    expect_error("--ping-interval", "99ms",
                 "invalid value for --ping-interval: '99ms' (100ms to 3600s)");
    expect_error("--ping-interval", "5m",
                 "invalid value for --ping-interval: '5m' (ms or s: 100ms to 3600s)");
    expect_error("--history", "1k",
                 "invalid value for --history: '1k' (a whole number: 0 to 10000)");
    expect_error("--max-header-bytes", "64k",
                 "invalid value for --max-header-bytes: '64k' (512 to 65535)");
    expect_error("--handshake-timeout", "999ms",
                 "invalid value for --handshake-timeout: '999ms' (1s to 300s)");
    expect_error("--shutdown-timeout", "601s",
                 "invalid value for --shutdown-timeout: '601s' (0 to 600s)");
    setenv("GATEWAY_SEND_QUEUE_LIMIT", "2g", 1);
    struct config c;
    CHECK_INT(parse(&c, NULL), ==, CONFIG_ERROR);
    CHECK_STR(err, "invalid value for GATEWAY_SEND_QUEUE_LIMIT (--send-queue-limit): '2g' (1k to "
                   "1g)");
    config_free(&c);
    clear_env();
}

/* The queue takes a largest message twice over: a join holds a room's
 * frames, and a busy connection its requests, under the same limit. */
static void test_queue_holds_a_message(void)
{
    clear_env();
    expect_error("--send-queue-limit", "64k",
                 "invalid value for --send-queue-limit: '64k' (at least twice "
                 "--max-message-bytes: 128k)");
    CHECK(accepts("--send-queue-limit", "128k"));
    struct config c;
    CHECK_INT(parse(&c, "--max-message-bytes", "1m", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--send-queue-limit") && strstr(err, "2m"));
    config_free(&c);
    CHECK_INT(parse(&c, "--max-message-bytes", "16m", "--send-queue-limit", "32m", NULL), ==,
              CONFIG_OK);
    config_free(&c);
    /* Checked after both sources. */
    setenv("GATEWAY_MAX_MESSAGE_BYTES", "1m", 1);
    CHECK_INT(parse(&c, "--send-queue-limit", "2m", NULL), ==, CONFIG_OK);
    config_free(&c);
    clear_env();
}

/* README's table of flags shows each row's default and range as they are. */
static void test_readme_table(void)
{
    FILE *f = fopen(GATEWAY_README, "r");
    if (!CHECK(f != NULL))
        return;
    char line[1024];
    size_t rows = 0;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "| `--", 5) != 0)
            continue;
        /* | `--flag ARG` | `ENV` | default | range | meaning | */
        char *cols[6] = {0};
        size_t n = 0;
        for (char *save, *t = strtok_r(line, "|", &save); t && n < 6;
             t = strtok_r(NULL, "|", &save))
            cols[n++] = t;
        if (!CHECK_INT(n, >=, 5))
            continue;
        const struct config_option *o = NULL;
        for (size_t i = 0; i < config_n_options; i++) {
            size_t len = strlen(config_options[i].flag);
            if (strncmp(cols[0] + 4, config_options[i].flag, len) == 0 &&
                (cols[0][4 + len] == ' ' || cols[0][4 + len] == '`'))
                o = &config_options[i];
        }
        if (!CHECK(o != NULL)) {
            fprintf(stderr, "  README row %s is no flag\n", cols[0]);
            continue;
        }
        rows++;
        char want[96], range[64] = "";
        if (o->dflt) {
            snprintf(want, sizeof(want), " `%s` ", o->dflt);
            if (!CHECK_STR(cols[2], want))
                fprintf(stderr, "  README: default of --%s\n", o->flag);
        }
        if (config_numeric(o))
            config_format_range(o, range, sizeof(range));
        snprintf(want, sizeof(want), range[0] ? " %s " : " ", range); /* "| |": none */
        if (!CHECK_STR(cols[3], want))
            fprintf(stderr, "  README: range of --%s\n", o->flag);
    }
    fclose(f);
    CHECK_INT(rows, ==, config_n_options);
}

static bool duration(const char *s, unsigned want)
{
    unsigned v = 12345;
    return config_parse_duration_ms(s, &v) && v == want;
}

static bool bad_duration(const char *s)
{
    unsigned v;
    return !config_parse_duration_ms(s, &v);
}

static void test_durations(void)
{
    CHECK(duration("54s", 54000));
    CHECK(duration("500ms", 500));
    CHECK(duration("5", 5000)); /* bare: seconds */
    CHECK(duration("0", 0));
    CHECK(duration("0ms", 0));
    CHECK(duration("1.5s", 1500));
    CHECK(duration("86400s", 86400000)); /* one day, the longest */
    CHECK(bad_duration("86401s"));
    CHECK(bad_duration("86400001ms"));
    CHECK(bad_duration(""));
    CHECK(bad_duration("s"));
    CHECK(bad_duration("ms"));
    CHECK(bad_duration("-1"));
    CHECK(bad_duration("-1ms"));
    CHECK(bad_duration("5m")); /* minutes are not a unit here */
    CHECK(bad_duration("5h"));
    CHECK(bad_duration("5 s"));
    CHECK(bad_duration("5sec"));
    CHECK(bad_duration("5mss"));
    CHECK(bad_duration("1e999"));
    CHECK(bad_duration("inf"));
    CHECK(bad_duration("infs"));
    /* NaN passes both range checks (every comparison with it is false). */
    CHECK(bad_duration("nan"));
    CHECK(bad_duration("nanms"));
}

static bool size_is(const char *s, size_t want)
{
    size_t v = 12345;
    return config_parse_size(s, &v) && v == want;
}

static bool bad_size(const char *s)
{
    size_t v;
    return !config_parse_size(s, &v);
}

static void test_sizes(void)
{
    CHECK(size_is("65536", 65536));
    CHECK(size_is("64k", 65536));
    CHECK(size_is("64K", 65536));
    CHECK(size_is("1m", 1048576));
    CHECK(size_is("1M", 1048576));
    CHECK(size_is("0", 0));                      /* the parser allows it; the flags want > 0 */
    CHECK(size_is("1099511627776", 1ULL << 40)); /* 1 TiB, the largest */
    CHECK(size_is("1073741824k", 1ULL << 40));
    CHECK(size_is("1048576m", 1ULL << 40));
    CHECK(size_is("1g", 1ULL << 30));
    CHECK(size_is("2G", 2ULL << 30));
    CHECK(size_is("1024g", 1ULL << 40));
    CHECK(bad_size("1099511627777"));
    CHECK(bad_size("1073741825k"));
    CHECK(bad_size("1048577m"));
    CHECK(bad_size("1025g"));
    CHECK(bad_size("99999999999999999999999"));
    CHECK(bad_size(""));
    CHECK(bad_size("k"));
    CHECK(bad_size("-1"));
    CHECK(bad_size("+1"));
    CHECK(bad_size(" 1"));
    CHECK(bad_size("1 "));
    CHECK(bad_size("1kb"));
    CHECK(bad_size("1t"));
    CHECK(bad_size("1.5k"));
    CHECK(bad_size("0x10"));
}

static bool hostport(const char *s, const char *host, int port)
{
    char h[64] = "";
    int p = -1;
    return config_parse_hostport(s, h, sizeof(h), &p) && strcmp(h, host) == 0 && p == port;
}

static bool bad_hostport(const char *s)
{
    char h[64];
    int p;
    return !config_parse_hostport(s, h, sizeof(h), &p);
}

static void test_hostport(void)
{
    CHECK(hostport("0.0.0.0:8080", "0.0.0.0", 8080));
    CHECK(hostport("127.0.0.1:0", "127.0.0.1", 0)); /* port 0: any free port */
    CHECK(hostport("localhost:65535", "localhost", 65535));
    CHECK(hostport("my-host_1.example:80", "my-host_1.example", 80));
    CHECK(hostport("[::1]:8080", "::1", 8080));
    CHECK(hostport("[fe80::1]:1", "fe80::1", 1));
    CHECK(bad_hostport("localhost"));
    CHECK(bad_hostport(":8080"));
    CHECK(bad_hostport("host:"));
    CHECK(bad_hostport("host:65536"));
    CHECK(bad_hostport("host:-1"));
    CHECK(bad_hostport("host:80x"));
    CHECK(bad_hostport("host:http"));
    CHECK(bad_hostport("bad host:80"));
    CHECK(bad_hostport("host/x:80"));
    CHECK(bad_hostport("[::1:80"));
    CHECK(bad_hostport("[]:80"));
    CHECK(bad_hostport(""));
    /* Longer than the buffer: refused, not cut. */
    char longhost[100];
    memset(longhost, 'h', 70);
    strcpy(longhost + 70, ":80");
    CHECK(bad_hostport(longhost));
}

static struct config url_cfg;
static const char *url_why;

static bool redis_url(const char *s, const char *host, int port)
{
    memset(&url_cfg, 0, sizeof(url_cfg));
    url_cfg.redis_port = -1;
    url_why = NULL;
    return config_parse_redis_url(s, &url_cfg, &url_why) && strcmp(url_cfg.redis_host, host) == 0 &&
           url_cfg.redis_port == port;
}

/* Refused, with a reason that holds want. */
static bool bad_redis_url(const char *s, const char *want)
{
    memset(&url_cfg, 0, sizeof(url_cfg));
    url_why = NULL;
    if (config_parse_redis_url(s, &url_cfg, &url_why))
        return false;
    if (!url_why || !strstr(url_why, want)) {
        fprintf(stderr, "  %s: reason '%s', not '%s'\n", s, url_why ? url_why : "(none)", want);
        return false;
    }
    /* A refused URL leaves no secret behind. */
    return url_cfg.redis_password[0] == '\0' && url_cfg.redis_password_from == CONFIG_SECRET_NONE;
}

static void test_redis_url(void)
{
    CHECK(redis_url("redis://127.0.0.1:6379", "127.0.0.1", 6379));
    CHECK(redis_url("redis://cache:6380", "cache", 6380));
    CHECK(redis_url("redis://cache", "cache", 6379));
    CHECK(redis_url("redis://cache/", "cache", 6379));
    CHECK(redis_url("redis://cache:1234/", "cache", 1234));
    CHECK(redis_url("redis://[::1]:6379", "::1", 6379));
    CHECK(redis_url("redis://[::1]", "::1", 6379));
    CHECK(url_cfg.redis_db == 0 && !url_cfg.redis_user[0] && !url_cfg.redis_password[0]);
    CHECK(bad_redis_url("redis://", "no host"));
    CHECK(bad_redis_url("redis://:6379", "host"));
    CHECK(bad_redis_url("redis://cache:0", "port"));
    CHECK(bad_redis_url("redis://cache:70000", "port"));
    CHECK(bad_redis_url("redis://cache:99999", "port"));
    CHECK(bad_redis_url("redis://cache:", "port"));
    CHECK(bad_redis_url("redis://cache:x", "port"));
    CHECK(!url_cfg.redis_tls);
    CHECK(redis_url("rediss://cache:6380", "cache", 6380) && url_cfg.redis_tls);
    CHECK(redis_url("rediss://u:p%40w@cache/3", "cache", 6379) && url_cfg.redis_tls &&
          url_cfg.redis_db == 3 && strcmp(url_cfg.redis_password, "p@w") == 0);
    static const char *const bad_schemes[] = {"redisss://cache:6379", "REDISS://cache:6379",
                                              "rediss:/cache",        "http://cache:6379",
                                              "cache:6379",           ""};
    for (size_t i = 0; i < sizeof(bad_schemes) / sizeof(bad_schemes[0]); i++)
        CHECK(bad_redis_url(bad_schemes[i], "not redis[s]://"));
    CHECK(!url_cfg.redis_cluster);
}

static void test_redis_cluster_url(void)
{
    CHECK(redis_url("redis+cluster://a:7000,b,[::1]:7002", "a", 7000) && url_cfg.redis_cluster &&
          !url_cfg.redis_tls && strcmp(url_cfg.redis_seeds, "a:7000,b:6379,[::1]:7002") == 0);
    CHECK(redis_url("rediss+cluster://u:p%40w@a:7000", "a", 7000) && url_cfg.redis_cluster &&
          url_cfg.redis_tls && strcmp(url_cfg.redis_user, "u") == 0 &&
          strcmp(url_cfg.redis_password, "p@w") == 0 && strcmp(url_cfg.redis_seeds, "a:7000") == 0);
    static const char *const bad[][2] = {{"redis+cluster://a:7000/1", "database 0 only"},
                                         {"redis+cluster://a:7000/", "database 0 only"},
                                         {"redis+cluster://a:7000,", "no host"},
                                         {"redis+cluster://,a:7000", "no host"},
                                         {"redis+cluster://a:7000,b:0", "port"},
                                         {"redis+cluster://u:p@", "no host"},
                                         {"redis+sentinel+cluster://a:7000/m", "not redis[s]://"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK(bad_redis_url(bad[i][0], bad[i][1]));
    char many[1200] = "redis+cluster://";
    while (strlen(many) < sizeof(many) - 20)
        strcat(many, "host-name-a:7000,");
    strcat(many, "h:1");
    CHECK(bad_redis_url(many, "1023 bytes"));
    /* A plain URL after a cluster one is plain again. */
    CHECK(redis_url("redis://cache", "cache", 6379) && !url_cfg.redis_cluster &&
          !url_cfg.redis_seeds[0]);
    CHECK(bad_redis_url("redis://bad host:1", "host"));
    /* Host names of 295 to 299 bytes without a port are too long for the
     * host buffer and must be refused without writing out of bounds (the
     * default port is appended to a 300-byte buffer). */
    for (size_t n = 294; n <= 300; n++) {
        char url[400] = "redis://";
        memset(url + 8, 'a', n);
        url[8 + n] = '\0';
        CHECK(bad_redis_url(url, "host"));
    }
}

static void test_redis_url_database(void)
{
    CHECK(redis_url("redis://cache/0", "cache", 6379) && url_cfg.redis_db == 0);
    CHECK(redis_url("redis://cache:7000/15", "cache", 7000) && url_cfg.redis_db == 15);
    /* Redis's databases setting allows more than 16: SELECT decides. */
    CHECK(redis_url("redis://cache/2147483647", "cache", 6379) && url_cfg.redis_db == 2147483647u);
    CHECK(bad_redis_url("redis://cache/2147483648", "database"));
    CHECK(bad_redis_url("redis://cache/x", "database"));
    CHECK(bad_redis_url("redis://cache/-1", "database"));
    CHECK(bad_redis_url("redis://cache/1/2", "database"));
    CHECK(bad_redis_url("redis://cache/1?x=y", "database"));
    CHECK(bad_redis_url("redis://cache/999999999999999999999", "database"));
}

static void test_redis_url_credentials(void)
{
    CHECK(redis_url("redis://gateway:s3cret@cache:6380/2", "cache", 6380));
    CHECK_STR(url_cfg.redis_user, "gateway");
    CHECK_STR(url_cfg.redis_password, "s3cret");
    CHECK(url_cfg.redis_password_from == CONFIG_SECRET_URL && url_cfg.redis_db == 2);
    /* A password alone: the default user. */
    CHECK(redis_url("redis://:pw@cache", "cache", 6379));
    CHECK_STR(url_cfg.redis_user, "");
    CHECK_STR(url_cfg.redis_password, "pw");
    /* A user alone: the password comes from elsewhere (checked later). */
    CHECK(redis_url("redis://gateway@cache", "cache", 6379));
    CHECK_STR(url_cfg.redis_user, "gateway");
    CHECK(url_cfg.redis_password_from == CONFIG_SECRET_NONE);
    /* Percent-encoded parts are decoded. */
    CHECK(redis_url("redis://us%65r%3a1:p%40ss%3Aword@[::1]:1/3", "::1", 1));
    CHECK_STR(url_cfg.redis_user, "user:1");
    CHECK_STR(url_cfg.redis_password, "p@ss:word");
    CHECK(redis_url("redis://u:%25%20%2F+@h", "h", 6379));
    CHECK_STR(url_cfg.redis_password, "% /+"); /* '+' is no space here */
    /* Raw ':' , '@' and '/' in a password still work: it ends at the
     * last '@'. */
    CHECK(redis_url("redis://u:a:b@c/d@h:2", "h", 2));
    CHECK_STR(url_cfg.redis_password, "a:b@c/d");
    CHECK(bad_redis_url("redis://:@cache", "empty password"));
    CHECK(bad_redis_url("redis://u:@cache", "empty password"));
    CHECK(bad_redis_url("redis://@cache", "nothing before the '@'"));
    CHECK(
        bad_redis_url("redis://u:p%4@cache", "'%' not followed by two hex digits in the password"));
    CHECK(bad_redis_url("redis://u:p%@cache", "two hex digits in the password"));
    CHECK(bad_redis_url("redis://u:p%zz@cache", "two hex digits in the password"));
    CHECK(bad_redis_url("redis://u%g1:p@cache", "two hex digits in the user"));
    CHECK(bad_redis_url("redis://u:p%00@cache", "%00 in the password"));
    CHECK(bad_redis_url("redis://u:p@", "no host"));
    CHECK(bad_redis_url("redis://u:p@cache:0", "port"));
    /* A good password before a bad port is not kept. */
    CHECK(bad_redis_url("redis://u:secret@cache:99999", "port"));
    char url[700] = "redis://u:";
    memset(url + 10, 'p', 512);
    strcpy(url + 522, "@h");
    CHECK(bad_redis_url(url, "password longer than 511 bytes"));
    url[10 + 511] = '@';
    url[10 + 512] = 'h';
    url[10 + 513] = '\0';
    CHECK(redis_url(url, "h", 6379) && strlen(url_cfg.redis_password) == 511);

    /* A parse over an earlier one (the twin's, then the flag's) keeps
     * nothing of it. */
    CHECK(redis_url("redis://u:p@cache/4", "cache", 6379));
    const char *why;
    CHECK(config_parse_redis_url("redis://other", &url_cfg, &why));
    CHECK(!url_cfg.redis_user[0] && !url_cfg.redis_password[0] && url_cfg.redis_db == 0 &&
          url_cfg.redis_password_from == CONFIG_SECRET_NONE);
}

static void test_redact_url(void)
{
    char buf[128];
    config_redact_url("redis://u:secret@cache:1/2", buf, sizeof(buf));
    CHECK_STR(buf, "redis://***@cache:1/2");
    config_redact_url("redis://u:a@b@cache", buf, sizeof(buf));
    CHECK_STR(buf, "redis://***@cache");
    config_redact_url("redis://cache:1", buf, sizeof(buf));
    CHECK_STR(buf, "redis://cache:1");
    config_redact_url("x:secret@y", buf, sizeof(buf));
    CHECK_STR(buf, "***@y");
}

static char pwfile[64];

static void write_file(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "w");
    if (CHECK(f != NULL)) {
        fwrite(text, 1, len, f);
        fclose(f);
    }
}

/* The password from one of the URL, GATEWAY_REDIS_PASSWORD and
 * --redis-password-file; two are an error naming the flag, and no error
 * shows the password. */
/* rediss:// and the --redis-tls-* flags: only together, files readable,
 * certificate and key both or neither; exit 2 names the flag. */
static void test_redis_tls_flags(void)
{
    clear_env();
    unsetenv(CONFIG_REDIS_PASSWORD_ENV);
    struct config c;
    char pem[64];
    snprintf(pem, sizeof(pem), "/tmp/test_config_pem.%d", (int)getpid());
    write_file(pem, "x\n", 2);

    CHECK_INT(parse(&c, "--redis", "rediss://h:7000", NULL), ==, CONFIG_OK);
    CHECK(c.redis_tls && !c.redis_tls_ca[0] && !c.redis_tls_insecure);
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-tls-ca", pem, "--redis-tls-cert", pem,
                    "--redis-tls-key", pem, "--redis-tls-server-name", "redis.example",
                    "--redis-tls-insecure-skip-verify", "on", NULL),
              ==, CONFIG_OK);
    CHECK(c.redis_tls && c.redis_tls_insecure);
    CHECK_STR(c.redis_tls_ca, pem);
    CHECK_STR(c.redis_tls_server_name, "redis.example");
    config_free(&c);
    /* The twin works as the flag. */
    setenv("GATEWAY_REDIS_TLS_CA", pem, 1);
    CHECK_INT(parse(&c, "--redis", "rediss://h", NULL), ==, CONFIG_OK);
    CHECK_STR(c.redis_tls_ca, pem);
    config_free(&c);
    unsetenv("GATEWAY_REDIS_TLS_CA");

    /* Each TLS flag on a plain URL, or with no Redis at all, is an error. */
    const char *flags[][2] = {{"--redis-tls-ca", pem},
                              {"--redis-tls-cert", pem},
                              {"--redis-tls-key", pem},
                              {"--redis-tls-server-name", "x"},
                              {"--redis-tls-insecure-skip-verify", "on"}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        CHECK_INT(parse(&c, "--redis", "redis://h", flags[i][0], flags[i][1], NULL), ==,
                  CONFIG_ERROR);
        CHECK(strstr(err, flags[i][0]) && strstr(err, "rediss://"));
        config_free(&c);
        CHECK_INT(parse(&c, flags[i][0], flags[i][1], NULL), ==, CONFIG_ERROR);
        config_free(&c);
    }
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-tls-insecure-skip-verify", "off", NULL),
              ==, CONFIG_OK);
    config_free(&c);

    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-tls-ca", "/nonexistent/ca.pem", NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-tls-ca") && strstr(err, "/nonexistent/ca.pem"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-tls-cert", pem, NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-tls-cert") && strstr(err, "go together"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-tls-key", pem, NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-tls-key"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-tls-cert", pem, "--redis-tls-key",
                    "/nonexistent/key.pem", NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-tls-key") && strstr(err, "cannot read"));
    config_free(&c);
    unlink(pem);
}

static void test_redis_password_sources(void)
{
    clear_env();
    unsetenv(CONFIG_REDIS_PASSWORD_ENV);
    struct config c;
    snprintf(pwfile, sizeof(pwfile), "/tmp/test_config_pw.%d", (int)getpid());
    write_file(pwfile, "from-file\r\n", 11);

    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_OK);
    CHECK_STR(c.redis_password, "from-file");
    CHECK(c.redis_password_from == CONFIG_SECRET_FILE);
    config_free(&c);
    CHECK(c.redis_password[0] == '\0'); /* zeroed */

    setenv("GATEWAY_REDIS_PASSWORD_FILE", pwfile, 1);
    CHECK_INT(parse(&c, "--redis", "redis://gateway@h", NULL), ==, CONFIG_OK);
    CHECK_STR(c.redis_user, "gateway");
    CHECK_STR(c.redis_password, "from-file");
    config_free(&c);
    unsetenv("GATEWAY_REDIS_PASSWORD_FILE");

    setenv(CONFIG_REDIS_PASSWORD_ENV, "from env", 1);
    CHECK_INT(parse(&c, "--redis", "redis://gateway@h", NULL), ==, CONFIG_OK);
    CHECK_STR(c.redis_password, "from env");
    CHECK(c.redis_password_from == CONFIG_SECRET_ENV);
    config_free(&c);

    /* Two sources: an error naming the flag, without the secrets. */
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, CONFIG_REDIS_PASSWORD_ENV));
    CHECK(!strstr(err, "from env") && !strstr(err, "from-file"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "redis://u:url-secret@h", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis") && strstr(err, CONFIG_REDIS_PASSWORD_ENV) &&
          !strstr(err, "url-secret") && !strstr(err, "from env"));
    config_free(&c);
    /* Empty: unset. */
    setenv(CONFIG_REDIS_PASSWORD_ENV, "", 1);
    CHECK_INT(parse(&c, "--redis", "redis://u:url-secret@h", NULL), ==, CONFIG_OK);
    CHECK(c.redis_password_from == CONFIG_SECRET_URL);
    config_free(&c);
    unsetenv(CONFIG_REDIS_PASSWORD_ENV);
    CHECK_INT(parse(&c, "--redis", "redis://u:url-secret@h", "--redis-password-file", pwfile, NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, "URL") && !strstr(err, "url-secret"));
    config_free(&c);

    /* A user needs a password. */
    CHECK_INT(parse(&c, "--redis", "redis://gateway@h", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis") && strstr(err, "a user without a password") &&
          !strstr(err, "gateway"));
    config_free(&c);

    /* Unreadable, empty, too long: exit 2 naming the flag. */
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", "/nonexistent/pw", NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, "/nonexistent/pw") &&
          strstr(err, "No such file"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis-password-file", "/tmp", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, "directory"));
    config_free(&c);
    write_file(pwfile, "\n", 1);
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, "empty"));
    config_free(&c);
    char big[600];
    memset(big, 'x', sizeof(big));
    write_file(pwfile, big, sizeof(big));
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-password-file") && strstr(err, "longer"));
    config_free(&c);
    write_file(pwfile, big, 511);
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_OK);
    CHECK_INT(strlen(c.redis_password), ==, 511);
    config_free(&c);
    write_file(pwfile, "a\0b", 3);
    CHECK_INT(parse(&c, "--redis", "redis://h", "--redis-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "NUL"));
    config_free(&c);
    unlink(pwfile);

    /* A malformed URL's error names --redis and shows no password. */
    CHECK_INT(parse(&c, "--redis", "redis://u:top%zzsecret@h", NULL), ==, CONFIG_ERROR);
    CHECK_STR(err, "invalid value for --redis: 'redis://***@h' (a '%' not followed by two hex "
                   "digits in the password)");
    config_free(&c);
    setenv("GATEWAY_REDIS", "redis://u:topsecret@h:0", 1);
    CHECK_INT(parse(&c, NULL), ==, CONFIG_ERROR);
    CHECK_STR(err, "invalid value for GATEWAY_REDIS (--redis): 'redis://***@h:0' (the port is not "
                   "a number from 1 to 65535)");
    config_free(&c);
    clear_env();
}

/* redis[s]+sentinel://[USER[:PASSWORD]@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]. */
static bool sentinel_url(const char *s, unsigned n, const char *master)
{
    memset(&url_cfg, 0, sizeof(url_cfg));
    url_why = NULL;
    if (!config_parse_redis_url(s, &url_cfg, &url_why)) {
        fprintf(stderr, "  %s: refused: %s\n", s, url_why ? url_why : "(none)");
        return false;
    }
    return url_cfg.redis_sentinel && url_cfg.n_redis_sentinels == n &&
           strcmp(url_cfg.redis_master_name, master) == 0 && !url_cfg.redis_host[0] &&
           url_cfg.redis_port == 0;
}

static void test_redis_sentinel_url(void)
{
    CHECK(sentinel_url("redis+sentinel://10.0.0.1:26380/mymaster", 1, "mymaster"));
    CHECK_STR(url_cfg.redis_sentinels[0].host, "10.0.0.1");
    CHECK_INT(url_cfg.redis_sentinels[0].port, ==, 26380);
    CHECK(!url_cfg.redis_tls && url_cfg.redis_db == 0 && !url_cfg.redis_password[0]);
    /* Sentinel's own default port; IPv6; several; a database; TLS. */
    CHECK(sentinel_url("rediss+sentinel://a,b:1,[::1],[::1]:2/chat-primary.v2_x/7", 4,
                       "chat-primary.v2_x"));
    CHECK(url_cfg.redis_tls && url_cfg.redis_db == 7);
    CHECK_STR(url_cfg.redis_sentinels[0].host, "a");
    CHECK_INT(url_cfg.redis_sentinels[0].port, ==, CONFIG_SENTINEL_PORT);
    CHECK_INT(url_cfg.redis_sentinels[1].port, ==, 1);
    CHECK_STR(url_cfg.redis_sentinels[2].host, "::1");
    CHECK_INT(url_cfg.redis_sentinels[2].port, ==, 26379);
    CHECK_INT(url_cfg.redis_sentinels[3].port, ==, 2);
    CHECK(sentinel_url("redis+sentinel://h/m/", 1, "m") && url_cfg.redis_db == 0);
    /* The credentials are the data nodes', decoded as with redis://. */
    CHECK(sentinel_url("redis+sentinel://gw:p%40ss@s1,s2/m", 2, "m"));
    CHECK_STR(url_cfg.redis_user, "gw");
    CHECK_STR(url_cfg.redis_password, "p@ss");
    CHECK(url_cfg.redis_password_from == CONFIG_SECRET_URL);
    CHECK(sentinel_url("redis+sentinel://:a/b@c@s1/m", 1, "m"));
    CHECK_STR(url_cfg.redis_password, "a/b@c");
    /* 16 sentinels, not 17. */
    char url[400] = "redis+sentinel://";
    for (int i = 0; i < 17; i++)
        snprintf(url + strlen(url), sizeof(url) - strlen(url), "%sh%d", i ? "," : "", i);
    CHECK(bad_redis_url(url, "more than 16 sentinels"));
    *strrchr(url, ',') = '\0';
    strcat(url, "/m");
    CHECK(sentinel_url(url, 16, "m"));

    CHECK(bad_redis_url("redis+sentinel://", "no sentinel"));
    CHECK(bad_redis_url("redis+sentinel:///m", "no sentinel"));
    CHECK(bad_redis_url("redis+sentinel://h", "no master name"));
    CHECK(bad_redis_url("redis+sentinel://h/", "no master name"));
    CHECK(bad_redis_url("redis+sentinel://h,/m", "an empty sentinel address"));
    CHECK(bad_redis_url("redis+sentinel://,h/m", "an empty sentinel address"));
    CHECK(bad_redis_url("redis+sentinel://h,,i/m", "an empty sentinel address"));
    CHECK(bad_redis_url("redis+sentinel://h:0/m", "port"));
    CHECK(bad_redis_url("redis+sentinel://h,i:65536/m", "port"));
    CHECK(bad_redis_url("redis+sentinel://bad host/m", "host"));
    CHECK(bad_redis_url("redis+sentinel://h:26379,h/m", "a sentinel listed twice"));
    CHECK(bad_redis_url("redis+sentinel://h/my%20master", "master name"));
    CHECK(bad_redis_url("redis+sentinel://h/a b", "master name"));
    CHECK(bad_redis_url("redis+sentinel://h/m/x", "database"));
    CHECK(bad_redis_url("redis+sentinel://h/m/1/2", "database"));
    CHECK(bad_redis_url("redis+sentinel://u:@h/m", "empty password"));
    CHECK(bad_redis_url("redis+sentinel://u:p%zz@h/m", "two hex digits in the password"));
    char name[200];
    memset(name, 'n', 129);
    name[129] = '\0';
    snprintf(url, sizeof(url), "redis+sentinel://h/%s", name);
    CHECK(bad_redis_url(url, "master name"));
    name[128] = '\0';
    snprintf(url, sizeof(url), "redis+sentinel://h/%s", name);
    CHECK(sentinel_url(url, 1, name));
    static const char *const bad_schemes[] = {"redis-sentinel://h/m", "sentinel://h/m",
                                              "redis+sentinels://h/m", "REDIS+SENTINEL://h/m"};
    for (size_t i = 0; i < sizeof(bad_schemes) / sizeof(bad_schemes[0]); i++)
        CHECK(bad_redis_url(bad_schemes[i], "redis[s]+sentinel://"));

    /* A later URL replaces an earlier one whole: the twin's sentinels are
     * not kept under the flag's redis://, nor its host under sentinels. */
    clear_env();
    struct config c;
    setenv("GATEWAY_REDIS", "redis+sentinel://s1,s2/m", 1);
    CHECK_INT(parse(&c, "--redis", "redis://h:1", NULL), ==, CONFIG_OK);
    CHECK(!c.redis_sentinel && c.n_redis_sentinels == 0 && !c.redis_master_name[0]);
    CHECK_STR(c.redis_host, "h");
    config_free(&c);
    setenv("GATEWAY_REDIS", "redis://h:1", 1);
    CHECK_INT(parse(&c, "--redis", "redis+sentinel://s1/m", NULL), ==, CONFIG_OK);
    CHECK(c.redis_sentinel && c.n_redis_sentinels == 1 && !c.redis_host[0]);
    config_free(&c);
    clear_env();
    /* TLS settings go with rediss+sentinel:// as with rediss://. */
    CHECK_INT(parse(&c, "--redis", "redis+sentinel://s1/m", "--redis-tls-server-name", "x", NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-tls-server-name") && strstr(err, "rediss+sentinel://"));
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", "rediss+sentinel://s1/m", "--redis-tls-server-name", "x", NULL),
              ==, CONFIG_OK);
    config_free(&c);
}

/* The sentinels' own password: GATEWAY_REDIS_SENTINEL_PASSWORD or
 * --redis-sentinel-password-file, one of them, only with sentinels. */
static void test_redis_sentinel_password(void)
{
    clear_env();
    unsetenv(CONFIG_REDIS_PASSWORD_ENV);
    unsetenv(CONFIG_REDIS_SENTINEL_PASSWORD_ENV);
    struct config c;
    snprintf(pwfile, sizeof(pwfile), "/tmp/test_config_spw.%d", (int)getpid());
    write_file(pwfile, "sentinel-file\n", 14);
    const char *url = "redis+sentinel://:data@s1,s2/m";

    CHECK_INT(parse(&c, "--redis", url, NULL), ==, CONFIG_OK);
    CHECK(!c.redis_sentinel_password[0] && c.redis_sentinel_password_from == CONFIG_SECRET_NONE);
    CHECK_STR(c.redis_password, "data");
    config_free(&c);
    CHECK_INT(parse(&c, "--redis", url, "--redis-sentinel-password-file", pwfile, NULL), ==,
              CONFIG_OK);
    CHECK_STR(c.redis_sentinel_password, "sentinel-file");
    CHECK(c.redis_sentinel_password_from == CONFIG_SECRET_FILE);
    CHECK_STR(c.redis_password, "data"); /* the data nodes' stays theirs */
    config_free(&c);
    CHECK(!c.redis_sentinel_password[0]); /* zeroed */
    setenv("GATEWAY_REDIS_SENTINEL_PASSWORD_FILE", pwfile, 1);
    CHECK_INT(parse(&c, "--redis", url, NULL), ==, CONFIG_OK);
    CHECK_STR(c.redis_sentinel_password, "sentinel-file");
    config_free(&c);
    unsetenv("GATEWAY_REDIS_SENTINEL_PASSWORD_FILE");
    setenv(CONFIG_REDIS_SENTINEL_PASSWORD_ENV, "sentinel env", 1);
    CHECK_INT(parse(&c, "--redis", url, NULL), ==, CONFIG_OK);
    CHECK_STR(c.redis_sentinel_password, "sentinel env");
    CHECK(c.redis_sentinel_password_from == CONFIG_SECRET_ENV);
    config_free(&c);

    /* Both: an error naming the flag and the variable, not the secrets. */
    CHECK_INT(parse(&c, "--redis", url, "--redis-sentinel-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-sentinel-password-file") &&
          strstr(err, CONFIG_REDIS_SENTINEL_PASSWORD_ENV) && !strstr(err, "sentinel env") &&
          !strstr(err, "sentinel-file"));
    config_free(&c);
    /* Without sentinels: it would be silently unused. */
    CHECK_INT(parse(&c, "--redis", "redis://h", NULL), ==, CONFIG_ERROR);
    CHECK(strstr(err, CONFIG_REDIS_SENTINEL_PASSWORD_ENV " (--redis-sentinel-password-file)") &&
          strstr(err, "redis+sentinel://"));
    config_free(&c);
    CHECK_INT(parse(&c, NULL), ==, CONFIG_ERROR);
    config_free(&c);
    setenv(CONFIG_REDIS_SENTINEL_PASSWORD_ENV, "", 1); /* empty: unset */
    CHECK_INT(parse(&c, "--redis", "redis://h", NULL), ==, CONFIG_OK);
    config_free(&c);
    unsetenv(CONFIG_REDIS_SENTINEL_PASSWORD_ENV);
    CHECK_INT(parse(&c, "--redis", "rediss://h", "--redis-sentinel-password-file", pwfile, NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-sentinel-password-file") && strstr(err, "redis+sentinel://"));
    config_free(&c);

    /* Unreadable, empty, too long: exit 2 naming the flag. */
    CHECK_INT(parse(&c, "--redis", url, "--redis-sentinel-password-file", "/nonexistent/spw", NULL),
              ==, CONFIG_ERROR);
    CHECK(strstr(err, "--redis-sentinel-password-file") && strstr(err, "/nonexistent/spw") &&
          strstr(err, "No such file"));
    config_free(&c);
    write_file(pwfile, "\r\n", 2);
    CHECK_INT(parse(&c, "--redis", url, "--redis-sentinel-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-sentinel-password-file") && strstr(err, "empty"));
    config_free(&c);
    char big[600];
    memset(big, 'x', sizeof(big));
    write_file(pwfile, big, sizeof(big));
    CHECK_INT(parse(&c, "--redis", url, "--redis-sentinel-password-file", pwfile, NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis-sentinel-password-file") && strstr(err, "longer"));
    config_free(&c);
    unlink(pwfile);
    /* A malformed sentinel URL's error names --redis and shows no password. */
    CHECK_INT(parse(&c, "--redis", "redis+sentinel://u:topsecret@s1/bad name", NULL), ==,
              CONFIG_ERROR);
    CHECK(strstr(err, "--redis") && strstr(err, "'redis+sentinel://***@s1/bad name'") &&
          strstr(err, "master name") && !strstr(err, "topsecret"));
    config_free(&c);
    clear_env();
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_defaults);
    RUN(test_every_flag);
    RUN(test_env_twins);
    RUN(test_bad_flags);
    RUN(test_pong_after_ping);
    RUN(test_origins);
    RUN(test_usage);
    RUN(test_table);
    RUN(test_bounds);
    RUN(test_range_messages);
    RUN(test_queue_holds_a_message);
    RUN(test_readme_table);
    RUN(test_durations);
    RUN(test_sizes);
    RUN(test_hostport);
    RUN(test_redis_url);
    RUN(test_redis_cluster_url);
    RUN(test_redis_url_database);
    RUN(test_redis_url_credentials);
    RUN(test_redact_url);
    RUN(test_redis_password_sources);
    RUN(test_redis_tls_flags);
    RUN(test_redis_sentinel_url);
    RUN(test_redis_sentinel_password);
    return CHECK_DONE("test_config");
}
