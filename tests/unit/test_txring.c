/* txring against real TCP connections on 127.0.0.1: every staged frame
 * arrives whole and in order, a full socket answers at once instead of
 * blocking the flush, a dead peer is reported, and a detached socket
 * closes when its descriptor does. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "txring.h"

#define MAX_DONE 4096

struct done_entry {
    void *owner;
    ssize_t res;
    size_t len;
};
static struct done_entry done_log[MAX_DONE];
static unsigned done_count;

static void on_done(void *ctx, void *owner, struct frame *f, const unsigned char *p, size_t len,
                    ssize_t res)
{
    (void)ctx, (void)f, (void)p;
    if (done_count < MAX_DONE)
        done_log[done_count] = (struct done_entry){owner, res, len};
    done_count++;
}

static int listener = -1;
static struct sockaddr_in listen_addr;

/* A connected pair: *tx is the non-blocking sending end. */
static bool tcp_pair(int *tx, int *rx)
{
    *tx = socket(AF_INET, SOCK_STREAM, 0);
    if (*tx < 0 || connect(*tx, (struct sockaddr *)&listen_addr, sizeof(listen_addr)) != 0)
        return false;
    *rx = accept(listener, NULL, NULL);
    fcntl(*tx, F_SETFL, fcntl(*tx, F_GETFL) | O_NONBLOCK);
    return *rx >= 0;
}

/* Reads exactly n bytes (the peer sent them already). */
static bool read_exactly(int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 2000) != 1)
            return false;
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0)
            return false;
        got += (size_t)r;
    }
    return true;
}

static struct txring *new_ring(unsigned depth)
{
    char why[128];
    done_count = 0;
    struct txring *t = txring_new(depth, 1024, on_done, NULL, why, sizeof(why));
    if (!t)
        fprintf(stderr, "txring_new: %s\n", why);
    CHECK(t != NULL);
    return t;
}

/* A ring and one connected pair; NULL (a failed CHECK) when either fails. */
static struct txring *ring_and_pair(unsigned depth, int *tx, int *rx)
{
    struct txring *t = new_ring(depth);
    if (t && !CHECK(tcp_pair(tx, rx))) {
        txring_free(t);
        return NULL;
    }
    return t;
}

static void test_batch_arrives_in_order(void)
{
    struct txring *t = new_ring(8);
    if (!t)
        return;
    enum { CONNS = 20, FRAMES = 3 };
    int tx[CONNS], rx[CONNS];
    for (int i = 0; i < CONNS; i++)
        if (!CHECK(tcp_pair(&tx[i], &rx[i])))
            return;
    /* Half attached (fixed files), half not: both paths in one batch. */
    for (int i = 0; i < CONNS; i += 2)
        txring_attach(t, tx[i]);
    struct frame *f[FRAMES];
    for (int k = 0; k < FRAMES; k++) {
        f[k] = frame_alloc(100 + (size_t)k);
        memset(frame_data(f[k]), 'a' + k, f[k]->len);
    }
    /* 60 sends through a ring of 8: flushed when full, then at the end. */
    for (int k = 0; k < FRAMES; k++)
        for (int i = 0; i < CONNS; i++)
            txring_send(t, tx[i], f[k], frame_data(f[k]), f[k]->len, &tx[i]);
    txring_flush(t);
    CHECK_INT(done_count, ==, CONNS * FRAMES);
    for (unsigned i = 0; i < done_count && i < MAX_DONE; i++)
        CHECK_INT(done_log[i].res, ==, (ssize_t)done_log[i].len);
    CHECK(done_log[0].owner == &tx[0] && done_log[1].owner == &tx[1]);
    for (int k = 0; k < FRAMES; k++) {
        CHECK_INT(f[k]->refs, ==, 1); /* the ring let go of every one */
        frame_unref(f[k]);
    }
    for (int i = 0; i < CONNS; i++) {
        unsigned char buf[100 + 101 + 102];
        CHECK(read_exactly(rx[i], buf, sizeof(buf)));
        CHECK(buf[0] == 'a' && buf[99] == 'a' && buf[100] == 'b' && buf[201] == 'c' &&
              buf[sizeof(buf) - 1] == 'c');
    }
    for (int i = 0; i < CONNS; i++) {
        txring_detach(t, tx[i]);
        close(tx[i]);
        close(rx[i]);
    }
    txring_free(t);
}

/* A peer that does not read: the flush must come back (alarm otherwise)
 * with part of the frame written or -EAGAIN, never wait for the socket. */
static void test_full_socket_does_not_block(void)
{
    int tx, rx;
    struct txring *t = ring_and_pair(64, &tx, &rx);
    if (!t)
        return;
    txring_attach(t, tx);
    struct frame *big = frame_alloc(8 << 20);
    memset(frame_data(big), 'x', big->len);
    alarm(10);
    txring_send(t, tx, big, frame_data(big), big->len, NULL);
    txring_flush(t);
    CHECK_INT(done_count, ==, 1);
    CHECK(done_log[0].res > 0 && done_log[0].res < (ssize_t)big->len);
    /* Now the socket is full: nothing more goes. */
    txring_send(t, tx, big, frame_data(big), big->len, NULL);
    txring_flush(t);
    alarm(0);
    CHECK_INT(done_count, ==, 2);
    CHECK_INT(done_log[1].res, ==, -EAGAIN);
    frame_unref(big);
    txring_detach(t, tx);
    close(tx);
    close(rx);
    txring_free(t);
}

static void test_dead_peer_is_reported(void)
{
    int tx, rx;
    struct txring *t = ring_and_pair(4, &tx, &rx);
    if (!t)
        return;
    struct frame *f = frame_copy("hello", 5);
    /* Unread data at close makes the peer answer with a reset. */
    CHECK_INT(send(rx, "x", 1, 0), ==, 1);
    usleep(20000);
    close(rx);
    usleep(20000);
    ssize_t res = 0;
    for (int i = 0; i < 3 && res >= 0; i++) {
        done_count = 0;
        txring_send(t, tx, f, frame_data(f), f->len, NULL);
        txring_flush(t);
        res = done_log[0].res;
    }
    CHECK(res == -EPIPE || res == -ECONNRESET);
    frame_unref(f);
    close(tx);
    txring_free(t);
}

/* The file table holds a reference: after detach and close the peer must
 * see the end of the stream. */
static void test_detach_lets_the_socket_close(void)
{
    int tx, rx;
    struct txring *t = ring_and_pair(4, &tx, &rx);
    if (!t)
        return;
    txring_attach(t, tx);
    txring_detach(t, tx);
    close(tx);
    unsigned char b;
    struct pollfd p = {.fd = rx, .events = POLLIN};
    CHECK_INT(poll(&p, 1, 2000), ==, 1);
    CHECK_INT(recv(rx, &b, 1, 0), ==, 0);
    close(rx);
    txring_free(t);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    listener = socket(AF_INET, SOCK_STREAM, 0);
    listen_addr =
        (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(listen_addr);
    if (listener < 0 || bind(listener, (struct sockaddr *)&listen_addr, len) != 0 ||
        listen(listener, 64) != 0 ||
        getsockname(listener, (struct sockaddr *)&listen_addr, &len) != 0) {
        perror("listen");
        return 1;
    }
    char why[128];
    struct txring *probe = txring_new(4, 0, on_done, NULL, why, sizeof(why));
    if (!probe) {
        printf("txring: skipped, io_uring unavailable here (%s)\n", why);
        return 77;
    }
    txring_free(probe);
    RUN(test_batch_arrives_in_order);
    RUN(test_full_socket_does_not_block);
    RUN(test_dead_peer_is_reported);
    RUN(test_detach_lets_the_socket_close);
    close(listener);
    return CHECK_DONE("txring");
}
