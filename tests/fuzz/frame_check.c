#include "frame_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

void check_fail(const char *what, const void *data, size_t len)
{
    fprintf(stderr, "fuzz_frame: %s\n  frame: %.*s\n", what, (int)(len > 2000 ? 2000 : len),
            (const char *)data);
    abort();
}

/* The frame being checked, for the messages. */
static const struct frame *current;

static void fail(const char *what)
{
    check_fail(what, current->buf + FRAME_HEADROOM, current->len);
}

static const char *need_string(json_t *o, const char *key, size_t *len)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        fail("a field that must be a string is missing or not one");
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

static struct view_room *find_room(const struct view *v, const char *room, size_t len)
{
    for (size_t i = 0; i < v->n; i++)
        if (v->rooms[i].len == len && memcmp(v->rooms[i].name, room, len) == 0)
            return (struct view_room *)&v->rooms[i];
    return NULL;
}

bool view_has_seen(const struct view *v, const char *room, size_t room_len, const struct msgid *id)
{
    const struct view_room *r = find_room(v, room, room_len);
    return r && r->has_last && msgid_cmp(&r->last, id) >= 0;
}

/* The room of a room frame, which the client must be in; NULL: global. */
static struct view_room *frame_room(struct view *v, json_t *o)
{
    if (!json_object_get(o, "room"))
        return NULL;
    size_t len;
    const char *room = need_string(o, "room", &len);
    struct view_room *r = find_room(v, room, len);
    if (!r)
        fail("a room frame for a room the client is not in");
    return r;
}

/* Parses a chat object's id; frame_bytes, when given, is the frame the
 * object was parsed from, whose spliced id must be the same. */
static struct msgid chat_id(json_t *o, const unsigned char *frame_bytes, size_t frame_len)
{
    size_t len;
    const char *s = need_string(o, "id", &len);
    struct msgid id, spliced;
    if (!msgid_parse(s, len, &id))
        fail("a chat id that is not <ms>-<seq>");
    need_string(o, "sender", NULL);
    need_string(o, "content", NULL);
    if (!json_is_integer(json_object_get(o, "timestamp")))
        fail("a chat frame without an integer timestamp");
    if (frame_bytes &&
        (!proto_chat_id(frame_bytes, frame_len, &spliced) || msgid_cmp(&id, &spliced) != 0))
        fail("a chat frame whose spliced id is not its JSON id");
    return id;
}

static void advance(bool *has_last, struct msgid *last, const struct msgid *id)
{
    if (*has_last && msgid_cmp(id, last) <= 0)
        fail("a chat id that does not increase: duplicate or out of order");
    *has_last = true;
    *last = *id;
}

static void check_chat(struct view *v, json_t *o, const unsigned char *data, size_t len)
{
    struct msgid id = chat_id(o, data, len);
    struct view_room *r = frame_room(v, o);
    if (r)
        advance(&r->has_last, &r->last, &id);
    else
        advance(&v->has_global, &v->last_global, &id);
}

static void check_joined(struct view *v, json_t *o)
{
    size_t len;
    const char *room = need_string(o, "room", &len);
    json_t *members = json_object_get(o, "members");
    json_t *history = json_object_get(o, "history");
    if (!json_is_integer(members) || json_integer_value(members) < 1)
        fail("joined without the joiner among its members");
    if (!json_is_boolean(json_object_get(o, "truncated")) || !json_is_array(history))
        fail("joined without truncated or history");
    struct view_room *r = find_room(v, room, len);
    if (!r) {
        if (v->n == VIEW_ROOMS_MAX)
            fail("a client in more rooms than --max-rooms");
        r = &v->rooms[v->n++];
        memcpy(r->name, room, len);
        r->len = len;
    }
    r->has_last = false;
    size_t i;
    json_t *entry;
    json_array_foreach(history, i, entry)
    {
        if (!json_is_object(entry))
            fail("a history entry that is not an object");
        const char *type = need_string(entry, "type", NULL);
        size_t elen;
        const char *eroom = need_string(entry, "room", &elen);
        if (strcmp(type, "chat") != 0 || elen != len || memcmp(eroom, room, len) != 0)
            fail("a history entry that is not a chat frame of the room");
        struct msgid id = chat_id(entry, NULL, 0);
        advance(&r->has_last, &r->last, &id);
    }
}

static void check_left(struct view *v, json_t *o)
{
    size_t len;
    const char *room = need_string(o, "room", &len);
    struct view_room *r = find_room(v, room, len);
    if (!r)
        fail("left for a room the client was not told it joined");
    *r = v->rooms[--v->n];
}

static void check_presence(struct view *v, json_t *o)
{
    size_t len;
    const char *room = need_string(o, "room", &len);
    json_t *users = json_object_get(o, "users");
    if (!json_is_array(users))
        fail("presence without a users array");
    bool self_listed = false;
    const char *prev = NULL;
    size_t i;
    json_t *u;
    json_array_foreach(users, i, u)
    {
        const char *name = json_string_value(u);
        if (!name)
            fail("a presence user that is not a string");
        if (prev && strcmp(prev, name) >= 0)
            fail("presence users not distinct and sorted");
        self_listed |= strcmp(name, v->self) == 0;
        prev = name;
    }
    if (find_room(v, room, len) && !self_listed)
        fail("presence of a room the client is in without the client");
}

static void check_error(json_t *o)
{
    const char *code = need_string(o, "code", NULL);
    need_string(o, "content", NULL);
    for (int e = PROTO_OK + 1; e < PROTO_ERROR_COUNT; e++)
        if (strcmp(code, proto_error_code((enum proto_error)e)) == 0)
            return;
    fail("an error code the protocol does not define");
}

static void check_object(struct view *v, json_t *o, const unsigned char *data, size_t len)
{
    const char *type = need_string(o, "type", NULL);
    if (strcmp(type, "chat") == 0) {
        check_chat(v, o, data, len);
    } else if (strcmp(type, "system") == 0) {
        need_string(o, "content", NULL);
        frame_room(v, o);
    } else if (strcmp(type, "joined") == 0) {
        check_joined(v, o);
    } else if (strcmp(type, "left") == 0) {
        check_left(v, o);
    } else if (strcmp(type, "presence") == 0) {
        check_presence(v, o);
    } else if (strcmp(type, "error") == 0) {
        check_error(o);
    } else if (strcmp(type, "welcome") == 0) {
        if (strcmp(need_string(o, "username", NULL), v->self) != 0)
            fail("welcome with another user name");
    } else if (strcmp(type, "echo") == 0) {
        need_string(o, "content", NULL);
    } else if (strcmp(type, "client_count") == 0) {
        if (!json_is_integer(json_object_get(o, "count")))
            fail("client_count without an integer count");
    } else if (strcmp(type, "pong") != 0) {
        fail("a frame type the protocol does not define");
    }
}

void view_check(struct view *v, const struct frame *f)
{
    static int trace = -1;
    if (trace < 0)
        trace = getenv("FUZZ_TRACE") != NULL;
    current = f;
    const unsigned char *data = f->buf + FRAME_HEADROOM;
    if (trace)
        fprintf(stderr, "%s <- %.*s\n", v->self, (int)f->len, (const char *)data);
    if (f->refs == 0)
        fail("a frame delivered with no reference");
    if (data[f->len] != '\0')
        fail("a frame without its terminating NUL");
    json_error_t err;
    json_t *o = json_loadb((const char *)data, f->len, JSON_REJECT_DUPLICATES, &err);
    if (!o) {
        fprintf(stderr, "jansson: %s at %d\n", err.text, err.position);
        fail("a frame that is not valid JSON");
    }
    if (!json_is_object(o))
        fail("a frame that is not a JSON object");
    check_object(v, o, data, f->len);
    json_decref(o);
}
