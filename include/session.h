/* session: one connected WebSocket client's policy. Reassembles its frames
 * within the size limit, rate-limits them and hands chat frames to its
 * requests (requests.h: decoding, dispatch, the order of answers); decides
 * when it is pinged, when it is dropped for silence, and when it is closed
 * as a slow consumer. Its output is its connection's (conn.h), the one
 * writer of the socket. */
#ifndef GATEWAY_SESSION_H
#define GATEWAY_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bus.h"
#include "config.h"
#include "conn.h"
#include "counts.h"
#include "keepalive.h"
#include "list.h"
#include "peers.h"
#include "proto.h"
#include "ratelimit.h"
#include "requests.h"

struct event_base;
struct lws;

enum session_kind { SESSION_CHAT, SESSION_ECHO };

struct session {
    struct conn conn;
    struct list link; /* on sessions.all */
    uint64_t id;
    struct requester req; /* name, rooms, requests in order; closing */
    struct ka_entry ka;
    int64_t last_rx_ms;
    int64_t last_ping_ms;
    struct ratelimit rate;
    const char *peer_addr; /* counted in sessions.peers, or NULL */
    unsigned char *rx;     /* reassembly of a fragmented message */
    uint32_t rx_len, rx_cap;
    uint8_t kind;
    bool rx_binary;
};

/* What the sessions of one gateway share; an instance of the gateway's. */
struct sessions {
    const struct config *cfg;
    struct bus *bus;
    struct requests *requests; /* and the rooms */
    struct keepalive keepalive;
    struct peers peers;
    struct conn_out out;
    struct counts counts;
    struct list all; /* every open session */
    long all_count;  /* open /ws and /echo sessions */
    long chat_count; /* open /ws sessions */
    uint64_t next_id;
    bool shutting_down;
};

/* What the requests need of the sessions, their ctx being the sessions. */
extern const struct requester_ops session_requester_ops;

int sessions_init(struct sessions *ss, struct event_base *base, const struct config *cfg,
                  struct bus *bus, struct requests *requests);
void sessions_free(struct sessions *ss);
/* Asks every session to close with 1001. */
void sessions_shutdown(struct sessions *ss);
/* Advances the keepalive wheel one tick (every ss->keepalive.tick_ms). */
void sessions_keepalive_tick(struct sessions *ss);

/* libwebsockets callbacks, in order of a session's life. */
int session_open(struct sessions *ss, struct session *s, struct lws *wsi, enum session_kind kind,
                 const char *name, const char *peer_addr);
/* Returns -1 to close (the close reason is set). */
int session_receive(struct sessions *ss, struct session *s, const void *in, size_t len);
void session_pong(struct session *s);
int session_writable(struct session *s);
void session_closed(struct sessions *ss, struct session *s);

#endif
