/* bus: how a gateway hands messages to the cluster and gets them back. Two
 * implementations with the same behaviour: the in-process bus (single node)
 * and the Redis bus. Every message, local members' included, comes back
 * through the handlers, so every member sees one order.
 *
 * Callbacks that take an arg are called exactly once, possibly before the
 * call that started them returns (the in-process bus is synchronous). */
#ifndef GATEWAY_BUS_H
#define GATEWAY_BUS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>

#include "announce.h"
#include "config.h"
#include "frame.h"
#include "proto.h"

struct bus;

/* status: 0 ok, -1 the cluster could not be reached (nothing happened). */
typedef void (*bus_done_fn)(void *arg, int status);

/* A chat message to publish. */
struct bus_chat {
    const char *room; /* NULL: global */
    size_t room_len;
    const char *rest; /* proto_chat_rest's output */
    size_t len;
    const char *sender;
    const char *cid; /* the client's message id, NULL: none (never deduplicated) */
    size_t cid_len;
};
/* status 0: published with id *id; or, when original is not NULL, a resend
 * of a message (same room, sender and cid) the cluster accepted within the
 * dedupe window: nothing was published, and original is that message (its
 * id in *id), for the sender alone. status -1: the cluster could not be
 * reached (nothing happened; id NULL). */
typedef void (*bus_chat_fn)(void *arg, int status, const struct msgid *id, struct frame *original);

struct bus_join_result {
    struct frame **history; /* chat frames after since, oldest first */
    size_t n;
    bool truncated;
    /* since belongs to a history that no longer exists (the bus lost
     * messages: Redis restarted empty, a failover lost writes): truncated
     * too, and ids may continue lower than since. */
    bool lost;
    long members;        /* distinct names in the room across the cluster */
    struct msgid newest; /* the room's newest id when the history was read */
};
typedef void (*bus_join_fn)(void *arg, int status, const struct bus_join_result *r);
typedef void (*bus_names_fn)(void *arg, int status, const char *const *names, size_t n);

/* For the server API (api.h): the rooms with members across the cluster,
 * and the gateways of the cluster. */
struct bus_room_count {
    const char *room;
    size_t room_len;
    long members; /* distinct names */
};
typedef void (*bus_rooms_fn)(void *arg, int status, const struct bus_room_count *rooms, size_t n);
struct bus_gateway {
    const char *id;
    bool alive;       /* its heartbeat is current */
    long connections; /* its clients, as it last published them */
};
typedef void (*bus_gateways_fn)(void *arg, int status, const struct bus_gateway *gws, size_t n);
/* Most rooms a rooms answer lists: the answer is one reply in memory. */
#define BUS_ROOMS_MAX 10000

struct bus_handlers {
    /* A frame of a room: chat (id set) or system (id NULL). */
    void (*room_frame)(void *ctx, const char *room, size_t room_len, const struct msgid *id,
                       struct frame *f);
    /* A frame for every local client: global chat, connection events,
     * client_count. */
    void (*broadcast_frame)(void *ctx, struct frame *f);
    /* A control frame (proto_is_control) that came on the broadcast
     * channel: an instruction to every gateway, never for clients. */
    void (*control)(void *ctx, struct frame *f);
    /* The subscription to a room asked for with bus_subscribe is live
     * (status 0) or could not be made now (-1; the bus keeps trying). */
    void (*subscribed)(void *ctx, const char *room, size_t room_len, int status);
    /* The room's history lost messages that its members may not have got
     * (found when its stream was replayed after a resubscribe): they are to
     * be told, and ids may continue lower than those they saw. */
    void (*history_lost)(void *ctx, const char *room, size_t room_len);
    void *ctx;
};

struct bus_ops {
    /* Assigns an id, appends to the room's history and delivers, unless it
     * is a resend (see bus_chat_fn). */
    void (*publish_chat)(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg);
    /* Delivers a frame as it is, best effort (system frames). room NULL:
     * broadcast. Returns -1 when the cluster is unreachable. */
    int (*publish_frame)(struct bus *b, const char *room, size_t room_len, struct frame *f);
    void (*subscribe)(struct bus *b, const char *room, size_t room_len);
    void (*unsubscribe)(struct bus *b, const char *room, size_t room_len);
    /* Registers name in the room's presence (unless add is false: a
     * re-join) and fetches the history after since (NULL: all kept). The
     * registration stands whatever the outcome, until leave. */
    void (*join)(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                 const struct msgid *since, bus_join_fn cb, void *arg);
    void (*leave)(struct bus *b, const char *room, size_t room_len, const char *name);
    void (*presence)(struct bus *b, const char *room, size_t room_len, bus_names_fn cb, void *arg);
    /* A room's history after since (NULL: all kept), with truncated as a
     * join gets it, for a reader that is no member: nothing is registered
     * (members is not counted). */
    void (*history)(struct bus *b, const char *room, size_t room_len, const struct msgid *since,
                    bus_join_fn cb, void *arg);
    /* The rooms with members across the cluster (at most BUS_ROOMS_MAX). */
    void (*rooms)(struct bus *b, bus_rooms_fn cb, void *arg);
    /* Every gateway the cluster knows, alive or not yet reaped. */
    void (*gateways)(struct bus *b, bus_gateways_fn cb, void *arg);
    /* "NAME connected" and the like (room NULL: global), coalesced by the
     * base's announcer: both implementations use bus_announce_event. */
    void (*announce)(struct bus *b, const char *room, size_t room_len, enum announce_kind k,
                     const char *name);
    /* Publishes one scope's coalesced announcements; the Redis bus merges
     * them with what other gateways hold for the scope (best effort). */
    void (*publish_announcement)(struct bus *b, const char *room, size_t room_len,
                                 const struct announce_batch *batch);
    /* A client connected (or disconnected): an event for backends when
     * the bus keeps an event stream (best effort: lost while the cluster
     * is unreachable). */
    void (*connection_event)(struct bus *b, bool connected, const char *name);
    /* Publishes the cluster-wide client count given this node's count
     * (counts.h calls it at most once per BUS_COUNT_INTERVAL_MS). */
    void (*publish_count)(struct bus *b, long local);
    bool (*ready)(struct bus *b);
    /* Which Redis, for /metrics: mode "single" or "sentinel", the primary
     * ("HOST:PORT" used or last used, "" none yet) in primary (ADDR bytes),
     * TLS. NULL: no Redis (the in-process bus). */
    void (*target)(struct bus *b, const char **mode, char *primary, size_t len, bool *tls);
    /* Withdraws this gateway from the cluster (presence, counts) and
     * disconnects; done is called when that is over (or given up). */
    void (*close)(struct bus *b, bus_done_fn done, void *arg);
    void (*free)(struct bus *b);
};

struct bus {
    const struct bus_ops *ops;
    struct bus_handlers h;
    struct event_base *base;
    const struct config *cfg;
    struct announcer announcer;
};

/* The Redis bus when cfg->redis_enabled, else the in-process bus; NULL
 * after logging why it could not be made. */
struct bus *bus_new(struct event_base *base, const struct config *cfg,
                    const struct bus_handlers *h);
void bus_free(struct bus *b);
/* b's target op, or mode "none" for a bus without one. */
void bus_target(struct bus *b, const char **mode, char *primary, size_t len, bool *tls);
/* The announce op of both implementations: tallied by b->announcer. */
void bus_announce_event(struct bus *b, const char *room, size_t room_len, enum announce_kind k,
                        const char *name);
/* How both implementations hand a frame to the handlers: every frame the
 * gateway gets from the bus passes here, so gateway_bus_received_total is
 * counted here and nowhere else. */
void bus_deliver_room(struct bus *b, const char *room, size_t room_len, const struct msgid *id,
                      struct frame *f);
void bus_deliver_broadcast(struct bus *b, struct frame *f);

/* client_count frames go out at most this often: each is a frame to every
 * client, so in a connection storm they are what costs. */
#define BUS_COUNT_INTERVAL_MS 1000

/* Shared by the implementations. */
int bus_base_init(struct bus *b, const struct bus_ops *ops, struct event_base *base,
                  const struct config *cfg, const struct bus_handlers *h);
void bus_base_free(struct bus *b);

struct bus *bus_local_new(struct event_base *base, const struct config *cfg,
                          const struct bus_handlers *h);
struct bus *bus_redis_new(struct event_base *base, const struct config *cfg,
                          const struct bus_handlers *h);
/* Whether the files of cfg's Redis TLS settings hold a usable CA,
 * certificate and key (true without rediss): main checks it at start, so
 * that a file that is readable but unusable is a bad flag (exit status 2)
 * like an unreadable one. Logs which flag when not. */
bool bus_redis_check(const struct config *cfg);

#endif
