#include "txring.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <liburing.h>

#include "log.h"

struct tx_entry {
    struct frame *f;
    const unsigned char *p;
    size_t len;
    void *owner;
    ssize_t res;
    int fd;
};

struct txring {
    struct io_uring ring;
    txring_done_fn done;
    void *ctx;
    struct tx_entry *e;
    unsigned depth, n;
    uint8_t *attached; /* a bit per descriptor: in the ring's file table */
    unsigned nfiles;
    /* The ring refused a submission: sends go out one by one from then on,
     * and the ring is not touched again (it may hold unconsumed entries). */
    bool broken;
};

#define SEND_FLAGS (MSG_DONTWAIT | MSG_NOSIGNAL)

struct txring *txring_new(unsigned depth, unsigned nfiles, txring_done_fn done, void *ctx,
                          char *why, size_t why_len)
{
    struct txring *t = calloc(1, sizeof(*t));
    struct tx_entry *e = calloc(depth, sizeof(*e));
    if (!t || !e) {
        snprintf(why, why_len, "out of memory");
        goto fail;
    }
    /* SINGLE_ISSUER and DEFER_TASKRUN (Linux 6.1): completions are posted
     * only when this thread asks for them, with no interrupting task work.
     * Kernels that have them also turn MSG_DONTWAIT into an immediate
     * -EAGAIN instead of a wait for the socket, which flush relies on. */
    struct io_uring_params params = {.flags = IORING_SETUP_SINGLE_ISSUER |
                                              IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL};
    int rc = io_uring_queue_init_params(depth, &t->ring, &params);
    if (rc < 0) {
        snprintf(why, why_len, "io_uring_setup: %s", strerror(-rc));
        goto fail;
    }
    struct io_uring_probe *probe = io_uring_get_probe_ring(&t->ring);
    bool has_send = probe && io_uring_opcode_supported(probe, IORING_OP_SEND);
    io_uring_free_probe(probe);
    if (!has_send) {
        snprintf(why, why_len, "io_uring has no send operation");
        io_uring_queue_exit(&t->ring);
        goto fail;
    }
    /* Both optional: each spares a file lookup, of the ring per submission
     * and of the socket per send. */
    io_uring_register_ring_fd(&t->ring);
    if (nfiles && io_uring_register_files_sparse(&t->ring, nfiles) == 0 &&
        (t->attached = calloc((nfiles + 7) / 8, 1)))
        t->nfiles = nfiles;
    t->done = done;
    t->ctx = ctx;
    t->e = e;
    t->depth = depth;
    return t;
fail:
    free(t);
    free(e);
    return NULL;
}

void txring_free(struct txring *t)
{
    if (!t)
        return;
    txring_flush(t);
    io_uring_queue_exit(&t->ring);
    free(t->attached);
    free(t->e);
    free(t);
}

bool txring_batching(const struct txring *t)
{
    return !t->broken;
}

static bool is_attached(const struct txring *t, int fd)
{
    return fd >= 0 && (unsigned)fd < t->nfiles && (t->attached[fd / 8] & (1u << (fd % 8)));
}

void txring_attach(struct txring *t, int fd)
{
    if (fd < 0 || (unsigned)fd >= t->nfiles)
        return;
    if (io_uring_register_files_update(&t->ring, (unsigned)fd, &fd, 1) == 1)
        t->attached[fd / 8] |= (uint8_t)(1u << (fd % 8));
}

void txring_detach(struct txring *t, int fd)
{
    if (!is_attached(t, fd))
        return;
    int none = -1;
    t->attached[fd / 8] &= (uint8_t) ~(1u << (fd % 8));
    if (io_uring_register_files_update(&t->ring, (unsigned)fd, &none, 1) != 1)
        log_error("io_uring: descriptor %d stays in the file table: its connection stays open "
                  "until the number is used again",
                  fd);
}

void txring_send(struct txring *t, int fd, struct frame *f, const unsigned char *p, size_t len,
                 void *owner)
{
    if (t->n == t->depth)
        txring_flush(t);
    t->e[t->n++] = (struct tx_entry){
        .f = frame_ref(f), .p = p, .len = len, .owner = owner, .res = -ECANCELED, .fd = fd};
}

/* Submits the first n entries and waits for their completions. Returns
 * how many were submitted (their res is set; the rest are not sent), or
 * -errno when none was. */
static int submit(struct txring *t, unsigned n)
{
    unsigned prepared = 0;
    for (; prepared < n; prepared++) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&t->ring);
        if (!sqe)
            break; /* the ring holds no more than depth, so never; the rest go by send() */
        struct tx_entry *e = &t->e[prepared];
        io_uring_prep_send(sqe, e->fd, e->p, e->len, SEND_FLAGS);
        if (is_attached(t, e->fd))
            sqe->flags |= IOSQE_FIXED_FILE; /* the table's slot is the descriptor's number */
        io_uring_sqe_set_data64(sqe, prepared);
    }
    int submitted;
    do
        submitted = io_uring_submit_and_wait(&t->ring, prepared);
    while (submitted == -EINTR);
    if (submitted <= 0)
        return submitted < 0 ? submitted : -EAGAIN;
    for (int reaped = 0; reaped < submitted;) {
        struct io_uring_cqe *cqe;
        int rc = io_uring_wait_cqe(&t->ring, &cqe);
        if (rc == -EINTR)
            continue;
        if (rc < 0) {
            /* Never seen: every send completes inline. Those not reaped
             * keep -ECANCELED, and their clients are closed. */
            log_error("io_uring: waiting for completions failed (%s)", strerror(-rc));
            break;
        }
        unsigned head, seen = 0;
        io_uring_for_each_cqe(&t->ring, head, cqe)
        {
            uint64_t i = io_uring_cqe_get_data64(cqe);
            if (i < prepared)
                t->e[i].res = cqe->res;
            seen++;
        }
        io_uring_cq_advance(&t->ring, seen);
        reaped += (int)seen;
    }
    return submitted;
}

void txring_flush(struct txring *t)
{
    unsigned n = t->n;
    if (!n)
        return;
    unsigned done_by_ring = 0;
    if (!t->broken) {
        int rc = submit(t, n);
        if (rc < 0 || (unsigned)rc < n) {
            log_error("io_uring submission failed (%s): writing with send() from now on",
                      rc < 0 ? strerror(-rc) : "partly refused");
            t->broken = true;
        }
        done_by_ring = rc > 0 ? (unsigned)rc : 0;
    }
    for (unsigned i = done_by_ring; i < n; i++) {
        ssize_t w = send(t->e[i].fd, t->e[i].p, t->e[i].len, SEND_FLAGS);
        t->e[i].res = w < 0 ? -errno : w;
    }
    for (unsigned i = 0; i < n; i++) {
        struct tx_entry *e = &t->e[i];
        t->done(t->ctx, e->owner, e->f, e->p, e->len, e->res);
        frame_unref(e->f);
    }
    t->n = 0;
}
