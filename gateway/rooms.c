#include "rooms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

enum room_state { ROOM_SUBSCRIBING, ROOM_LIVE };

struct room {
    const char *name; /* the map's key copy */
    size_t name_len;
    struct member *head;
    unsigned count;
    enum room_state state;
};

/* Memberships own a copy of the name: a bus answer may outlive its owner. */
struct member_ext {
    struct member m;
    struct room_set *set;
    struct rooms *rooms;
    char name[PROTO_NAME_MAX + 1];
};

static struct member_ext *ext(struct member *m)
{
    return (struct member_ext *)m;
}

void rooms_init(struct rooms *r, struct bus *bus, const struct rooms_owner_ops *ops, void *ctx,
                rooms_deliver_fn deliver, void *deliver_ctx, size_t held_limit)
{
    r->deliver = deliver;
    r->deliver_ctx = deliver_ctx;
    strmap_init(&r->by_name);
    r->bus = bus;
    r->ops = ops;
    r->ctx = ctx;
    r->held_limit = held_limit;
}

void rooms_free(struct rooms *r)
{
    /* Owners leave before this; what is left are empty rooms. */
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&r->by_name, &i, &s);)
        free(s->value);
    strmap_free(&r->by_name);
}

size_t rooms_count(const struct rooms *r)
{
    return r->by_name.count;
}

static struct member *find(const struct room_set *set, const char *room, size_t room_len)
{
    for (struct member *m = set->head; m; m = m->snext)
        if (m->room->name_len == room_len && memcmp(m->room->name, room, room_len) == 0)
            return m;
    return NULL;
}

bool rooms_has(const struct room_set *set, const char *room, size_t room_len)
{
    return find(set, room, room_len) != NULL;
}

bool rooms_is_member(const struct room_set *set, const char *room, size_t room_len)
{
    const struct member *m = find(set, room, room_len);
    return m && (m->state == MEMBER_JOINED || m->announced);
}

static void deliver_error(struct rooms *r, void *owner, enum proto_error e, const char *why)
{
    struct frame *f = proto_error_frame(e, why);
    if (f) {
        metrics.errors[e]++;
        r->deliver(r->deliver_ctx, owner, f);
        frame_unref(f);
    }
}

static void free_member(struct member *m)
{
    sendq_clear(&m->held);
    free(ext(m));
}

/* Unlinks m from its room and set. The room goes when its last member
 * does. announce: tell presence and the room. */
static void remove_member(struct rooms *r, struct member *m, bool tell)
{
    struct room *room = m->room;
    struct member_ext *x = ext(m);
    if (m->rprev)
        m->rprev->rnext = m->rnext;
    else
        room->head = m->rnext;
    if (m->rnext)
        m->rnext->rprev = m->rprev;
    room->count--;
    for (struct member **pp = &x->set->head; *pp; pp = &(*pp)->snext) {
        if (*pp == m) {
            *pp = m->snext;
            break;
        }
    }
    x->set->count--;

    /* An in-flight first join registers presence; the leave queued behind
     * it on the same connection undoes it. */
    if (m->announced || m->in_flight)
        r->bus->ops->leave(r->bus, room->name, room->name_len, x->name);
    if (tell && m->announced)
        r->bus->ops->announce(r->bus, room->name, room->name_len, ANNOUNCE_DEPARTED, x->name);

    if (!room->count) {
        r->bus->ops->unsubscribe(r->bus, room->name, room->name_len);
        strmap_del(&r->by_name, room->name, room->name_len);
        free(room);
    }
    if (m->in_flight) {
        m->orphaned = true;
        m->room = NULL;
    } else {
        free_member(m);
    }
}

/* Tells one member (owner, or every member through rooms_on_frame when
 * owner is NULL) that the room's history lost messages. */
static void tell_lost(struct rooms *r, const char *room, size_t room_len, void *owner)
{
    struct frame *f = proto_system(room, room_len,
                                   "Messages of this room were lost by the cluster (its history "
                                   "was reset): some you have not seen may never arrive",
                                   clock_wall_ms());
    if (!f) {
        log_error("room %.*s: out of memory telling members that messages were lost", (int)room_len,
                  room);
        return;
    }
    if (owner)
        r->deliver(r->deliver_ctx, owner, f);
    else
        rooms_on_frame(r, room, room_len, NULL, f);
    frame_unref(f);
}

static void join_done(void *arg, int status, const struct bus_join_result *res);
static void flush_held(struct rooms *r, struct member *m);

/* Answers a join that could not complete. A failed re-join keeps the
 * membership; a failed first join undoes its presence registration. */
static void join_failed(struct rooms *r, struct member *m, const char *why)
{
    deliver_error(r, m->owner, PROTO_UNAVAILABLE, why);
    if (m->announced) {
        m->state = MEMBER_JOINED;
        flush_held(r, m);
    } else {
        r->bus->ops->leave(r->bus, m->room->name, m->room->name_len, ext(m)->name);
        remove_member(r, m, false);
    }
}

static void start_join(struct rooms *r, struct member *m)
{
    m->in_flight = true;
    struct room *room = m->room;
    r->bus->ops->join(r->bus, room->name, room->name_len, ext(m)->name, !m->announced,
                      m->has_seen ? &m->seen : NULL, join_done, m);
}

/* Whether a frame is new to the member, noting its id if so. Ids increase
 * in a room's one order, so a chat frame at or below what the member has is
 * one it got already: in its history, or over the subscription after the
 * history was read on the other Redis connection. */
static bool is_new(struct member *m, const struct msgid *id)
{
    if (!id)
        return true; /* system frames carry no id */
    if (m->has_seen && msgid_cmp(id, &m->seen) <= 0)
        return false;
    m->seen = *id;
    m->has_seen = true;
    return true;
}

static void flush_held(struct rooms *r, struct member *m)
{
    const struct sendq_entry *e;
    while ((e = sendq_peek(&m->held))) {
        struct msgid id;
        struct frame *f = e->frame;
        if (is_new(m, proto_chat_id(frame_data(f), f->len, &id) ? &id : NULL))
            r->deliver(r->deliver_ctx, m->owner, f);
        sendq_pop(&m->held);
    }
    sendq_shrink(&m->held);
}

static void join_done(void *arg, int status, const struct bus_join_result *res)
{
    struct member *m = arg;
    struct member_ext *x = ext(m);
    struct rooms *r = x->rooms;
    m->in_flight = false;
    if (m->orphaned) {
        free_member(m);
        return;
    }
    struct room *room = m->room;
    void *owner = m->owner;
    if (status < 0) {
        join_failed(r, m, "the room could not be joined: the cluster is unreachable");
        r->ops->join_answered(r->ctx, owner);
        return;
    }
    /* A since beyond the room's newest id (a history that lost its end, or
     * a client's invention) is from a history that no longer exists. */
    bool lost = res->lost || (m->has_seen && msgid_cmp(&m->seen, &res->newest) > 0);
    struct frame *joined = proto_joined(room->name, room->name_len, res->members, res->history,
                                        res->n, res->truncated || lost);
    if (!joined) {
        log_error("room %.*s: out of memory building joined", (int)room->name_len, room->name);
        join_failed(r, m, "the room could not be joined: out of memory");
        r->ops->join_answered(r->ctx, owner);
        return;
    }
    r->deliver(r->deliver_ctx, m->owner, joined);
    frame_unref(joined);

    /* The history answered goes up to the room's newest id; after a loss
     * ids may continue lower than since, and since would hide them. */
    if (lost) {
        tell_lost(r, room->name, room->name_len, owner);
        m->seen = res->newest;
    }
    /* The member has the history now: held frames in it are dropped. */
    struct msgid newest;
    struct frame *last = res->n ? res->history[res->n - 1] : NULL;
    if (last && proto_chat_id(frame_data(last), last->len, &newest))
        is_new(m, &newest);
    flush_held(r, m);
    m->state = MEMBER_JOINED;
    if (!m->announced) {
        m->announced = true;
        r->bus->ops->announce(r->bus, room->name, room->name_len, ANNOUNCE_ARRIVED, x->name);
    }
    r->ops->join_answered(r->ctx, owner);
}

enum proto_error rooms_join(struct rooms *r, struct room_set *set, void *owner, const char *name,
                            const char *room_name, size_t room_len, const struct msgid *since)
{
    struct member *m = find(set, room_name, room_len);
    if (m) {
        m->state = MEMBER_JOINING;
        m->has_seen = since != NULL;
        if (since)
            m->seen = *since;
        start_join(r, m);
        return PROTO_OK;
    }

    struct room *room = strmap_get(&r->by_name, room_name, room_len);
    bool fresh = !room;
    if (fresh) {
        room = calloc(1, sizeof(*room));
        if (!room || !(room->name = strmap_put(&r->by_name, room_name, room_len, room))) {
            free(room);
            return PROTO_UNAVAILABLE;
        }
        room->name_len = room_len;
        room->state = ROOM_SUBSCRIBING;
    }
    struct member_ext *x = calloc(1, sizeof(*x));
    if (!x) {
        if (fresh) {
            strmap_del(&r->by_name, room_name, room_len);
            free(room);
        }
        return PROTO_UNAVAILABLE;
    }
    x->set = set;
    x->rooms = r;
    snprintf(x->name, sizeof(x->name), "%s", name);
    m = &x->m;
    m->room = room;
    m->owner = owner;
    m->state = MEMBER_JOINING;
    m->has_seen = since != NULL;
    if (since)
        m->seen = *since;
    sendq_init(&m->held);
    m->rnext = room->head;
    if (room->head)
        room->head->rprev = m;
    room->head = m;
    room->count++;
    m->snext = set->head;
    set->head = m;
    set->count++;

    if (fresh)
        r->bus->ops->subscribe(r->bus, room->name, room->name_len); /* may answer at once */
    else if (room->state == ROOM_LIVE)
        start_join(r, m);
    return PROTO_OK;
}

enum proto_error rooms_leave(struct rooms *r, struct room_set *set, const char *room,
                             size_t room_len)
{
    struct member *m = find(set, room, room_len);
    if (!m)
        return PROTO_NOT_IN_ROOM;
    remove_member(r, m, true);
    return PROTO_OK;
}

void rooms_leave_all(struct rooms *r, struct room_set *set, bool tell)
{
    while (set->head)
        remove_member(r, set->head, tell);
}

void rooms_on_frame(struct rooms *r, const char *room_name, size_t room_len, const struct msgid *id,
                    struct frame *f)
{
    (void)id;
    struct room *room = strmap_get(&r->by_name, room_name, room_len);
    if (!room)
        return; /* a message in flight when the last member left */
    /* deliver() never calls back into rooms, so the list is stable. */
    for (struct member *m = room->head; m; m = m->rnext) {
        if (m->state == MEMBER_JOINED) {
            if (is_new(m, id))
                r->deliver(r->deliver_ctx, m->owner, f);
        } else if (m->in_flight) {
            if (m->held.bytes + f->len > r->held_limit) {
                r->ops->overflow(r->ctx, m->owner);
                continue;
            }
            if (sendq_push(&m->held, f, false) < 0)
                r->ops->overflow(r->ctx, m->owner);
        }
    }
}

void rooms_on_subscribed(struct rooms *r, const char *room_name, size_t room_len, int status)
{
    struct room *room = strmap_get(&r->by_name, room_name, room_len);
    if (!room)
        return;
    if (status == 0)
        room->state = ROOM_LIVE;
    /* A join may fail at once and remove its member (and with the last
     * member the room), so the next pointer is taken first and the room
     * is not touched after its last member. */
    struct member *next;
    for (struct member *m = room->head; m; m = next) {
        next = m->rnext;
        if (m->state != MEMBER_JOINING || m->in_flight)
            continue;
        if (status == 0) {
            start_join(r, m);
        } else {
            void *owner = m->owner;
            deliver_error(r, owner, PROTO_UNAVAILABLE,
                          "the room could not be joined: the cluster is unreachable");
            remove_member(r, m, false);
            r->ops->join_answered(r->ctx, owner);
        }
    }
}

void rooms_on_history_lost(struct rooms *r, const char *room_name, size_t room_len)
{
    struct room *room = strmap_get(&r->by_name, room_name, room_len);
    if (!room)
        return;
    /* Ids may continue lower than those the members saw: what comes next
     * is new to them whatever its id. */
    for (struct member *m = room->head; m; m = m->rnext)
        if (m->state == MEMBER_JOINED)
            m->has_seen = false;
    tell_lost(r, room_name, room_len, NULL);
}
