/* proto: the chat wire protocol (PROTOCOL.md). Decodes and validates client
 * frames with jansson, and encodes every server frame once, as a shared
 * frame. Chat frames are laid out as
 *     {"type":"chat","id":"<ID>",<rest>
 * so that the id, assigned by whoever orders the room (Redis or the local
 * bus), can be spliced in without decoding or re-encoding the rest. */
#ifndef GATEWAY_PROTO_H
#define GATEWAY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "frame.h"

#define PROTO_NAME_MAX 32
#define PROTO_ROOM_MAX 64
#define PROTO_CID_MAX 64 /* a client's message id: printable ASCII */
#define MSGID_STR_MAX 44 /* two 20-digit numbers, a dash and a NUL */

/* A message id: "<ms>-<seq>", the form of a Redis stream id. */
struct msgid {
    uint64_t ms;
    uint64_t seq;
};

bool msgid_parse(const char *s, size_t len, struct msgid *out);
/* Writes the NUL-terminated id into buf (MSGID_STR_MAX); returns its length. */
size_t msgid_format(const struct msgid *id, char *buf);
int msgid_cmp(const struct msgid *a, const struct msgid *b);

/* A client's message id (cid): 1 to PROTO_CID_MAX bytes of printable ASCII. */
bool proto_valid_cid(const char *s, size_t len);
/* 1 to max bytes of valid UTF-8 with no control characters (C0, DEL, C1). */
bool proto_valid_name(const char *s, size_t len, size_t max);

enum proto_type {
    PROTO_JOIN_ROOM,
    PROTO_LEAVE_ROOM,
    PROTO_CHAT,
    PROTO_ECHO,
    PROTO_PING,
    PROTO_PRESENCE,
};

enum proto_error {
    PROTO_OK = 0,
    PROTO_BAD_JSON,
    PROTO_UNKNOWN_TYPE,
    PROTO_BAD_ROOM,
    PROTO_BAD_CONTENT,
    PROTO_BAD_SINCE,
    PROTO_NOT_IN_ROOM,
    PROTO_RATE_LIMITED,
    PROTO_UNAVAILABLE,
    PROTO_TOO_MANY_ROOMS,
    PROTO_BAD_CID,
    PROTO_ERROR_COUNT
};

/* The wire code of an error ("bad_json", ...). */
const char *proto_error_code(enum proto_error e);

struct proto_request {
    enum proto_type type;
    const char *room; /* NULL when absent; points into root */
    size_t room_len;
    const char *content; /* NULL when absent; points into root */
    size_t content_len;
    const char *cid; /* a chat's client message id; NULL when absent */
    size_t cid_len;
    bool has_since;
    struct msgid since;
    json_t *root;
};

/* Decodes one text frame. On error returns the code and sets *why to a
 * sentence for people; req holds nothing to free. On success the caller
 * frees req with proto_request_free. */
enum proto_error proto_decode(const char *data, size_t len, struct proto_request *req,
                              const char **why);
void proto_request_free(struct proto_request *req);

/* Server frames. Each returns a new frame (refcount 1) or NULL on OOM. A
 * NULL room means global (the field is left out). */
struct frame *proto_welcome(const char *name, const char *conn_id, const char *gateway, int64_t ts);
struct frame *proto_error_frame(enum proto_error e, const char *why);
/* An error answering a chat: with the chat's cid when it had one. */
struct frame *proto_chat_error(enum proto_error e, const char *why, const char *cid,
                               size_t cid_len);
/* The error rate_limited, with the milliseconds after which the client may
 * send again, and the refused chat's cid when it had one (cid NULL: none). */
struct frame *proto_rate_limited(uint32_t retry_after_ms, const char *cid, size_t cid_len);
/* The cid of a frame that is a valid chat with one, copied into buf
 * (PROTO_CID_MAX bytes); returns its length, 0 for none. For answers made
 * before a frame is dispatched (the rate limit). */
size_t proto_peek_cid(const char *data, size_t len, char *buf);
struct frame *proto_echo(const char *content, size_t len);
struct frame *proto_pong(void);
struct frame *proto_left(const char *room, size_t room_len);
/* A client's leave_room request for room, for a removal made on its behalf. */
struct frame *proto_leave_request(const char *room, size_t room_len);
struct frame *proto_system(const char *room, size_t room_len, const char *content, int64_t ts);
/* A system frame announcing people (content as for proto_system), with, for
 * programs, its event ("connected", "disconnected", "joined", "left"), the
 * first names and the number of events it stands for. */
struct frame *proto_announcement(const char *room, size_t room_len, const char *content,
                                 const char *event, const char *const *names, size_t n,
                                 unsigned long count, int64_t ts);
struct frame *proto_client_count(long count, int64_t ts);
/* The client_count frame in the pieces a Redis script splices the cluster's
 * total, the total again and the time between (the count script), so that
 * its shape is defined here alone. */
extern const char *const proto_client_count_parts[4];
/* Whether f is a client_count frame (the bus keeps the last for newcomers). */
bool proto_is_client_count(const struct frame *f);
struct frame *proto_presence(const char *room, size_t room_len, const char *const *users, size_t n);
struct frame *proto_joined(const char *room, size_t room_len, long members,
                           struct frame *const *history, size_t n, bool truncated);

/* Control frames: what one gateway asks of every gateway (the server API's
 * disconnect and removal from a room), published on the broadcast channel
 * like a global frame and taken out before any client sees it. Defined
 * here alone, as {"type":"control","op":...}. */
enum proto_control_op { PROTO_CONTROL_DISCONNECT, PROTO_CONTROL_LEAVE };
/* WebSocket close reasons fit a control frame of 125 bytes with the code. */
#define PROTO_CLOSE_REASON_MAX 123
struct proto_control {
    enum proto_control_op op;
    char user[PROTO_NAME_MAX + 1];
    char room[PROTO_ROOM_MAX + 1]; /* PROTO_CONTROL_LEAVE */
    size_t room_len;
    uint16_t code; /* PROTO_CONTROL_DISCONNECT: the close code and reason */
    char reason[PROTO_CLOSE_REASON_MAX + 1];
};
/* The frame for c (its strings valid as proto_valid_name and the reason at
 * most PROTO_CLOSE_REASON_MAX bytes of UTF-8), or NULL on OOM. */
struct frame *proto_control(const struct proto_control *c);
bool proto_is_control(const struct frame *f);
/* False for a frame that is not a well-formed control frame. */
bool proto_control_decode(const struct frame *f, struct proto_control *out);

/* The part of a chat frame after the id: "room":..,"sender":..,"content":..,
 * "cid":..,"timestamp":..} (room and cid when given). Returns a malloc'd
 * string and its length in *len. */
char *proto_chat_rest(const char *room, size_t room_len, const char *sender, const char *content,
                      size_t content_len, const char *cid, size_t cid_len, int64_t ts, size_t *len);
/* The whole chat frame for an id and a rest. */
struct frame *proto_chat_assemble(const struct msgid *id, const char *rest, size_t len);
/* The prefix that proto_chat_assemble puts before the id. */
extern const char PROTO_CHAT_PREFIX[];
/* Reads the id back out of an assembled chat frame; false if it is not one. */
bool proto_chat_id(const unsigned char *payload, size_t len, struct msgid *out);

#endif
