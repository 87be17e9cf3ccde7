/* chatfloor: the benchmark's bare server, which measures the floor under
 * the gateway. It speaks just enough of the protocol for chatbench's fanout
 * (join_room answered with joined, chat sent to every member of its room)
 * and nothing more: no JSON library, no validation, no queue, no keepalive,
 * no Redis, no libwebsockets. What it spends per delivery is the kernel's
 * cost of one TCP send plus a loop. Run with --writer send (one send() per
 * member) or --writer uring (the gateway's own txring: one io_uring
 * submission per message) against the same clients as the gateway, it
 * says how far the gateway is from the least any server spends.
 *
 * Not a server to use: a socket that does not take a whole frame loses the
 * rest (counted and printed at exit), and what it does not understand is
 * ignored. Plain HTTP requests get 200, so a readiness probe passes.
 *
 *     chatfloor --listen 127.0.0.1:PORT [--writer send|uring] */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "frame.h"
#include "handshake.h"
#include "txring.h"
#include "wsframe.h"

#define READ_CHUNK 4096
#define MAX_CONTENT 65536
/* Larger client frames are refused: what a frame declares is not buffered. */
#define MAX_FRAME (2 * MAX_CONTENT)
#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

struct client {
    int fd;
    int room; /* -1 until it joins */
    int open; /* past the upgrade */
    size_t slot;
    struct event *ev;
    unsigned char *in;
    size_t in_len, in_cap;
};

static struct {
    struct event_base *base;
    struct txring *tx; /* NULL: --writer send */
    struct client **all;
    size_t n, cap;
    uint64_t seq, deliveries, short_writes;
} srv;

static void drop(struct client *c)
{
    if (srv.tx)
        txring_detach(srv.tx, c->fd);
    event_free(c->ev);
    close(c->fd);
    srv.all[c->slot] = srv.all[--srv.n];
    srv.all[c->slot]->slot = c->slot;
    free(c->in);
    free(c);
}

/* Small writes of the upgrade and the answers: the socket is empty then. */
static void say(struct client *c, const void *p, size_t n)
{
    if (send(c->fd, p, n, SEND_FLAGS) != (ssize_t)n)
        srv.short_writes++;
}

static void say_text(struct client *c, const char *text, size_t n)
{
    uint8_t frame[WS_MAX_HEADER + 256];
    size_t hl = ws_encode_server_header(frame, WS_OP_TEXT, n);
    if (n > sizeof(frame) - hl)
        return;
    memcpy(frame + hl, text, n);
    say(c, frame, hl + n);
}

/* The value of "key":"<value>" in the message (no escapes: chatbench's
 * values have none), or NULL. */
static const char *field(const char *p, size_t n, const char *key, size_t *len)
{
    char needle[32];
    int kl = snprintf(needle, sizeof(needle), "\"%s\":\"", key);
    const char *v = memmem(p, n, needle, (size_t)kl);
    if (!v)
        return NULL;
    v += kl;
    const char *end = memchr(v, '"', n - (size_t)(v - p));
    if (!end)
        return NULL;
    *len = (size_t)(end - v);
    return v;
}

/* chatbench's rooms are "bench-<n>". */
static int room_of(const char *p, size_t n)
{
    size_t len;
    const char *r = field(p, n, "room", &len);
    if (!r || len < 7 || len > 16 || memcmp(r, "bench-", 6) != 0)
        return -1;
    return atoi(r + 6);
}

static void on_written(void *ctx, void *owner, struct frame *f, const unsigned char *p, size_t len,
                       ssize_t res)
{
    (void)ctx, (void)owner, (void)f, (void)p;
    if (res != (ssize_t)len)
        srv.short_writes++;
}

static void fan_out(int room, const char *content, size_t content_len)
{
    char head[160], tail[64];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int hn = snprintf(head, sizeof(head),
                      "{\"type\":\"chat\",\"id\":\"%" PRIu64
                      "-0\",\"room\":\"bench-%d\",\"sender\":\"floor\",\"content\":\"",
                      ++srv.seq, room);
    int tn = snprintf(tail, sizeof(tail), "\",\"timestamp\":%lld}",
                      (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    struct frame *f = frame_alloc((size_t)hn + content_len + (size_t)tn);
    if (!f)
        return;
    unsigned char *d = frame_data(f);
    memcpy(d, head, (size_t)hn);
    memcpy(d + hn, content, content_len);
    memcpy(d + hn + content_len, tail, (size_t)tn);
    uint8_t h[WS_MAX_HEADER];
    size_t hl = ws_encode_server_header(h, WS_OP_TEXT, f->len);
    unsigned char *start = memcpy(d - hl, h, hl);
    size_t n = hl + f->len;
    for (size_t i = 0; i < srv.n; i++) {
        struct client *c = srv.all[i];
        if (c->room != room)
            continue;
        srv.deliveries++;
        if (srv.tx)
            txring_send(srv.tx, c->fd, f, start, n, c);
        else if (send(c->fd, start, n, SEND_FLAGS) != (ssize_t)n)
            srv.short_writes++;
    }
    if (srv.tx)
        txring_flush(srv.tx);
    frame_unref(f);
}

static void on_message(struct client *c, const char *p, size_t n)
{
    if (memmem(p, n, "\"type\":\"join_room\"", 18)) {
        c->room = room_of(p, n);
        long members = 0;
        for (size_t i = 0; i < srv.n; i++)
            members += srv.all[i]->room == c->room;
        char joined[160];
        int len = snprintf(joined, sizeof(joined),
                           "{\"type\":\"joined\",\"room\":\"bench-%d\",\"members\":%ld,"
                           "\"history\":[],\"truncated\":false}",
                           c->room, members);
        say_text(c, joined, (size_t)len);
    } else if (memmem(p, n, "\"type\":\"chat\"", 13)) {
        size_t len;
        const char *content = field(p, n, "content", &len);
        int room = room_of(p, n);
        if (content && room >= 0 && room == c->room && len <= MAX_CONTENT)
            fan_out(room, content, len);
    }
}

/* Consumes whole frames; returns the bytes used, or -1 to drop the client. */
static long frames(struct client *c)
{
    size_t off = 0;
    for (;;) {
        struct ws_frame f;
        int r = ws_parse_header(c->in + off, c->in_len - off, 1, &f);
        if (r < 0 || (r > 0 && f.len > MAX_FRAME))
            return -1;
        if (r == 0 || c->in_len - off - f.header_len < f.len)
            return (long)off;
        unsigned char *p = c->in + off + f.header_len;
        for (uint64_t i = 0; i < f.len; i++)
            p[i] ^= f.mask[i & 3];
        if (f.opcode == WS_OP_TEXT) {
            on_message(c, (const char *)p, f.len);
        } else if (f.opcode == WS_OP_CLOSE) {
            static const uint8_t bye[] = {0x88, 0x02, 0x03, 0xe8}; /* 1000 */
            say(c, bye, sizeof(bye));
            return -1;
        }
        off += f.header_len + f.len;
    }
}

/* Answers the request head; returns its length, 0 while it is incomplete,
 * -1 to drop the client. */
static long upgrade(struct client *c)
{
    size_t hl = hs_head_len((const char *)c->in, c->in_len);
    if (!hl)
        return c->in_len > 8192 ? -1 : 0;
    c->in[hl - 1] = '\0'; /* the last '\n' of the head: a string from here */
    const char *k = strcasestr((const char *)c->in, "\nSec-WebSocket-Key:");
    if (!k) {
        static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                                 "Connection: close\r\n\r\nok\n";
        say(c, ok, sizeof(ok) - 1);
        return -1;
    }
    k += 19;
    k += strspn(k, " \t");
    char key[64], accept[HS_ACCEPT_LEN + 1], resp[192];
    size_t kl = strcspn(k, " \t\r\n");
    if (kl >= sizeof(key))
        return -1;
    memcpy(key, k, kl);
    key[kl] = '\0';
    hs_accept_for(key, accept);
    int n = snprintf(resp, sizeof(resp),
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                     accept);
    say(c, resp, (size_t)n);
    c->open = 1;
    if (srv.tx)
        txring_attach(srv.tx, c->fd);
    return (long)hl;
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)what;
    if (c->in_cap - c->in_len < READ_CHUNK) {
        size_t cap = c->in_cap ? c->in_cap * 2 : 2 * READ_CHUNK;
        unsigned char *in = realloc(c->in, cap);
        if (!in) {
            drop(c);
            return;
        }
        c->in = in;
        c->in_cap = cap;
    }
    ssize_t r = recv(fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        drop(c);
        return;
    }
    c->in_len += (size_t)r;
    long used = c->open ? frames(c) : upgrade(c);
    if (used < 0) {
        drop(c);
        return;
    }
    memmove(c->in, c->in + used, c->in_len - (size_t)used);
    c->in_len -= (size_t)used;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)l, (void)sa, (void)len, (void)arg;
    struct client *c = calloc(1, sizeof(*c));
    if (!c || (srv.n == srv.cap &&
               !(srv.all = realloc(srv.all, (srv.cap = srv.cap * 2 + 64) * sizeof(*srv.all))))) {
        fprintf(stderr, "chatfloor: out of memory\n");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->fd = fd;
    c->room = -1;
    c->slot = srv.n;
    c->ev = event_new(srv.base, fd, EV_READ | EV_PERSIST, on_read, c);
    srv.all[srv.n++] = c;
    event_add(c->ev, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)sig, (void)what, (void)arg;
    event_base_loopexit(srv.base, NULL);
}

static int usage(void)
{
    fprintf(stderr, "usage: chatfloor --listen HOST:PORT [--writer send|uring]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *listen_at = NULL, *writer = "send";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--listen") == 0)
            listen_at = argv[i + 1];
        else if (strcmp(argv[i], "--writer") == 0)
            writer = argv[i + 1];
        else
            return usage();
    }
    const char *colon = listen_at ? strrchr(listen_at, ':') : NULL;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    if (!colon || (argc - 1) % 2 || (strcmp(writer, "send") && strcmp(writer, "uring")))
        return usage();
    char host[64];
    snprintf(host, sizeof(host), "%.*s", (int)(colon - listen_at), listen_at);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        return usage();
    sin.sin_port = htons((uint16_t)atoi(colon + 1));

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    srv.base = event_base_new();
    if (strcmp(writer, "uring") == 0) {
        char why[128];
        getrlimit(RLIMIT_NOFILE, &rl);
        srv.tx = txring_new(1024, (unsigned)rl.rlim_cur, on_written, NULL, why, sizeof(why));
        if (!srv.tx) {
            fprintf(stderr, "chatfloor: io_uring unavailable: %s\n", why);
            return 1;
        }
    }
    struct evconnlistener *l = evconnlistener_new_bind(srv.base, on_accept, NULL,
                                                       LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE,
                                                       4096, (struct sockaddr *)&sin, sizeof(sin));
    if (!l) {
        fprintf(stderr, "chatfloor: cannot listen on %s: %s\n", listen_at, strerror(errno));
        return 1;
    }
    struct event *sigterm = evsignal_new(srv.base, SIGTERM, on_signal, NULL);
    struct event *sigint = evsignal_new(srv.base, SIGINT, on_signal, NULL);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    event_base_dispatch(srv.base);

    fprintf(stderr,
            "chatfloor: %" PRIu64 " messages, %" PRIu64 " deliveries, %" PRIu64
            " short writes (lost)\n",
            srv.seq, srv.deliveries, srv.short_writes);
    while (srv.n)
        drop(srv.all[0]);
    free(srv.all);
    txring_free(srv.tx);
    evconnlistener_free(l);
    event_free(sigterm);
    event_free(sigint);
    event_base_free(srv.base);
    return 0;
}
