/* The Redis bus's pieces and the state they share. The rest of the gateway
 * sees the Redis bus through bus.h alone (bus_redis_new and the ops); this
 * header is for the four files that make it up, which all work on the one
 * struct rbus, so its layout is written once here rather than split over
 * four headers that would each need it.
 *
 * The pieces, each calling only the ones below it:
 *   bus_redis.c           connection and reconnect: the two hiredis
 *                         connections, readiness, heartbeat and liveness,
 *                         backoff, close; the ops table
 *   bus_redis_sentinel.c  redis[s]+sentinel://: asking the sentinels for the
 *                         primary before each attempt, the ROLE check, the
 *                         watch for +switch-master
 *   bus_redis_presence.c  presence, names, client counts, the merge of
 *                         announcements, reaping of dead gateways
 *   bus_redis_channels.c  room subscriptions, publishing, joins and the
 *                         replay of streams after a resubscribe
 *   bus_redis_canary.c    the subscription canary: a message to itself
 *                         that must come back, or the link is restarted
 *                         (under Redis Cluster on every primary's sharded
 *                         subscriber too, where a miss fails that primary)
 *   bus_redis_scripts.c   keys, loading and calling the Lua scripts
 *                         (gateway/lua/, embedded at build time), and the
 *                         requests: script calls and plain commands
 *                         (send_command), the answer handling common to
 *                         them
 *   bus_redis_tls.c       opening a connection: TCP, then TLS for rediss
 *   bus_redis_cluster.c   Redis Cluster (redis+cluster://): the slot map,
 *                         a command and a sharded-subscriber connection per
 *                         primary, routing by key slot, every request's
 *                         MOVED, ASK and TRYAGAIN, a failed primary left
 *                         alone until the map names its replacement
 *   bus_redis_cluster_presence.c  presence's cleanups under Redis Cluster,
 *                         where each room's keys are on their own node
 * The lower pieces report the link's progress up through rb->link_step (and
 * the sentinel piece through rb->link_found and rb->link_moved), functions
 * the connection piece sets, instead of calling into it. */
#ifndef GATEWAY_BUS_REDIS_INTERNAL_H
#define GATEWAY_BUS_REDIS_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/* Debian bookworm's libhiredis-dev (0.14) installs headers in /usr/include:
 * the bus must be compiled against deploy/build-hiredis.sh's 1.x instead. */
#if HIREDIS_MAJOR < 1
#error "hiredis 0.x headers found first: use deploy/build-hiredis.sh's prefix"
#endif

#include <openssl/ssl.h>

#include "bus.h"
#include "presence.h"
#include "strmap.h"

#define KEY_MAX 256
/* Most arguments a request takes: the count script's 13 (keys and ARGV). */
#define MAX_ARGS 13

/* The scripts, generated from gateway/lua/<name>.lua. */
extern const char lua_chat[], lua_room[], lua_leave[], lua_count[], lua_reset[], lua_announce[],
    lua_reap[], lua_api[], lua_forget_room[], lua_reap_pick[], lua_room_members[];

enum script {
    S_CHAT,
    S_ROOM,
    S_LEAVE,
    S_COUNT,
    S_RESET,
    S_ANNOUNCE,
    S_REAP,
    S_API,
    S_FORGET_ROOM, /* Redis Cluster's reset and reap, one room at a time */
    S_REAP_PICK,
    S_COUNT_ALL
};

enum link_state { LINK_DOWN, LINK_CONNECTING, LINK_READY };

struct sentinel;
struct cluster_map;
struct shard_canary;

/* "HOST:PORT" and room to spare. */
#define ADDR_MAX 300

struct rbus {
    struct bus base;
    redisAsyncContext *cmd, *sub;
    /* The server the link goes to: --redis's, or the primary the sentinels
     * named (redis[s]+sentinel://), known once they answered this attempt
     * (target_known). direct: the next attempt goes to host:port without
     * asking (a +switch-master named it). named_by: which sentinel named it,
     * for the log ("" in single mode). */
    char host[256];
    int port;
    bool target_known, direct;
    char named_by[ADDR_MAX];
    /* Where the link was ready last ("" before the first time): a ready
     * link elsewhere is a failover followed. */
    char ready_addr[ADDR_MAX];
    struct sentinel *sentinel; /* NULL without redis[s]+sentinel:// */
    /* rediss://: the context every connection's SSL comes from, and each
     * connection's SSL (owned by its hiredis context) to say why a
     * handshake failed. NULL without TLS. */
    SSL_CTX *tls;
    SSL *cmd_ssl, *sub_ssl;
    /* The context whose callback is tearing the link down (hiredis frees
     * it after the callback), for its error; NULL otherwise. */
    const redisAsyncContext *dying;
    enum link_state state;
    bool cmd_up, broadcast_live;
    unsigned scripts_pending;
    char sha[S_COUNT_ALL][41];
    /* A step toward readiness was made (failure NULL) or the link failed. */
    void (*link_step)(struct rbus *rb, const char *failure);
    /* The sentinel named_by named host:port the primary: connect to it. */
    void (*link_found)(struct rbus *rb, const char *host, int port, const char *named_by);
    /* A sentinel says the primary is now host:port (why: its words, for the
     * log): leave the old one now and connect to it at once. */
    void (*link_moved)(struct rbus *rb, const char *host, int port, const char *named_by,
                       const char *why);
    unsigned attempt;
    struct event *reconnect_timer, *heartbeat_timer, *close_timer;
    /* This gateway's clients, as publish_count last said; and the timer of
     * a total the count script held back (another gateway published one
     * less than a second ago), which is sent again when it may go. */
    long local_clients;
    struct event *count_retry;
    unsigned heartbeats_unanswered; /* reset by the heartbeat's answer */
    unsigned replies_since_beat;    /* request answers since the last heartbeat */
    /* Requests that failed (an error answer): one log line per second at
     * most, since a Redis that refuses everything would make one each. */
    int64_t failure_logged_ms;
    unsigned failures_unlogged;
    bool closing;
    unsigned close_pending; /* PINGs behind the withdrawal, unanswered */
    bus_done_fn close_done;
    void *close_arg;
    struct strmap channels; /* room -> struct channel (channels piece) */
    /* redis+cluster://: the nodes and their slots (bus_redis_cluster.c);
     * cmd and sub are then connections to a seed, for CLUSTER SLOTS and the
     * broadcast channel (classic pub/sub reaches every node). NULL on one
     * Redis. */
    struct rcluster *cluster;
    struct presence presence; /* what this gateway registered, to redo it */
    char broadcast[KEY_MAX];
    size_t broadcast_len;
    /* The event stream's key ("" when --events-stream is off) and cap, as
     * the scripts take them (event.lua). */
    char events[KEY_MAX];
    size_t events_len;
    char events_cap[16];
    struct {
        char channel[KEY_MAX]; /* this gateway's own: "<prefix>canary:<id>" */
        size_t channel_len;
        struct event *tick, *deadline;
        uint64_t seq; /* of the newest canary sent */
        bool out;     /* it is on its way */
        bool refused; /* Redis refused to publish it; said once per link */
        bool heard;   /* the subscriber delivered since the deadline was set */
        /* Redis Cluster: one canary per primary, on its sharded subscriber
         * (bus_redis_canary.c), while the link is up; NULL otherwise. */
        struct shard_canary *shards;
        size_t n_shards;
    } canary;
};

/* ---- opening connections, TLS (bus_redis_tls.c) ---- */

/* A connection to host:port on rb's event base, TLS started when rb->tls
 * (its SSL into *ssl, owned by the context), with data and the callbacks
 * set; or NULL with why (whylen bytes) saying why not. */
redisAsyncContext *redis_open(struct rbus *rb, const char *host, int port, SSL **ssl, void *data,
                              redisConnectCallback *on_connect,
                              redisDisconnectCallback *on_disconnect, char *why, size_t whylen);

/* The context for cfg's rediss:// settings (logs the mode once); NULL after
 * logging why it cannot be made. */
SSL_CTX *redis_tls_ctx_new(const struct config *cfg);
/* Starts TLS on c, just connecting to host, with the server name
 * (--redis-tls-server-name, else host) checked unless
 * --redis-tls-insecure-skip-verify: the SSL hiredis now owns, or NULL. */
SSL *redis_tls_start(SSL_CTX *ctx, const struct config *cfg, const char *host, redisContext *c);
/* Into buf, why a connection failed according to OpenSSL: its error, and
 * the certificate check's result of a or b (either may be NULL); false
 * when OpenSSL has no error to tell. Clears the thread's OpenSSL errors. */
bool redis_tls_why(SSL *a, SSL *b, char *buf, size_t len);
void redis_tls_ctx_free(SSL_CTX *ctx);

struct request;
/* A request's answer: reply is NULL when it failed (error logged). */
typedef void (*request_done_fn)(struct request *q, const redisReply *reply);

/* A request in flight on a command connection: a script call, or under
 * Redis Cluster a plain command (send_command), kept so that it can be
 * sent again where a redirection says. */
struct request {
    struct rbus *rb;
    /* command: argv is a whole command, its name then its key; else the
     * script's keys and ARGV. */
    bool command;
    enum script script;
    request_done_fn done; /* NULL: nothing to do with the answer */
    union {
        struct {
            bus_chat_fn done;
        } chat;
        struct {
            bus_join_fn cb;
        } join;
        struct {
            bus_names_fn cb;
        } names;
        bus_rooms_fn rooms;
        bus_gateways_fn gateways;
    } u;
    void *arg;
    /* For a retry after NOSCRIPT, MOVED, ASK or TRYAGAIN: the arguments,
     * copied; the redirections and TRYAGAINs followed so far. */
    unsigned redirects, tryagains;
    struct request *next; /* in the cluster's queue waiting to try again */
    uint16_t slot;        /* its key's, while in that queue */
    int argc;
    const char *argv[MAX_ARGS];
    size_t argvlen[MAX_ARGS];
    char room[PROTO_ROOM_MAX + 1];
    size_t room_len;
    char data[]; /* argument bytes */
};

static inline bool ready(const struct rbus *rb)
{
    return rb->state == LINK_READY && !rb->closing;
}

/* ---- Sentinel (bus_redis_sentinel.c) ---- */

/* Starts watching a sentinel for +switch-master; NULL on failure (logged). */
struct sentinel *sentinel_new(struct rbus *rb);
/* Asks the sentinels in turn for the primary: rb->link_found with the
 * first answer, or rb->link_step with why none named one. */
void sentinel_discover(struct sentinel *s);
/* Drops a discovery in flight, reporting nothing. */
void sentinel_cancel(struct sentinel *s);
/* The primary the last answer named did not work out: the next discovery
 * starts with another sentinel. */
void sentinel_distrust(struct sentinel *s);
void sentinel_free(struct sentinel *s);

/* ---- scripts ---- */

/* "<prefix><kind><s>" into buf (KEY_MAX bytes); returns its length. Under
 * Redis Cluster the hash tag of room goes between kind and s (the global
 * tag when room is NULL), so that a room's keys and channel share a slot,
 * and the gateways' shared keys another. */
size_t make_key_in(char *buf, const struct rbus *rb, const char *room, size_t room_len,
                   const char *kind, const char *s, size_t len);
/* A key of no room: make_key_in with room NULL. */
size_t make_key(char *buf, const struct rbus *rb, const char *kind, const char *s, size_t len);
/* A room's own key, "<prefix><kind>[tag]<room>". */
size_t room_key(char *buf, const struct rbus *rb, const char *kind, const char *room, size_t len);
/* SCRIPT LOAD of every script on a new command connection; each answer is
 * a link_step. */
void scripts_load(struct rbus *rb, redisAsyncContext *c);
/* A request with copies of its arguments (keys first, then ARGV), or NULL. */
struct request *request_new(struct rbus *rb, enum script s, int argc, const char **argv,
                            const size_t *lens, request_done_fn done);
/* Sends a script call to the node of its first key; on 0 the request is
 * freed after its done ran, on -1 (not sent) it stays the caller's. */
int send_script(struct rbus *rb, struct request *q);
/* Sends a request (script call or command) to the connection c, or to its
 * key's node when c is NULL: a redirection's or a TRYAGAIN's retry. As
 * send_script on 0 and -1. */
int send_request_to(struct rbus *rb, struct request *q, redisAsyncContext *c);
/* A request that cannot go on fails: done with NULL, then freed. */
void request_fail(struct request *q);
/* Sends a command, argv[0] its name and argv[1] its key, to the node of
 * its key; done (or NULL) gets its answer, or NULL when it failed. Under
 * Redis Cluster the arguments are copied into a request, so that a MOVED,
 * ASK or TRYAGAIN answer is followed as a script's; on one Redis a command
 * without done goes as it is, nothing copied, its answer unread. -1: not
 * sent (no connection serves its key now), done not called. */
int send_command(struct rbus *rb, int argc, const char **argv, const size_t *lens,
                 request_done_fn done, void *arg);
/* Appends the event stream's two arguments (key, cap) to a script call's
 * argv at i; returns i + 2. */
int events_args(const struct rbus *rb, const char **argv, size_t *lens, int i);
/* Sends a script call whose failure needs nothing but its done. */
void fire_and_forget(struct rbus *rb, enum script s, int argc, const char **argv,
                     const size_t *lens, request_done_fn done);

/* A new connection to host:port (TLS started when configured), or NULL
 * with why (whylen bytes) saying why not (bus_redis.c). */
redisAsyncContext *redis_connect(struct rbus *rb, const char *host, int port, SSL **ssl, char *why,
                                 size_t whylen);
/* Frees a connection of ours (what is in flight on it fails). */
void redis_free_ctx(redisAsyncContext **pc, SSL **pssl);

/* ---- Redis Cluster (bus_redis_cluster.c); one Redis: rb->cluster NULL ---- */

/* The cluster's state for the configuration's seeds, or NULL (out of
 * memory). */
struct rcluster *cluster_new(struct rbus *rb);
void cluster_free(struct rbus *rb);
/* The seed to connect the next attempt's cmd and sub to (in turn). */
void cluster_next_seed(struct rbus *rb, const char **host, int *port);
/* The seed connection is up: asks for the slot map, then connects to its
 * primaries; each step is a link_step. */
void cluster_link_open(struct rbus *rb);
/* A node's connection finished its handshake. */
void cluster_node_open(struct rbus *rb, redisAsyncContext *c);
/* c as the node connection it is (mutable), or NULL when it is no node's. */
redisAsyncContext *cluster_ctx(struct rbus *rb, const redisAsyncContext *c);
/* Whether every primary's connections are up (the link's first time). */
bool cluster_ready(const struct rbus *rb);
/* Logs the primaries and how many slots each serves. */
void cluster_log_nodes(const struct rbus *rb);
/* c, a node's connection, is going away: forgotten, and described into
 * what (len bytes) for the log; the node's index, or -1 when c is no
 * node's. */
long cluster_forget(struct rbus *rb, const redisAsyncContext *c, char *what, size_t len);
/* Node i failed (why: for the log): while the link is ready and it is not
 * the seed's node, only it is left (its rooms wait, its requests fail) and
 * the map is read again until it names a primary for its slots; false
 * when the whole link must start again instead. */
bool cluster_node_failed(struct rbus *rb, size_t i, const char *why);
/* Frees every node connection (the link is down). */
void cluster_link_down(struct rbus *rb);
/* The command connection for key: its slot's primary, or rb->cmd on one
 * Redis; NULL when no connection serves it now. */
redisAsyncContext *cmd_for(struct rbus *rb, const char *key, size_t len);
/* The sharded-subscriber connection for a room channel; NULL as above. */
redisAsyncContext *sub_for(struct rbus *rb, const char *chan, size_t len);
/* The index of the primary the map names for key's slot (connected or
 * not), or -1. */
long cluster_node_of(const struct rbus *rb, const char *key, size_t len);
/* A request's error reply err: true when it was a redirection that the
 * request now follows (q is resent), or TRYAGAIN (q is sent again after a
 * short wait); false: q fails as it is. */
bool cluster_redirect(struct rbus *rb, struct request *q, const char *err, size_t len);
/* Whether q, about to be sent, has to wait behind requests of its slot
 * that wait to try again (TRYAGAIN): then it waits with them, so that a
 * slot's requests reach Redis in the order they were made (a sender's
 * chats keep their order through a resharding), and is sent with them. */
bool cluster_hold(struct rbus *rb, struct request *q);
/* Asks for the slot map again (a slot moved); the subscriptions the move
 * ended are renewed on their new owners when it comes. */
void cluster_refresh(struct rbus *rb);
/* The heartbeat of every primary: PINGs each; one that answered nothing
 * for missed_max beats (it hangs without closing, its replica took over
 * meanwhile), or did not finish connecting within as many, fails
 * (cluster_node_failed) instead of holding its rooms' requests and
 * subscriptions. False (why said in silent, len bytes) when the whole link
 * must start again: such a node was the seed's, or the global tag's node
 * has been lost for more than missed_max beats. */
bool cluster_beat(struct rbus *rb, unsigned missed_max, char *silent, size_t len);
/* c, a node's command connection, answered: the node is alive, if behind
 * (its heartbeat may wait behind thousands of queued joins). */
void cluster_heard(struct rbus *rb, const redisAsyncContext *c);
/* The slot map of the primaries connected to, or NULL (no node connected:
 * one Redis, or the link is down). */
const struct cluster_map *cluster_map_now(const struct rbus *rb);
/* Primary i's (index of cluster_map_now's nodes) sharded-subscriber (sub
 * true) or command connection; NULL when it has none now. */
redisAsyncContext *cluster_node_conn(struct rbus *rb, size_t i, bool sub);
/* The index of the primary c is a connection of, or -1. */
long cluster_node_index(struct rbus *rb, const redisAsyncContext *c);
/* PING with fn on every node's command connection: how many were sent. */
unsigned cluster_ping_all(struct rbus *rb, redisCallbackFn *fn);
/* Presence under Redis Cluster (bus_redis_cluster_presence.c): reregister,
 * send_reap, and the withdrawal of this gateway's presence on close. */
void cluster_reregister(struct rbus *rb);
void cluster_reap(struct rbus *rb);
void cluster_withdraw(struct rbus *rb);
/* Primary i is back after it was lost (or a replica took its place): the
 * presence of this gateway's rooms on it is withdrawn and registered anew,
 * since the failover may have lost the newest writes and leaves made while
 * it was gone did not reach it. */
void cluster_reregister_node(struct rbus *rb, size_t i);

/* ---- channels ---- */

/* The subscriber connection is up: subscribes the broadcast channel. */
void channels_connected(struct rbus *rb);
/* The link is ready: subscribes the rooms wanted. */
void channels_link_up(struct rbus *rb);
/* The link is gone: the subscriptions died with it; joins waiting for one
 * are answered now. */
void channels_link_down(struct rbus *rb);
/* Redis Cluster: primary node's connections are gone: the subscriptions
 * of its rooms died with them, as channels_link_down's of all. */
void channels_node_down(struct rbus *rb, size_t node);
void channels_free(struct rbus *rb);
/* The room script's request for one room; mode is room.lua's ARGV[1]. */
int room_request(struct rbus *rb, const char *mode, const char *room, size_t room_len,
                 const char *name, const struct msgid *since, request_done_fn done,
                 struct request **out);
void redis_subscribe(struct bus *b, const char *room, size_t room_len);
void redis_unsubscribe(struct bus *b, const char *room, size_t room_len);
void redis_join(struct bus *b, const char *room, size_t room_len, const char *name, bool add,
                const struct msgid *since, bus_join_fn cb, void *arg);
void redis_publish_chat(struct bus *b, const struct bus_chat *m, bus_chat_fn done, void *arg);
int redis_publish_frame(struct bus *b, const char *room, size_t room_len, struct frame *f);

/* ---- the subscription canary ---- */

/* The channel and timers; -1 when out of memory (canary_free frees what
 * was made). */
int canary_init(struct rbus *rb);
void canary_free(struct rbus *rb);
/* The link is ready: canaries go out every interval (under Redis Cluster
 * each primary's canary channel is subscribed first). */
void canary_link_up(struct rbus *rb);
void canary_link_down(struct rbus *rb);
/* Redis Cluster: primary node's connections are gone; its canary waits
 * for it to be up again (canary_map_changed). */
void canary_node_down(struct rbus *rb, size_t node);
/* Whether a reply on the subscriber connection (kind "message",
 * "subscribe"...) is about the canary's channel: then it is handled. */
bool canary_message(struct rbus *rb, const redisReply *kind, const redisReply *chan,
                    const redisReply *payload);
/* Something came on subscriber connection c (the seed's or a primary's):
 * it is alive, if behind. */
void canary_heard(struct rbus *rb, const redisAsyncContext *c);
/* The slot map was read again, or a primary is up again: a primary whose
 * canary channel's slot left it, or whose subscription Redis ended or was
 * never made, gets another channel. */
void canary_map_changed(struct rbus *rb);

/* ---- presence and counts ---- */

/* mode: "withdraw", "connect" or "beat" (count.lua). A heartbeat (beat
 * true) counts as unanswered until its answer. */
void send_count(struct rbus *rb, long local, const char *mode, bool beat);
void send_reap(struct rbus *rb);
/* Withdraws what this gateway registered and registers what it has now. */
void reregister(struct rbus *rb);
/* Registers what this gateway has now (its presence entries and room set),
 * each on its key's node: reregister's second half. */
void register_rooms(struct rbus *rb);
/* Registers this gateway's presence entries of one room of
 * rb->presence.rooms (its key and its names), on the room's node. */
void register_room(struct rbus *rb, const struct strmap_slot *room);
/* verb (SADD or SREM) room on this gateway's room set; no answer awaited
 * (send_command). */
void room_set_command(struct rbus *rb, const char *verb, const char *room, size_t room_len);
void redis_leave(struct bus *b, const char *room, size_t room_len, const char *name);
void redis_presence(struct bus *b, const char *room, size_t room_len, bus_names_fn cb, void *arg);
void redis_history(struct bus *b, const char *room, size_t room_len, const struct msgid *since,
                   bus_join_fn cb, void *arg);
void redis_rooms(struct bus *b, bus_rooms_fn cb, void *arg);
void redis_gateways(struct bus *b, bus_gateways_fn cb, void *arg);
void redis_publish_announcement(struct bus *b, const char *room, size_t room_len,
                                const struct announce_batch *batch);
void redis_publish_count(struct bus *b, long local);
void redis_connection_event(struct bus *b, bool connected, const char *name);
/* The count_retry timer: sends the held-back total again. */
void redis_count_retry(evutil_socket_t fd, short what, void *arg);

#endif
