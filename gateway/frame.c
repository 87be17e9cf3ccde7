#include "frame.h"

#include <stdlib.h>
#include <string.h>

struct frame *frame_alloc(size_t len)
{
    if (len > UINT32_MAX - FRAME_HEADROOM - 1)
        return NULL;
    struct frame *f = malloc(sizeof(*f) + FRAME_HEADROOM + len + 1);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    f->buf[FRAME_HEADROOM + len] = '\0';
    return f;
}

struct frame *frame_copy(const void *data, size_t len)
{
    struct frame *f = frame_alloc(len);
    if (f)
        memcpy(frame_data(f), data, len);
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
