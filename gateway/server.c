#include "server.h"

#include <signal.h>
#include <stdlib.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <libwebsockets.h>

#include "api.h"
#include "bus.h"
#include "clock.h"
#include "gateway.h"
#include "http.h"
#include "log.h"
#include "metrics.h"

/* Per-connection receive buffer of libwebsockets. Larger messages arrive in
 * pieces and are reassembled by the session; small buffers keep idle
 * connections light (lws allocates this for every connection). */
#define RX_BUFFER_SIZE 128
#define SHUTDOWN_POLL_MS 20

static struct {
    const struct config *cfg;
    struct event_base *base;
    struct lws_context *lws;
    struct gateway gw;
    struct api *api; /* NULL without --api-listen */
    struct event *sigint, *sigterm, *keepalive_timer, *shutdown_timer;
    int64_t shutdown_deadline_ms;
} srv;

/* Marks a connection that got a whole request (the pointer's value is all
 * that counts). */
static const char had_request = 1;

static int callback_chat(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct session *s = user;
    struct gateway *g = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
        lws_set_opaque_user_data(wsi, (void *)&had_request);
        return 0;
    case LWS_CALLBACK_WSI_DESTROY:
        /* A connection that never got through its request headers: a
         * handshake timeout, an oversized header block, or not HTTP. */
        if (!lws_get_opaque_user_data(wsi) && lws_get_network_wsi(wsi) == wsi &&
            !g->sessions.shutting_down)
            metrics.incomplete_requests++;
        return 0;
    case LWS_CALLBACK_HTTP: {
        char path[64];
        if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) < 0)
            path[0] = '\0';
        return http_serve_endpoint(&g->sessions, wsi, path);
    }
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        lws_set_opaque_user_data(wsi, (void *)&had_request);
        if (http_confirm_upgrade(&g->sessions, wsi) != 0)
            return 1;
        conn_hold_handshake(wsi);
        return 0;
    case LWS_CALLBACK_ESTABLISHED: {
        char name[PROTO_NAME_MAX + 1], addr[64];
        enum session_kind kind = http_upgrade_kind(&g->sessions, wsi, name, addr, sizeof(addr));
        return session_open(&g->sessions, s, wsi, kind, name, addr);
    }
    case LWS_CALLBACK_RECEIVE:
        return session_receive(&g->sessions, s, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        session_pong(s);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return session_writable(s);
    case LWS_CALLBACK_CLOSED:
        session_closed(&g->sessions, s);
        return 0;
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* Largest piece lws hands to one send(); 0 would mean RX_BUFFER_SIZE, which
 * would cut every frame into several system calls. */
#define TX_PACKET_SIZE (256 * 1024)

static const struct lws_protocols protocols[] = {
    {"chat", callback_chat, sizeof(struct session), RX_BUFFER_SIZE, 0, NULL, TX_PACKET_SIZE},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* Neither ping nor hang-up from lws: the session's keepalive wheel does
 * both at O(1) per connection. */
static const lws_retry_bo_t no_lws_keepalive = {.secs_since_valid_ping = 0,
                                                .secs_since_valid_hangup = 0};

static void lws_log_emit(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        n--;
    log_msg(level == LLL_ERR ? LOG_ERROR : LOG_WARN, "lws: %.*s", (int)n, line);
}

static void keepalive_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    sessions_keepalive_tick(&srv.gw.sessions);
}

static void on_bus_closed(void *arg, int status)
{
    (void)arg, (void)status;
    lws_context_destroy(srv.lws);
    srv.lws = NULL;
    event_base_loopexit(srv.base, NULL);
}

static void shutdown_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    long open = srv.gw.sessions.all_count;
    if (open > 0 && clock_mono_ms() < srv.shutdown_deadline_ms)
        return;
    if (open > 0)
        log_warn("shutdown: %ld clients still open after %u ms, closing anyway", open,
                 srv.cfg->shutdown_timeout_ms);
    event_del(srv.shutdown_timer);
    srv.gw.bus->ops->close(srv.gw.bus, on_bus_closed, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what, (void)arg;
    if (srv.gw.sessions.shutting_down)
        return;
    log_info("signal %d: shutting down, closing %ld clients", (int)sig, srv.gw.sessions.all_count);
    sessions_shutdown(&srv.gw.sessions);
    srv.shutdown_deadline_ms = clock_mono_ms() + srv.cfg->shutdown_timeout_ms;
    struct timeval tv = {0, SHUTDOWN_POLL_MS * 1000};
    event_add(srv.shutdown_timer, &tv);
}

static struct lws_context *create_lws(const struct config *cfg)
{
    static struct lws_http_mount m_root, m_health, m_ready, m_metrics;
    m_root = (struct lws_http_mount){.mountpoint = "/",
                                     .mountpoint_len = 1,
                                     .origin = cfg->client_dir,
                                     .def = "index.html",
                                     .origin_protocol = LWSMPRO_FILE};
    m_metrics = (struct lws_http_mount){.mount_next = &m_root,
                                        .mountpoint = "/metrics",
                                        .mountpoint_len = 8,
                                        .origin = "chat",
                                        .origin_protocol = LWSMPRO_CALLBACK};
    m_ready = m_metrics;
    m_ready.mount_next = &m_metrics;
    m_ready.mountpoint = "/readyz";
    m_ready.mountpoint_len = 7;
    m_health = m_metrics;
    m_health.mount_next = &m_ready;
    m_health.mountpoint = "/healthz";
    m_health.mountpoint_len = 8;

    static void *foreign_loops[1];
    foreign_loops[0] = srv.base;
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.port = cfg->listen_port;
    bool any = strcmp(cfg->listen_host, "0.0.0.0") == 0 || strcmp(cfg->listen_host, "*") == 0;
    bool v6 = strchr(cfg->listen_host, ':') != NULL;
    if (strcmp(cfg->listen_host, "localhost") == 0)
        info.iface = "127.0.0.1";
    else if (!any)
        info.iface = cfg->listen_host;
    info.protocols = protocols;
    info.mounts = &m_health;
    info.foreign_loops = foreign_loops;
    info.user = &srv.gw;
    info.retry_and_idle_policy = &no_lws_keepalive;
    info.timeout_secs = (cfg->handshake_timeout_ms + 999) / 1000;
    info.timeout_secs_ah_idle = info.timeout_secs;
    info.max_http_header_data = (unsigned short)cfg->max_header_bytes;
    info.vhost_name = "gateway";
    info.server_string = "chat-gateway";
    info.options = LWS_SERVER_OPTION_LIBEVENT | LWS_SERVER_OPTION_VALIDATE_UTF8 |
                   LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE;
    if (!v6)
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    if (cfg->tls_cert[0]) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = cfg->tls_cert;
        info.ssl_private_key_filepath = cfg->tls_key;
    }
    return lws_create_context(&info);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_warn("could not raise the open-file limit");
    }
}

/* Large arrays that live for one loop turn (conn's pending list during a
 * broadcast to every client: 24 bytes per connection) must go back to the
 * system when freed. glibc raises its mmap threshold to the size of every
 * mmapped block freed, so from the second such array on they came from the
 * heap and stayed resident: 20 more bytes per idle connection. A fixed
 * threshold (glibc's default value) keeps them mmapped. */
static void fix_mmap_threshold(void)
{
#ifdef __GLIBC__
    if (!mallopt(M_MMAP_THRESHOLD, 128 * 1024))
        log_warn("could not fix malloc's mmap threshold");
#endif
}

int server_run(const struct config *cfg)
{
    memset(&srv, 0, sizeof(srv));
    srv.cfg = cfg;
    raise_fd_limit();
    fix_mmap_threshold();
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, lws_log_emit);

    struct stat st;
    if (stat(cfg->client_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        log_warn("client directory %s not found: / will answer 404", cfg->client_dir);

    srv.base = event_base_new();
    if (!srv.base) {
        log_error("could not create the event loop");
        return 1;
    }
    if (gateway_init(&srv.gw, srv.base, cfg) < 0) {
        event_base_free(srv.base);
        return 1;
    }

    srv.lws = create_lws(cfg);
    if (cfg->api_listen[0] && srv.lws)
        srv.api = api_new(srv.base, &srv.gw);
    if (!srv.lws || (cfg->api_listen[0] && !srv.api)) {
        if (!srv.lws)
            log_error("could not listen on %s:%d", cfg->listen_host, cfg->listen_port);
        else
            lws_context_destroy(srv.lws);
        gateway_free(&srv.gw);
        event_base_free(srv.base);
        return 1;
    }

    srv.sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
    srv.sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
    srv.keepalive_timer = event_new(srv.base, -1, EV_PERSIST, keepalive_cb, NULL);
    srv.shutdown_timer = event_new(srv.base, -1, EV_PERSIST, shutdown_poll, NULL);
    struct timeval tick = {0, (suseconds_t)srv.gw.sessions.keepalive.tick_ms * 1000};
    event_add(srv.sigint, NULL);
    event_add(srv.sigterm, NULL);
    event_add(srv.keepalive_timer, &tick);

    log_info("gateway %s listening on %s:%d (%s)", cfg->id, cfg->listen_host, cfg->listen_port,
             cfg->redis_enabled ? "redis bus" : "single node");
    event_base_dispatch(srv.base);
    log_info("gateway %s stopped", cfg->id);

    api_free(srv.api);
    if (srv.lws)
        lws_context_destroy(srv.lws);
    event_free(srv.sigint);
    event_free(srv.sigterm);
    event_free(srv.keepalive_timer);
    event_free(srv.shutdown_timer);
    gateway_free(&srv.gw);
    event_base_free(srv.base);
    return 0;
}
