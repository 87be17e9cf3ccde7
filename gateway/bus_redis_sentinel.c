/* The Redis bus's Sentinel piece (redis[s]+sentinel://), after Redis's
 * "Sentinel client spec":
 *
 * - Before each connection attempt the sentinels are asked in turn,
 *   starting with the one that answered last, `SENTINEL
 *   get-master-addr-by-name NAME`; the first address one gives is the
 *   attempt's target (rb->link_found). When none gives one, the attempt
 *   fails with one line that says what each said (rb->link_step), and the
 *   connection piece retries with its backoff. A sentinel gets
 *   QUERY_TIMEOUT_MS to connect and answer.
 * - The connection piece checks ROLE on the server named before the link
 *   is ready: a stale answer that names a replica fails the attempt, and
 *   the next one asks another sentinel first (sentinel_distrust).
 * - One more connection, to one sentinel, is subscribed to +switch-master:
 *   a failover of our master tears the link down at once and connects to
 *   the new primary (rb->link_moved), without waiting for the old one to
 *   fail or for the backoff. When that connection is lost the next sentinel
 *   is watched, after a backoff of its own. A failover missed meanwhile
 *   shows anyway: a dead primary drops the link, and a demoted one refuses
 *   the next write (READONLY; the heartbeat writes every 5 s). A watch
 *   does not ask its sentinel for the primary when it starts: a sentinel
 *   just restarted can name the old one for seconds, and would take a
 *   healthy link away.
 *
 * Everything is asynchronous hiredis on the gateway's event base, like the
 * data connections; the sentinels' password (their requirepass) goes in
 * AUTH first on each connection, pipelined: a refusal is reported and the
 * connection dropped before anything else is read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "log.h"

#define QUERY_TIMEOUT_MS 1000
#define WATCH_BACKOFF_FIRST_MS 250
#define WATCH_BACKOFF_CAP_MS 5000
/* TCP keepalive on the watch (idle seconds before probes): a sentinel that
 * vanished without a word is noticed within about twice this. */
#define WATCH_KEEPALIVE_S 5

static const char switch_channel[] = "+switch-master";

struct sentinel {
    struct rbus *rb;
    const struct config *cfg;
    unsigned n;
    /* Asking: one connection at a time, to sentinel `asking`; `asked` of
     * this round so far; rounds start at `first`. */
    redisAsyncContext *query;
    SSL *query_ssl;
    unsigned asking, asked, first;
    struct event *query_timer;
    char reasons[1600]; /* "HOST:PORT: why; ..." of this round */
    size_t reasons_len;
    bool noauth; /* a sentinel wanted a password it did not get */
    /* Watching sentinel `watching` for +switch-master. */
    redisAsyncContext *watch;
    SSL *watch_ssl;
    unsigned watching;
    bool watch_live; /* subscribed */
    unsigned watch_attempt;
    struct event *watch_timer;
};

static const struct config_address *sentinel_at(const struct sentinel *s, unsigned i)
{
    return &s->cfg->redis_sentinels[i];
}

static void drop(redisAsyncContext **pc, SSL **pssl)
{
    redisAsyncContext *c = *pc;
    *pc = NULL;
    *pssl = NULL; /* freed with the context */
    if (c) {
        c->data = NULL; /* its callbacks, run while it is freed, are ignored */
        redisAsyncFree(c);
    }
}

/* AUTH with the sentinels' password, when there is one. */
static int send_auth(const struct sentinel *s, redisAsyncContext *c, redisCallbackFn *fn)
{
    const char *pw = s->cfg->redis_sentinel_password;
    if (!pw[0])
        return REDIS_OK;
    const char *argv[2] = {"AUTH", pw};
    size_t lens[2] = {4, strlen(pw)};
    return redisAsyncCommandArgv(c, fn, NULL, 2, argv, lens);
}

static int send_ask(const struct sentinel *s, redisAsyncContext *c, redisCallbackFn *fn)
{
    const char *name = s->cfg->redis_master_name;
    const char *argv[3] = {"SENTINEL", "get-master-addr-by-name", name};
    size_t lens[3] = {8, 23, strlen(name)};
    return redisAsyncCommandArgv(c, fn, NULL, 3, argv, lens);
}

/* A host as a sentinel may give it, printable for the log and fit for
 * hiredis: what --redis takes for a host. */
static bool valid_host(const char *h, size_t n)
{
    if (!n || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(".-:_", ch)))
            return false;
    }
    return true;
}

static bool valid_port(const char *p, size_t n, int *port)
{
    long v = 0;
    if (!n || n > 5)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *port = (int)v;
    return v >= 1 && v <= 65535;
}

/* get-master-addr-by-name's answer, an address, into host (256 bytes) and
 * port; NULL, or why it is none. */
static const char *parse_address(const redisReply *r, char *host, int *port)
{
    if (r->type == REDIS_REPLY_ERROR)
        return NULL; /* the caller reports r->str */
    if (r->type == REDIS_REPLY_NIL)
        return "knows no master of that name";
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_STRING ||
        !valid_host(r->element[0]->str, r->element[0]->len) ||
        !valid_port(r->element[1]->str, r->element[1]->len, port))
        return "answered something that is not HOST PORT";
    memcpy(host, r->element[0]->str, r->element[0]->len);
    host[r->element[0]->len] = '\0';
    return "";
}

/* ---- asking ---- */

static void ask(struct sentinel *s);
static void on_connect(const redisAsyncContext *c, int status);
static void on_disconnect(const redisAsyncContext *c, int status);
static void on_auth(redisAsyncContext *c, void *r, void *privdata);

/* The sentinel asked could not name the primary (why): ask the next, or
 * fail the attempt with what each said. */
static void next(struct sentinel *s, const char *why)
{
    const struct config_address *a = sentinel_at(s, s->asking);
    if (strstr(why, "NOAUTH"))
        s->noauth = true;
    size_t room = sizeof(s->reasons) - s->reasons_len;
    int w = snprintf(s->reasons + s->reasons_len, room, "%s%s:%d: %s", s->reasons_len ? "; " : "",
                     a->host, a->port, why);
    if (w > 0)
        s->reasons_len += (size_t)w < room ? (size_t)w : room - 1;
    evtimer_del(s->query_timer);
    drop(&s->query, &s->query_ssl);
    if (++s->asked < s->n) {
        s->asking = (s->asking + 1) % s->n;
        ask(s);
        return;
    }
    char line[sizeof(s->reasons) + 400];
    snprintf(line, sizeof(line), "no sentinel named the primary of '%s' (%s)%s",
             s->cfg->redis_master_name, s->reasons,
             s->noauth ? "; a sentinel wants a password: give --redis-sentinel-password-file or "
                         "" CONFIG_REDIS_SENTINEL_PASSWORD_ENV
                       : "");
    s->rb->link_step(s->rb, line);
}

static void on_query_answer(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct sentinel *s = c->data;
    const redisReply *reply = r;
    if (!s || !reply) /* NULL: the connection went, which its callback reports */
        return;
    char host[256];
    int port = 0;
    const char *problem = parse_address(reply, host, &port);
    if (!problem) {
        char why[600];
        snprintf(why, sizeof(why), "%s%s", reply->str,
                 strstr(reply->str, "unknown command") ? " (is this a sentinel's port?)" : "");
        next(s, why);
        return;
    }
    if (problem[0]) {
        next(s, problem);
        return;
    }
    const struct config_address *a = sentinel_at(s, s->asking);
    char named_by[ADDR_MAX];
    snprintf(named_by, sizeof(named_by), "sentinel %s:%d", a->host, a->port);
    s->first = s->asking;
    evtimer_del(s->query_timer);
    drop(&s->query, &s->query_ssl);
    s->rb->link_found(s->rb, host, port, named_by);
}

static void on_query_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct sentinel *s = arg;
    char why[64];
    snprintf(why, sizeof(why), "no answer within %d ms", QUERY_TIMEOUT_MS);
    next(s, why);
}

/* A connection to sentinel i, or NULL with why (300 bytes). */
static redisAsyncContext *open_at(struct sentinel *s, unsigned i, SSL **ssl, char *why)
{
    const struct config_address *a = sentinel_at(s, i);
    return redis_open(s->rb, a->host, a->port, ssl, s, on_connect, on_disconnect, why, 300);
}

static void ask(struct sentinel *s)
{
    char why[300];
    if (!(s->query = open_at(s, s->asking, &s->query_ssl, why))) {
        next(s, why);
        return;
    }
    if (send_auth(s, s->query, on_auth) != REDIS_OK ||
        send_ask(s, s->query, on_query_answer) != REDIS_OK) {
        next(s, "out of memory");
        return;
    }
    struct timeval tv = {QUERY_TIMEOUT_MS / 1000, (QUERY_TIMEOUT_MS % 1000) * 1000};
    evtimer_add(s->query_timer, &tv);
}

void sentinel_discover(struct sentinel *s)
{
    sentinel_cancel(s);
    s->asked = 0;
    s->asking = s->first;
    s->reasons[0] = '\0';
    s->reasons_len = 0;
    s->noauth = false;
    ask(s);
}

void sentinel_cancel(struct sentinel *s)
{
    evtimer_del(s->query_timer);
    drop(&s->query, &s->query_ssl);
}

void sentinel_distrust(struct sentinel *s)
{
    s->first = (s->first + 1) % s->n;
}

/* ---- watching ---- */

static void watch_start(struct sentinel *s);

static void watch_lost(struct sentinel *s, const char *why)
{
    const struct config_address *a = sentinel_at(s, s->watching);
    if (s->watch_live)
        log_warn("redis: lost the watch for failovers on sentinel %s:%d (%s); watching the next "
                 "sentinel",
                 a->host, a->port, why);
    else
        log_debug("redis: cannot watch sentinel %s:%d for failovers (%s)", a->host, a->port, why);
    drop(&s->watch, &s->watch_ssl);
    s->watch_live = false;
    s->watching = (s->watching + 1) % s->n;
    unsigned shift = s->watch_attempt < 10 ? s->watch_attempt : 10;
    unsigned delay = WATCH_BACKOFF_FIRST_MS << shift;
    if (delay > WATCH_BACKOFF_CAP_MS)
        delay = WATCH_BACKOFF_CAP_MS;
    s->watch_attempt++;
    struct timeval tv = {delay / 1000, (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(s->watch_timer, &tv);
}

/* ---- both connections' ends ---- */

/* The query or the watch connection c could not connect or closed
 * (hiredis frees it after this callback): the next sentinel, with why
 * (OpenSSL's reason when TLS has one, else hiredis's). */
static void ended(const redisAsyncContext *c, const char *errstr)
{
    struct sentinel *s = c->data;
    if (!s)
        return; /* we dropped it */
    char buf[300];
    SSL *ssl = c == s->query ? s->query_ssl : s->watch_ssl;
    const char *why = s->rb->tls && redis_tls_why(ssl, NULL, buf, sizeof(buf)) ? buf : errstr;
    if (c == s->query) {
        s->query = NULL;
        next(s, why);
    } else if (c == s->watch) {
        s->watch = NULL;
        watch_lost(s, why);
    }
}

static void on_connect(const redisAsyncContext *c, int status)
{
    if (status != REDIS_OK)
        ended(c, c->errstr);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    ended(c, status == REDIS_OK ? "connection closed" : c->errstr);
}

/* AUTH's answer on either connection: a refusal drops it (what was sent
 * behind it goes with it) for the next sentinel. */
static void on_auth(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct sentinel *s = c->data;
    const redisReply *reply = r;
    if (!s || !reply || reply->type != REDIS_REPLY_ERROR)
        return;
    char why[600];
    snprintf(why, sizeof(why), "AUTH (password %s) refused: %s",
             s->cfg->redis_sentinel_password_from == CONFIG_SECRET_FILE
                 ? "from --redis-sentinel-password-file"
                 : "from " CONFIG_REDIS_SENTINEL_PASSWORD_ENV,
             reply->str);
    if (c == s->query)
        next(s, why);
    else if (c == s->watch)
        watch_lost(s, why);
}

/* "+switch-master NAME OLD-HOST OLD-PORT NEW-HOST NEW-PORT". */
static void on_switch(struct sentinel *s, const char *msg, size_t len)
{
    char name[CONFIG_MASTER_NAME_MAX + 1], old_host[256], new_host[256];
    char old_port[8], new_port[8];
    char text[1024];
    if (len >= sizeof(text))
        return;
    memcpy(text, msg, len);
    text[len] = '\0';
    int port = 0, was = 0;
    if (sscanf(text, "%128s %255s %7s %255s %7s", name, old_host, old_port, new_host, new_port) !=
            5 ||
        strcmp(name, s->cfg->redis_master_name) != 0)
        return; /* another master's */
    /* Checked before they are logged or connected to. */
    if (!valid_host(old_host, strlen(old_host)) || !valid_port(old_port, strlen(old_port), &was) ||
        !valid_host(new_host, strlen(new_host)) || !valid_port(new_port, strlen(new_port), &port)) {
        log_warn("redis: ignored a +switch-master of '%s' that does not name two addresses", name);
        return;
    }
    const struct config_address *a = sentinel_at(s, s->watching);
    char named_by[ADDR_MAX], why[1400];
    snprintf(named_by, sizeof(named_by), "sentinel %s:%d", a->host, a->port);
    snprintf(why, sizeof(why), "failover: %s says the primary of '%s' moved from %s:%d to %s:%d",
             named_by, name, old_host, was, new_host, port);
    s->first = s->watching;
    s->rb->link_moved(s->rb, new_host, port, named_by, why);
}

static void on_watch_message(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct sentinel *s = c->data;
    const redisReply *reply = r;
    if (!s || !reply)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[600];
        snprintf(why, sizeof(why), "SUBSCRIBE refused: %s", reply->str);
        watch_lost(s, why);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcmp(kind, "subscribe") == 0) {
        const struct config_address *a = sentinel_at(s, s->watching);
        s->watch_live = true;
        s->watch_attempt = 0;
        log_info("redis: watching sentinel %s:%d for failovers of '%s'", a->host, a->port,
                 s->cfg->redis_master_name);
    } else if (strcmp(kind, "message") == 0 && reply->element[2]->type == REDIS_REPLY_STRING) {
        on_switch(s, reply->element[2]->str, reply->element[2]->len);
    }
}

static void watch_start(struct sentinel *s)
{
    char why[300];
    if (!(s->watch = open_at(s, s->watching, &s->watch_ssl, why))) {
        watch_lost(s, why);
        return;
    }
    redisEnableKeepAliveWithInterval(&s->watch->c, WATCH_KEEPALIVE_S);
    const char *argv[2] = {"SUBSCRIBE", switch_channel};
    size_t lens[2] = {9, sizeof(switch_channel) - 1};
    if (send_auth(s, s->watch, on_auth) != REDIS_OK ||
        redisAsyncCommandArgv(s->watch, on_watch_message, NULL, 2, argv, lens) != REDIS_OK)
        watch_lost(s, "out of memory");
}

static void on_watch_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    watch_start(arg);
}

struct sentinel *sentinel_new(struct rbus *rb)
{
    struct sentinel *s = calloc(1, sizeof(*s));
    if (!s) {
        log_error("redis: out of memory setting up the sentinels");
        return NULL;
    }
    s->rb = rb;
    s->cfg = rb->base.cfg;
    s->n = s->cfg->n_redis_sentinels;
    s->query_timer = evtimer_new(rb->base.base, on_query_timeout, s);
    s->watch_timer = evtimer_new(rb->base.base, on_watch_timer, s);
    if (!s->n || !s->query_timer || !s->watch_timer) {
        log_error("redis: out of memory setting up the sentinels");
        sentinel_free(s);
        return NULL;
    }
    char list[CONFIG_SENTINELS_MAX * 24 + 64];
    size_t len = 0;
    for (unsigned i = 0; i < s->n && len < sizeof(list); i++) {
        int w = snprintf(list + len, sizeof(list) - len, "%s%s:%d", i ? ", " : "",
                         s->cfg->redis_sentinels[i].host, s->cfg->redis_sentinels[i].port);
        if (w > 0)
            len += (size_t)w;
    }
    log_info("redis: the primary of '%s' as the sentinels name it (%s%s)",
             s->cfg->redis_master_name, list, len >= sizeof(list) ? "..." : "");
    watch_start(s);
    return s;
}

void sentinel_free(struct sentinel *s)
{
    if (!s)
        return;
    drop(&s->query, &s->query_ssl);
    drop(&s->watch, &s->watch_ssl);
    if (s->query_timer)
        event_free(s->query_timer);
    if (s->watch_timer)
        event_free(s->watch_timer);
    free(s);
}
