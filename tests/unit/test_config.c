#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"

#define DEFAULT_DIR "/srv/client"

static const char *const env_names[] = {
    "GATEWAY_LISTEN",           "GATEWAY_REDIS",
    "GATEWAY_REDIS_PREFIX",     "GATEWAY_ID",
    "GATEWAY_CLIENT_DIR",       "GATEWAY_MAX_MESSAGE_BYTES",
    "GATEWAY_PING_INTERVAL",    "GATEWAY_PONG_TIMEOUT",
    "GATEWAY_SEND_QUEUE_LIMIT", "GATEWAY_ALLOWED_ORIGINS",
    "GATEWAY_HISTORY",          "GATEWAY_SHUTDOWN_TIMEOUT",
    "GATEWAY_LOG_LEVEL",
};

static void clear_env(void)
{
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        unsetenv(env_names[i]);
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
                    "30s", "--send-queue-limit", "1k", "--allowed-origins", "https://y,https://z",
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
    CHECK_INT(c.send_queue_limit, ==, 1024);
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
    CHECK(!accepts("--history", "1000001"));
    CHECK(accepts("--history", "1000000"));
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
    static const char *const flags[] = {
        "--listen",           "--redis",
        "--redis-prefix",     "--id",
        "--client-dir",       "--max-message-bytes",
        "--ping-interval",    "--pong-timeout",
        "--send-queue-limit", "--allowed-origins",
        "--history",          "--shutdown-timeout",
        "--log-level",        "--help",
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (!CHECK(strstr(text, flags[i]) != NULL))
            fprintf(stderr, "  usage lacks %s\n", flags[i]);
    for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
        CHECK(strstr(text, env_names[i]) != NULL);
    free(text);
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
    CHECK(bad_size("1099511627777"));
    CHECK(bad_size("1073741825k"));
    CHECK(bad_size("1048577m"));
    CHECK(bad_size("99999999999999999999999"));
    CHECK(bad_size(""));
    CHECK(bad_size("k"));
    CHECK(bad_size("-1"));
    CHECK(bad_size("+1"));
    CHECK(bad_size(" 1"));
    CHECK(bad_size("1 "));
    CHECK(bad_size("1kb"));
    CHECK(bad_size("1g"));
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

static bool redis_url(const char *s, const char *host, int port)
{
    char h[256] = "";
    int p = -1;
    return config_parse_redis_url(s, h, sizeof(h), &p) && strcmp(h, host) == 0 && p == port;
}

static bool bad_redis_url(const char *s)
{
    char h[256];
    int p;
    return !config_parse_redis_url(s, h, sizeof(h), &p);
}

static void test_redis_url(void)
{
    CHECK(redis_url("redis://127.0.0.1:6379", "127.0.0.1", 6379));
    CHECK(redis_url("redis://cache:6380", "cache", 6380));
    CHECK(redis_url("redis://cache", "cache", 6379));
    CHECK(redis_url("redis://cache/", "cache", 6379));
    CHECK(redis_url("redis://cache:1234/", "cache", 1234));
    CHECK(redis_url("redis://[::1]:6379", "::1", 6379));
    CHECK(bad_redis_url("redis://cache/0")); /* database numbers: not supported */
    CHECK(bad_redis_url("redis://"));
    CHECK(bad_redis_url("redis://:6379"));
    CHECK(bad_redis_url("redis://cache:0"));
    CHECK(bad_redis_url("redis://cache:70000"));
    CHECK(bad_redis_url("redis://user:pw@cache:6379"));
    CHECK(bad_redis_url("rediss://cache:6379"));
    CHECK(bad_redis_url("http://cache:6379"));
    CHECK(bad_redis_url("cache:6379"));
    CHECK(bad_redis_url(""));
    /* Host names of 295 to 299 bytes without a port are too long for the
     * host buffer and must be refused without writing out of bounds (the
     * default port is appended to a 300-byte buffer). */
    for (size_t n = 294; n <= 300; n++) {
        char url[400] = "redis://";
        memset(url + 8, 'a', n);
        url[8 + n] = '\0';
        CHECK(bad_redis_url(url));
    }
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
    RUN(test_durations);
    RUN(test_sizes);
    RUN(test_hostport);
    RUN(test_redis_url);
    return CHECK_DONE("test_config");
}
