/* rooms: the local members of every room, the room subscriptions that
 * follow them (subscribe on the first local member, unsubscribe after the
 * last), and the join flow: a member counts from its `joined` frame on, and
 * frames that reach the room while its history is being fetched are held
 * and merged by id, so it sees neither a gap nor a duplicate. */
#ifndef GATEWAY_ROOMS_H
#define GATEWAY_ROOMS_H

#include <stdbool.h>
#include <stddef.h>

#include "bus.h"
#include "frame.h"
#include "proto.h"
#include "sendq.h"
#include "strmap.h"

struct room;

/* Queues a frame to the owner of a membership. It is the session's own
 * send (requester_ops.send), which rooms calls directly for each member: a
 * fan-out goes from here to the connections with no hop in between. */
typedef void (*rooms_deliver_fn)(void *ctx, void *owner, struct frame *f);

/* What else rooms needs from the owner of a membership (a client's
 * requests). ctx is the one given to rooms_init. */
struct rooms_owner_ops {
    /* The owner's held frames passed the send-queue limit while joining. */
    void (*overflow)(void *ctx, void *owner);
    /* A join that rooms_join started is answered (`joined` or an error). */
    void (*join_answered)(void *ctx, void *owner);
};

enum member_state { MEMBER_JOINING, MEMBER_JOINED };

struct member {
    struct room *room;
    void *owner;
    struct member *rprev, *rnext; /* in the room */
    struct member *snext;         /* in the owner's set */
    struct sendq held;            /* frames that arrived while joining */
    /* The newest message id the owner has (the since asked for, then the
     * history's newest, then each delivery): anything at or below it is
     * a message it already has, arriving again by another path. */
    struct msgid seen;
    enum member_state state;
    bool has_seen;
    bool in_flight; /* a bus join is outstanding */
    bool orphaned;  /* left while in flight: freed when the answer comes */
    bool announced; /* presence registered and "joined the room" sent */
};

/* The rooms one owner is in. */
struct room_set {
    struct member *head;
    unsigned count;
};

struct rooms {
    struct strmap by_name;
    struct bus *bus;
    const struct rooms_owner_ops *ops;
    void *ctx;
    rooms_deliver_fn deliver;
    void *deliver_ctx;
    size_t held_limit;
};

void rooms_init(struct rooms *r, struct bus *bus, const struct rooms_owner_ops *ops, void *ctx,
                rooms_deliver_fn deliver, void *deliver_ctx, size_t held_limit);
void rooms_free(struct rooms *r);

/* Starts a join; the owner gets `joined` (or an error) through deliver,
 * then join_answered, possibly before this returns. A join of a room the
 * owner is in answers `joined` again without a new announcement. Returns
 * PROTO_OK, or an error for the owner (and then no join_answered). */
enum proto_error rooms_join(struct rooms *r, struct room_set *set, void *owner, const char *name,
                            const char *room, size_t room_len, const struct msgid *since);
/* Leaves a room: PROTO_NOT_IN_ROOM when the owner is not in it. Meant for
 * an owner with no join in flight (the session serialises its requests). */
enum proto_error rooms_leave(struct rooms *r, struct room_set *set, const char *room,
                             size_t room_len);
/* Leaves every room (disconnect). announce: tell the rooms and presence. */
void rooms_leave_all(struct rooms *r, struct room_set *set, bool announce);
/* True while the owner is in the room or joining it. */
bool rooms_has(const struct room_set *set, const char *room, size_t room_len);
/* True once the owner has received `joined` for the room. */
bool rooms_is_member(const struct room_set *set, const char *room, size_t room_len);
size_t rooms_count(const struct rooms *r);

/* Bus handlers, wired by the server. */
void rooms_on_frame(struct rooms *r, const char *room, size_t room_len, const struct msgid *id,
                    struct frame *f);
void rooms_on_subscribed(struct rooms *r, const char *room, size_t room_len, int status);
/* The room's history lost messages: its members are told, and take what
 * comes next whatever its id. */
void rooms_on_history_lost(struct rooms *r, const char *room, size_t room_len);

#endif
