/* http's pure checks. http_origin_allowed(origin, host, allowed, n): an
 * upgrade passes when it has no Origin (not a browser), when the Origin's
 * host and port are the Host header's (the scheme is not compared), or
 * when the Origin is in --allowed-origins ("*": any). Comparisons are
 * whole and ignore ASCII case; ports are compared as written (no default
 * port is filled in). */
#include <stddef.h>

#include "check.h"
#include "http.h"

static bool allowed(const char *origin, const char *host)
{
    return http_origin_allowed(origin, host, NULL, 0);
}

static bool allowed_by(const char *origin, const char *host, const char *entry)
{
    char *list[] = {(char *)entry};
    return http_origin_allowed(origin, host, list, 1);
}

static void test_no_origin(void)
{
    CHECK(allowed(NULL, "chat.example:8080"));
    CHECK(allowed("", "chat.example:8080"));
    CHECK(allowed(NULL, NULL));
    CHECK(allowed("", ""));
}

static void test_same_origin(void)
{
    CHECK(allowed("http://chat.example:8080", "chat.example:8080"));
    CHECK(allowed("https://chat.example", "chat.example"));
    /* The scheme is not compared: behind a TLS-terminating proxy the page
     * is https and the gateway is reached over plain HTTP. */
    CHECK(allowed("https://chat.example:8080", "chat.example:8080"));
    CHECK(allowed("http://[::1]:8080", "[::1]:8080"));
    /* Host names are case-insensitive. */
    CHECK(allowed("http://Chat.Example:8080", "chat.example:8080"));
    CHECK(allowed("http://chat.example:8080", "CHAT.EXAMPLE:8080"));
}

/* Origins that are not the Host's, with no list. */
static const struct {
    const char *origin, *host;
} refused[] = {
    {"http://evil.example", "chat.example"},
    {"http://evil.example:8080", "chat.example:8080"},
    /* Whole host and port, not a prefix or a suffix. */
    {"http://chat.example.evil.example", "chat.example"},
    {"http://chat.example:8080.evil.example", "chat.example:8080"},
    {"http://evil-chat.example", "chat.example"},
    {"http://chat.exampl", "chat.example"},
    {"http://chat.example/", "chat.example"},
    /* Opaque origins (sandboxed frames, file: pages) are nobody's. */
    {"null", "chat.example"},
    {"chat.example", "chat.example"},
    /* Without a Host nothing is the same origin. */
    {"http://chat.example", NULL},
    {"http://chat.example", ""},
    {"http://", ""},
    /* Ports are compared as written: the default port is not filled in on
     * either side. */
    {"http://chat.example:8081", "chat.example:8080"},
    {"http://chat.example", "chat.example:8080"},
    {"http://chat.example:8080", "chat.example"},
    {"http://chat.example:80", "chat.example"},
    {"https://chat.example", "chat.example:443"},
};

static void test_other_origins(void)
{
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (!CHECK(!allowed(refused[i].origin, refused[i].host)))
            fprintf(stderr, "  allowed: %s for %s\n", refused[i].origin,
                    refused[i].host ? refused[i].host : "(no host)");
}

static void test_allowed_list(void)
{
    CHECK(allowed_by("https://app.example", "chat.example", "https://app.example"));
    CHECK(allowed_by("https://APP.example", "chat.example", "https://app.example"));
    CHECK(allowed_by("https://app.example", "chat.example", "HTTPS://App.Example"));
    /* Listed origins are compared whole: scheme and port count. */
    CHECK(!allowed_by("http://app.example", "chat.example", "https://app.example"));
    CHECK(!allowed_by("https://app.example:8443", "chat.example", "https://app.example"));
    CHECK(!allowed_by("https://app.example", "chat.example", "https://app.example:443"));
    CHECK(!allowed_by("https://app.example.evil", "chat.example", "https://app.example"));
    CHECK(!allowed_by("https://app.exampl", "chat.example", "https://app.example"));
    CHECK(allowed_by("null", "chat.example", "null"));
    /* "*" lets every origin in, opaque ones too. */
    CHECK(allowed_by("https://anything.example", "chat.example", "*"));
    CHECK(allowed_by("null", "chat.example", "*"));
    /* The list adds to the same origin; it does not replace it. */
    CHECK(allowed_by("http://chat.example", "chat.example", "https://app.example"));

    char *list[] = {"https://a.example", "https://b.example:8443", "http://c.example"};
    CHECK(http_origin_allowed("https://b.example:8443", "gw", list, 3));
    CHECK(http_origin_allowed("http://c.example", "gw", list, 3));
    CHECK(!http_origin_allowed("https://c.example", "gw", list, 3));
    /* n bounds the list: later entries are not read. */
    CHECK(!http_origin_allowed("http://c.example", "gw", list, 2));
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_no_origin);
    RUN(test_same_origin);
    RUN(test_other_origins);
    RUN(test_allowed_list);
    return CHECK_DONE("test_http");
}
