/* txring: the socket writes of one fan-out, submitted together through
 * io_uring. A frame for many clients is one send per client, and the system
 * call around each send is a fifth to a quarter of its cost (measured on a
 * 2-core VM with retpolines: 0.49 CPU-s per 100,000 sends with send(), 0.37
 * with io_uring batches). Staged sends are submitted with one system call.
 *
 * Every send is MSG_DONTWAIT: it completes inline, fully, partly, or with
 * -EAGAIN, and never waits in the kernel. txring_flush reaps every one
 * before it returns, so nothing is in flight between event-loop callbacks
 * and the caller's sockets need only stay open until the flush. A staged
 * frame is referenced until its send completes.
 *
 * Sockets attached with txring_attach are also registered in the ring's
 * file table, which spares a file lookup per send (another 6%). The table
 * holds a reference to the socket: detach it before the socket is closed,
 * or the connection stays open until its descriptor number is attached
 * again.
 *
 * txring_new returns NULL where io_uring cannot be used (a kernel before
 * 6.0, a seccomp profile that forbids it, as Docker's default does): the
 * caller then writes each frame with send() as before. */
#ifndef GATEWAY_TXRING_H
#define GATEWAY_TXRING_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "frame.h"

struct txring;

/* The outcome of one staged send: res is the bytes written (possibly fewer
 * than len) or -errno. ctx is txring_new's; f, p, len and owner are what
 * was staged (f is still referenced during the call). It must not stage
 * another send. */
typedef void (*txring_done_fn)(void *ctx, void *owner, struct frame *f, const unsigned char *p,
                               size_t len, ssize_t res);

/* A ring of depth sends (the most submitted by one system call), with a
 * file table for descriptors below nfiles; done gets ctx. NULL, with the
 * reason in why, when io_uring is unavailable. */
struct txring *txring_new(unsigned depth, unsigned nfiles, txring_done_fn done, void *ctx,
                          char *why, size_t why_len);
void txring_free(struct txring *t);
/* Registers fd in the file table (nothing happens where it cannot be). */
void txring_attach(struct txring *t, int fd);
/* Takes fd out of the file table, if it is there. */
void txring_detach(struct txring *t, int fd);
/* Stages len bytes at p, which lie inside f, for fd. When the ring is full,
 * what is staged is flushed first (done is called for it). */
void txring_send(struct txring *t, int fd, struct frame *f, const unsigned char *p, size_t len,
                 void *owner);
/* Submits what is staged and calls done for each send, in staging order. */
void txring_flush(struct txring *t);
/* False once the kernel refused a submission: sends then go out one
 * send() each, through the same calls. */
bool txring_batching(const struct txring *t);

#endif
