#include "api.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "clock.h"
#include "gateway.h"
#include "list.h"
#include "log.h"
#include "metrics.h"

/* How often closed connections are looked for (see sweep). */
#define SWEEP_MS 100
#define LISTEN_BACKLOG 128
/* Bodies up to this many times --api-max-body-bytes are read and refused
 * by the API itself; larger ones by evhttp while they arrive. */
#define BODY_HARD_CAP 4
/* What a disconnect closes with unless the backend says. */
#define DEFAULT_CLOSE_CODE 1008
#define DEFAULT_CLOSE_REASON "disconnected by the server"

struct api {
    const struct config *cfg;
    struct gateway *g;
    struct evhttp *http;
    struct evconnlistener *listener; /* evhttp's once bound */
    bool paused;                     /* accepting stopped at the limit */
    /* Every connection's bufferevent, with a reference of ours: evhttp
     * tells nobody when it frees a connection, so the sweep finds the ones
     * it let go (all their callbacks cleared) and drops the reference,
     * which closes the socket. This is how the limit counts connections. */
    struct bufferevent **conns;
    size_t n_conns, cap_conns;
    struct event *sweep_timer;
    struct list calls; /* requests waiting for the bus */
    unsigned char key_hash[32];
};

/* A request waiting for the bus's answer. */
struct call {
    struct api *api; /* NULL once the API is gone: the answer is dropped */
    struct evhttp_request *req;
    struct list node;
    enum metrics_api_endpoint ep;
    unsigned limit; /* history: how many messages at most */
    bool newest;    /* history: the newest limit (no since) */
    char room[PROTO_ROOM_MAX + 1];
    size_t room_len;
};

static int status_index(int status)
{
    for (int i = 0; i < API_ST_COUNT; i++)
        if (metrics_api_status_codes[i] == status)
            return i;
    return API_ST_500;
}

/* Sends body (taken) with status, counted under ep. */
static void reply(struct evhttp_request *req, enum metrics_api_endpoint ep, int status,
                  json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        status = 500;
        text = strdup("{\"error\":\"internal\",\"reason\":\"out of memory\"}");
    }
    metrics.api_requests[ep][status_index(status)]++;
    struct evbuffer *out = evbuffer_new();
    if (out && text) {
        evbuffer_add(out, text, strlen(text));
        evbuffer_add(out, "\n", 1);
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    const char *phrase = status == 200   ? "OK"
                         : status == 400 ? "Bad Request"
                         : status == 401 ? "Unauthorized"
                         : status == 404 ? "Not Found"
                         : status == 405 ? "Method Not Allowed"
                         : status == 503 ? "Service Unavailable"
                                         : "Internal Server Error";
    evhttp_send_reply(req, status, phrase, out);
    if (out)
        evbuffer_free(out);
    free(text);
}

/* {"error": code, "reason": a sentence} */
static void fail(struct evhttp_request *req, enum metrics_api_endpoint ep, int status,
                 const char *code, const char *reason)
{
    reply(req, ep, status, json_pack("{s:s, s:s}", "error", code, "reason", reason));
}

static struct call *call_new(struct api *a, struct evhttp_request *req,
                             enum metrics_api_endpoint ep)
{
    struct call *c = calloc(1, sizeof(*c));
    if (!c) {
        fail(req, ep, 500, "internal", "out of memory");
        return NULL;
    }
    c->api = a;
    c->req = req;
    c->ep = ep;
    list_insert_tail(&a->calls, &c->node);
    return c;
}

/* The bus answered: the call's request, or NULL when the API went away
 * meanwhile (and then nothing is to be sent). Frees the call. */
static struct evhttp_request *call_finish(struct call *c, enum metrics_api_endpoint *ep)
{
    struct evhttp_request *req = c->api ? c->req : NULL;
    *ep = c->ep;
    if (c->api)
        list_remove(&c->node);
    free(c);
    return req;
}

static void unavailable(struct evhttp_request *req, enum metrics_api_endpoint ep)
{
    fail(req, ep, 503, "unavailable", "the cluster is unreachable: nothing was done");
}

/* call_finish for an answer with a status: NULL also when the bus failed,
 * after answering 503. */
static struct evhttp_request *answered(struct call *c, int status, enum metrics_api_endpoint *ep)
{
    struct evhttp_request *req = call_finish(c, ep);
    if (req && status < 0) {
        unavailable(req, *ep);
        return NULL;
    }
    return req;
}

/* ---- request bodies ---- */

/* The body as a JSON object, or NULL after answering 400. */
static json_t *body_object(struct evhttp_request *req, enum metrics_api_endpoint ep)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const char *data = len ? (const char *)evbuffer_pullup(in, -1) : "";
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        fail(req, ep, 400, "bad_json", "the body must be a JSON object");
        return NULL;
    }
    return o;
}

/* A string field: true with *s NULL when absent and optional (null is not
 * absent: it is a value of the wrong type). */
static bool string_of(json_t *o, const char *key, bool required, const char **s, size_t *len)
{
    json_t *v = json_object_get(o, key);
    *s = NULL;
    *len = 0;
    if (!v)
        return !required;
    if (!json_is_string(v))
        return false;
    *s = json_string_value(v);
    *len = json_string_length(v);
    return true;
}

/* A name-like field (room, user, sender): 1 to max bytes of UTF-8 without
 * control characters; false after answering 400 bad_<key>. */
static bool need_name(struct evhttp_request *req, enum metrics_api_endpoint ep, json_t *o,
                      const char *key, size_t max, const char **s, size_t *len)
{
    if (string_of(o, key, true, s, len) && proto_valid_name(*s, *len, max))
        return true;
    char code[24], why[96];
    snprintf(code, sizeof(code), "bad_%s", key);
    snprintf(why, sizeof(why), "%s must be 1 to %zu bytes of UTF-8 without control characters", key,
             max);
    fail(req, ep, 400, code, why);
    return false;
}

/* An optional integer field within [min, max]; dflt when absent. */
static bool int_of(json_t *o, const char *key, long min, long max, long dflt, long *out)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = dflt;
        return true;
    }
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return false;
    *out = (long)json_integer_value(v);
    return true;
}

/* ---- publish and broadcast ---- */

static void published(void *arg, int status, const struct msgid *id, struct frame *original)
{
    enum metrics_api_endpoint ep;
    struct evhttp_request *req = call_finish(arg, &ep);
    if (status < 0 || !id) {
        metrics.bus_publish_failures++;
        if (req)
            fail(req, ep, 503, "unavailable",
                 "the message could not reach the cluster: nothing was delivered");
        return;
    }
    if (!req)
        return;
    char buf[MSGID_STR_MAX];
    msgid_format(id, buf);
    reply(req, ep, 200, json_pack("{s:s, s:b}", "id", buf, "duplicate", original != NULL));
}

/* publish (room given) and broadcast (room NULL). */
static void do_publish(struct api *a, struct evhttp_request *req, json_t *o,
                       enum metrics_api_endpoint ep)
{
    const char *room = NULL, *sender, *content, *key;
    size_t room_len = 0, sender_len, content_len, key_len;
    if ((ep == API_EP_PUBLISH &&
         !need_name(req, ep, o, "room", PROTO_ROOM_MAX, &room, &room_len)) ||
        !need_name(req, ep, o, "sender", PROTO_NAME_MAX, &sender, &sender_len))
        return;
    if (!string_of(o, "content", true, &content, &content_len) || !content_len ||
        content_len > a->cfg->max_message_bytes) {
        fail(req, ep, 400, "bad_content",
             "content must be a non-empty string within --max-message-bytes");
        return;
    }
    if (!string_of(o, "idempotency_key", false, &key, &key_len) ||
        (key && !proto_valid_cid(key, key_len))) {
        fail(req, ep, 400, "bad_idempotency_key",
             "idempotency_key must be 1 to 64 bytes of printable ASCII");
        return;
    }
    if (key && !a->cfg->dedupe_window_ms) {
        fail(req, ep, 400, "bad_idempotency_key",
             "idempotency keys are off on this gateway (--dedupe-window 0)");
        return;
    }
    struct bus_chat m = {
        .room = room, .room_len = room_len, .sender = sender, .cid = key, .cid_len = key_len};
    char *rest = proto_chat_rest(room, room_len, sender, content, content_len, key, key_len,
                                 clock_wall_ms(), &m.len);
    struct call *c = rest ? call_new(a, req, ep) : NULL;
    if (!c) {
        if (!rest)
            fail(req, ep, 500, "internal", "out of memory");
        free(rest);
        return;
    }
    m.rest = rest;
    metrics.bus_published++;
    a->g->bus->ops->publish_chat(a->g->bus, &m, published, c);
    free(rest);
}

/* ---- presence, rooms, history ---- */

static void presence_answered(void *arg, int status, const char *const *names, size_t n)
{
    struct call *c = arg;
    json_t *room = json_stringn(c->room, c->room_len);
    enum metrics_api_endpoint ep;
    struct evhttp_request *req = answered(c, status, &ep);
    if (!req) {
        json_decref(room);
        return;
    }
    json_t *users = json_array();
    for (size_t i = 0; users && i < n; i++)
        json_array_append_new(users, json_string(names[i]));
    reply(req, ep, 200, json_pack("{s:o, s:o}", "room", room, "users", users));
}

/* The room of a request into a call; NULL after answering 400. */
static struct call *room_call(struct api *a, struct evhttp_request *req, json_t *o,
                              enum metrics_api_endpoint ep)
{
    const char *room;
    size_t len;
    if (!need_name(req, ep, o, "room", PROTO_ROOM_MAX, &room, &len))
        return NULL;
    struct call *c = call_new(a, req, ep);
    if (c) {
        memcpy(c->room, room, len);
        c->room_len = len;
    }
    return c;
}

static void do_presence(struct api *a, struct evhttp_request *req, json_t *o)
{
    struct call *c = room_call(a, req, o, API_EP_PRESENCE);
    if (c)
        a->g->bus->ops->presence(a->g->bus, c->room, c->room_len, presence_answered, c);
}

static void rooms_answered(void *arg, int status, const struct bus_room_count *rooms, size_t n)
{
    enum metrics_api_endpoint ep;
    struct evhttp_request *req = answered(arg, status, &ep);
    if (!req)
        return;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr,
                              json_pack("{s:s%, s:I}", "room", rooms[i].room, rooms[i].room_len,
                                        "members", (json_int_t)rooms[i].members));
    reply(req, ep, 200, json_pack("{s:o}", "rooms", arr));
}

static void history_answered(void *arg, int status, const struct bus_join_result *r)
{
    struct call *c = arg;
    json_t *room = json_stringn(c->room, c->room_len);
    size_t limit = c->limit;
    bool newest = c->newest;
    enum metrics_api_endpoint ep;
    struct evhttp_request *req = answered(c, status, &ep);
    if (!req) {
        json_decref(room);
        return;
    }
    /* Without since the newest limit messages; with since the oldest limit
     * after it, so that a reader pages forward with the last id it got. */
    size_t n = r->n < limit ? r->n : limit;
    size_t first = newest ? r->n - n : 0;
    json_t *messages = json_array();
    for (size_t i = first; messages && i < first + n; i++) {
        struct frame *f = r->history[i];
        /* As clients get them in joined's history. */
        json_t *m = json_loadb((const char *)frame_data(f), f->len, 0, NULL);
        if (m)
            json_array_append_new(messages, m);
    }
    reply(req, ep, 200,
          json_pack("{s:o, s:o, s:b}", "room", room, "messages", messages, "truncated",
                    r->truncated));
}

static void do_history(struct api *a, struct evhttp_request *req, json_t *o)
{
    const char *since_s;
    size_t since_len;
    struct msgid since;
    long limit;
    if (!string_of(o, "since", false, &since_s, &since_len) ||
        (since_s && !msgid_parse(since_s, since_len, &since))) {
        fail(req, API_EP_HISTORY, 400, "bad_since",
             "since must be a message id such as \"1732190000000-0\"");
        return;
    }
    if (!int_of(o, "limit", 1, 10000, 100, &limit)) {
        fail(req, API_EP_HISTORY, 400, "bad_limit", "limit must be a whole number from 1 to 10000");
        return;
    }
    struct call *c = room_call(a, req, o, API_EP_HISTORY);
    if (!c)
        return;
    c->limit = (unsigned)limit;
    c->newest = !since_s;
    a->g->bus->ops->history(a->g->bus, c->room, c->room_len, since_s ? &since : NULL,
                            history_answered, c);
}

/* ---- disconnect and removal from a room: control frames ---- */

static void send_control(struct api *a, struct evhttp_request *req, enum metrics_api_endpoint ep,
                         const struct proto_control *ctl)
{
    struct frame *f = proto_control(ctl);
    if (!f) {
        fail(req, ep, 500, "internal", "out of memory");
        return;
    }
    /* On the broadcast channel, as every gateway has it subscribed. */
    int rc = a->g->bus->ops->publish_frame(a->g->bus, NULL, 0, f);
    frame_unref(f);
    if (rc < 0)
        unavailable(req, ep);
    else
        reply(req, ep, 200, json_object());
}

static void do_disconnect(struct api *a, struct evhttp_request *req, json_t *o)
{
    struct proto_control ctl = {.op = PROTO_CONTROL_DISCONNECT};
    const char *user, *reason;
    size_t user_len, reason_len;
    long code;
    if (!need_name(req, API_EP_DISCONNECT, o, "user", PROTO_NAME_MAX, &user, &user_len))
        return;
    /* 1000 and 1008 for what they mean, 3000 to 4999 for applications; the
     * others are reserved or meant for failures the endpoints find. */
    if (!int_of(o, "code", 1000, 4999, DEFAULT_CLOSE_CODE, &code) ||
        (code != 1000 && code != 1008 && code < 3000)) {
        fail(req, API_EP_DISCONNECT, 400, "bad_code", "code must be 1000, 1008 or 3000 to 4999");
        return;
    }
    if (!string_of(o, "reason", false, &reason, &reason_len) ||
        reason_len > PROTO_CLOSE_REASON_MAX) {
        fail(req, API_EP_DISCONNECT, 400, "bad_reason",
             "reason must be a string of at most 123 bytes");
        return;
    }
    memcpy(ctl.user, user, user_len);
    ctl.code = (uint16_t)code;
    if (reason)
        memcpy(ctl.reason, reason, reason_len);
    else
        snprintf(ctl.reason, sizeof(ctl.reason), "%s", DEFAULT_CLOSE_REASON);
    send_control(a, req, API_EP_DISCONNECT, &ctl);
}

static void do_unsubscribe(struct api *a, struct evhttp_request *req, json_t *o)
{
    struct proto_control ctl = {.op = PROTO_CONTROL_LEAVE};
    const char *user, *room;
    size_t user_len, room_len;
    if (!need_name(req, API_EP_UNSUBSCRIBE, o, "user", PROTO_NAME_MAX, &user, &user_len) ||
        !need_name(req, API_EP_UNSUBSCRIBE, o, "room", PROTO_ROOM_MAX, &room, &room_len))
        return;
    memcpy(ctl.user, user, user_len);
    memcpy(ctl.room, room, room_len);
    ctl.room_len = room_len;
    send_control(a, req, API_EP_UNSUBSCRIBE, &ctl);
}

/* ---- cluster info ---- */

static void gateways_answered(void *arg, int status, const struct bus_gateway *gws, size_t n)
{
    struct call *c = arg;
    struct api *a = c->api;
    enum metrics_api_endpoint ep;
    struct evhttp_request *req = call_finish(c, &ep);
    if (!req)
        return;
    const struct config *cfg = a->cfg;
    json_t *list = json_array();
    long alive = 0, total = 0;
    for (size_t i = 0; status == 0 && list && i < n; i++) {
        json_array_append_new(list,
                              json_pack("{s:s, s:b, s:I}", "id", gws[i].id, "alive", gws[i].alive,
                                        "connections", (json_int_t)gws[i].connections));
        if (gws[i].alive) {
            alive++;
            total += gws[i].connections;
        }
    }
    /* Without Redis (or while it is away) this gateway tells what it
     * knows: itself. */
    json_t *redis = json_pack("{s:b, s:b}", "configured", cfg->redis_enabled, "up",
                              a->g->bus->ops->ready(a->g->bus));
    reply(req, ep, 200,
          json_pack("{s:s, s:I, s:o, s:o, s:I, s:I}", "gateway", cfg->id, "local_connections",
                    (json_int_t)a->g->sessions.chat_count, "redis", redis, "gateways", list,
                    "gateways_alive", (json_int_t)alive, "connections", (json_int_t)total));
}

/* ---- routing ---- */

enum method { GET, POST };

static const struct route {
    const char *path;
    enum method method;
    enum metrics_api_endpoint ep;
} routes[] = {
    {"/api/publish", POST, API_EP_PUBLISH},         {"/api/broadcast", POST, API_EP_BROADCAST},
    {"/api/presence", POST, API_EP_PRESENCE},       {"/api/rooms", GET, API_EP_ROOMS},
    {"/api/history", POST, API_EP_HISTORY},         {"/api/disconnect", POST, API_EP_DISCONNECT},
    {"/api/unsubscribe", POST, API_EP_UNSUBSCRIBE}, {"/api/info", GET, API_EP_INFO},
};

/* Whether the request carries the key: compared as SHA-256 digests in
 * constant time, so that neither the key's bytes nor its length show in
 * the time an answer takes. */
static bool authorized(const struct api *a, struct evhttp_request *req)
{
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");
    static const char bearer[] = "Bearer ";
    if (!h || strncasecmp(h, bearer, sizeof(bearer) - 1) != 0) /* schemes ignore case */
        return false;
    const char *key = h + sizeof(bearer) - 1;
    unsigned char digest[32];
    unsigned int len = 0;
    return EVP_Digest(key, strlen(key), digest, &len, EVP_sha256(), NULL) == 1 && len == 32 &&
           CRYPTO_memcmp(digest, a->key_hash, 32) == 0;
}

static void handle(struct evhttp_request *req, void *arg)
{
    struct api *a = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const struct route *r = NULL;
    for (size_t i = 0; path && i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strcmp(path, routes[i].path) == 0)
            r = &routes[i];
    enum metrics_api_endpoint ep = r ? r->ep : API_EP_OTHER;
    /* The key before anything else: without it nothing, not even which
     * paths exist, is told. */
    if (!authorized(a, req)) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
        fail(req, ep, 401, "unauthorized", "a valid Authorization: Bearer KEY header is required");
        return;
    }
    if (!r) {
        fail(req, ep, 404, "not_found", "no such endpoint");
        return;
    }
    size_t body = evbuffer_get_length(evhttp_request_get_input_buffer(req));
    if (body > a->cfg->api_max_body_bytes) {
        char why[96];
        snprintf(why, sizeof(why), "the body is over %zu bytes (--api-max-body-bytes)",
                 a->cfg->api_max_body_bytes);
        fail(req, ep, 413, "too_large", why);
        return;
    }
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != (r->method == GET ? EVHTTP_REQ_GET : EVHTTP_REQ_POST)) {
        struct evkeyvalq *out = evhttp_request_get_output_headers(req);
        evhttp_add_header(out, "Allow", r->method == GET ? "GET" : "POST");
        /* evhttp does not read the body of these: left in the stream, it
         * would be taken for the next request. */
        if (cmd == EVHTTP_REQ_HEAD || cmd == EVHTTP_REQ_TRACE)
            evhttp_add_header(out, "Connection", "close");
        fail(req, ep, 405, "method_not_allowed",
             r->method == GET ? "use GET on this endpoint" : "use POST on this endpoint");
        return;
    }
    if (r->method == GET) {
        struct call *c = call_new(a, req, ep);
        if (c && ep == API_EP_ROOMS)
            a->g->bus->ops->rooms(a->g->bus, rooms_answered, c);
        else if (c)
            a->g->bus->ops->gateways(a->g->bus, gateways_answered, c);
        return;
    }
    json_t *o = body_object(req, ep);
    if (!o)
        return;
    switch (ep) {
    case API_EP_PUBLISH:
    case API_EP_BROADCAST:
        do_publish(a, req, o, ep);
        break;
    case API_EP_PRESENCE:
        do_presence(a, req, o);
        break;
    case API_EP_HISTORY:
        do_history(a, req, o);
        break;
    case API_EP_DISCONNECT:
        do_disconnect(a, req, o);
        break;
    default:
        do_unsubscribe(a, req, o);
        break;
    }
    json_decref(o);
}

/* ---- connections ---- */

/* Every connection's bufferevent is made here (evhttp asks at accept). */
static struct bufferevent *new_connection(struct event_base *base, void *arg)
{
    struct api *a = arg;
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev)
        return NULL; /* evhttp tries to make one itself, and fails the same */
    if (a->n_conns == a->cap_conns) {
        size_t cap = a->cap_conns ? a->cap_conns * 2 : 16;
        struct bufferevent **n = realloc(a->conns, cap * sizeof(*n));
        if (!n) {
            log_error("api: out of memory tracking a connection");
            return bev; /* served, but not counted */
        }
        a->conns = n;
        a->cap_conns = cap;
    }
    bufferevent_incref(bev);
    a->conns[a->n_conns++] = bev;
    if (a->n_conns >= a->cfg->api_max_connections && !a->paused) {
        a->paused = true;
        evconnlistener_disable(a->listener);
        log_warn("api: %zu connections open, the limit (--api-max-connections): new ones wait",
                 a->n_conns);
    }
    if (!evtimer_pending(a->sweep_timer, NULL)) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        evtimer_add(a->sweep_timer, &tv);
    }
    return bev;
}

/* Drops the connections evhttp has let go: it clears all three callbacks
 * of a bufferevent when it frees it, and never while it uses one. */
static void sweep(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct api *a = arg;
    for (size_t i = 0; i < a->n_conns;) {
        bufferevent_data_cb r, w;
        bufferevent_event_cb e;
        void *ctx;
        bufferevent_getcb(a->conns[i], &r, &w, &e, &ctx);
        if (r || w || e) {
            i++;
            continue;
        }
        bufferevent_decref(a->conns[i]);
        a->conns[i] = a->conns[--a->n_conns];
    }
    if (a->paused && a->n_conns < a->cfg->api_max_connections) {
        a->paused = false;
        evconnlistener_enable(a->listener);
    }
    if (a->n_conns) {
        struct timeval tv = {0, SWEEP_MS * 1000};
        evtimer_add(a->sweep_timer, &tv);
    }
}

static struct evconnlistener *listen_on(struct event_base *base, const struct config *cfg)
{
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG};
    struct evutil_addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", cfg->api_port);
    const char *host = strcmp(cfg->api_host, "*") == 0 ? NULL : cfg->api_host;
    int rc = evutil_getaddrinfo(host, port, &hints, &ai);
    if (rc != 0) {
        log_error("api: cannot resolve %s: %s", cfg->api_host, evutil_gai_strerror(rc));
        return NULL;
    }
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        LISTEN_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!l)
        log_error("api: cannot listen on %s: %s", cfg->api_listen,
                  evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    return l;
}

struct api *api_new(struct event_base *base, struct gateway *g)
{
    const struct config *cfg = g->cfg;
    struct api *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->cfg = cfg;
    a->g = g;
    list_init(&a->calls);
    unsigned int len = 0;
    if (EVP_Digest(cfg->api_key, strlen(cfg->api_key), a->key_hash, &len, EVP_sha256(), NULL) !=
            1 ||
        !(a->sweep_timer = evtimer_new(base, sweep, a)) || !(a->http = evhttp_new(base)) ||
        !(a->listener = listen_on(base, cfg))) {
        api_free(a);
        return NULL;
    }
    if (!evhttp_bind_listener(a->http, a->listener)) { /* the listener stays ours */
        log_error("api: out of memory binding the listener");
        evconnlistener_free(a->listener);
        api_free(a);
        return NULL;
    }
    evhttp_set_gencb(a->http, handle, a);
    evhttp_set_bevcb(a->http, new_connection, a);
    /* evhttp's own refusal is an uncounted HTML page: it only stops bodies
     * far over the limit, which handle answers (JSON, counted). */
    evhttp_set_max_body_size(a->http, (ev_ssize_t)(BODY_HARD_CAP * cfg->api_max_body_bytes));
    evhttp_set_max_headers_size(a->http, (ev_ssize_t)cfg->max_header_bytes);
    evhttp_set_timeout(a->http, (int)((cfg->handshake_timeout_ms + 999) / 1000));
    /* Every method reaches handle, which answers 405 for the wrong one
     * (evhttp itself would answer 501). */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    /* The body of a refused request is read before the 413 is sent, so
     * that the client gets the answer rather than a reset. */
    evhttp_set_flags(a->http, EVHTTP_SERVER_LINGERING_CLOSE);
    log_info("api: server API listening on %s (at most %u connections)", cfg->api_listen,
             cfg->api_max_connections);
    return a;
}

void api_free(struct api *a)
{
    if (!a)
        return;
    while (!list_empty(&a->calls)) {
        struct call *c = list_entry(a->calls.next, struct call, node);
        unavailable(c->req, c->ep);
        list_remove(&c->node);
        c->api = NULL; /* freed when the bus answers */
    }
    if (a->http)
        evhttp_free(a->http); /* with the listener and the connections */
    for (size_t i = 0; i < a->n_conns; i++)
        bufferevent_decref(a->conns[i]);
    free(a->conns);
    if (a->sweep_timer)
        event_free(a->sweep_timer);
    explicit_bzero(a->key_hash, sizeof(a->key_hash));
    free(a);
}
