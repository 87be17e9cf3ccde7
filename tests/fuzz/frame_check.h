/* frame_check: what a fake client has been told, and the checks every frame
 * it receives must pass. A frame that breaks one aborts the process, so
 * libFuzzer records the input as a crash. */
#ifndef FUZZ_FRAME_CHECK_H
#define FUZZ_FRAME_CHECK_H

#include <stdbool.h>
#include <stddef.h>

#include "frame.h"
#include "proto.h"

/* The harness's --max-rooms: a client is never in more. */
#define VIEW_ROOMS_MAX 8

struct view_room {
    char name[PROTO_ROOM_MAX];
    size_t len;
    bool has_last;
    struct msgid last; /* newest chat id seen in the room since `joined` */
};

struct view {
    const char *self;                       /* the client's user name */
    struct view_room rooms[VIEW_ROOMS_MAX]; /* from `joined` until `left` */
    size_t n;
    bool has_global;
    struct msgid last_global;
};

/* Checks f, a frame delivered to the client, and updates v:
 * - it is one JSON object, NUL-terminated, of a type the protocol knows,
 *   with the fields that type needs;
 * - room frames come only for rooms the client is in (between `joined` and
 *   `left`), `left` only for one of them;
 * - chat ids increase per room from each `joined` (history included) and
 *   globally, and a chat frame's spliced id is its JSON id;
 * - presence lists distinct sorted names, the client's own among them when
 *   it is in the room.
 * With FUZZ_TRACE set in the environment, prints every frame it checks. */
void view_check(struct view *v, const struct frame *f);

/* Whether the client was told it is in room and got chat id there or a
 * newer one since. */
bool view_has_seen(const struct view *v, const char *room, size_t room_len, const struct msgid *id);

/* Aborts with the message and the frame. */
void check_fail(const char *what, const void *data, size_t len) __attribute__((noreturn));

#endif
