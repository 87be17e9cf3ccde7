/* frame: one serialised outgoing message, shared by reference count among
 * every recipient, with room before the payload for its WebSocket header,
 * which the connection writer (conn.h) puts there (the header is the same
 * for every server connection, so sharing the headroom is safe). */
#ifndef GATEWAY_FRAME_H
#define GATEWAY_FRAME_H

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADROOM 10 /* the longest header of a server frame (RFC 6455 5.2) */

struct frame {
    uint32_t refs;
    uint32_t len;
    unsigned char buf[]; /* FRAME_HEADROOM + len + 1 (a NUL, for parsers) */
};

/* A frame of len payload bytes, refcount 1, payload uninitialised. */
struct frame *frame_alloc(size_t len);
/* A frame holding a copy of data. */
struct frame *frame_copy(const void *data, size_t len);
static inline unsigned char *frame_data(struct frame *f)
{
    return f->buf + FRAME_HEADROOM;
}
static inline struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}
void frame_unref(struct frame *f);

#endif
