#include "proto.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char PROTO_CHAT_PREFIX[] = "{\"type\":\"chat\",\"id\":\"";

static const char *const error_codes[PROTO_ERROR_COUNT] = {
    [PROTO_OK] = "ok",
    [PROTO_BAD_JSON] = "bad_json",
    [PROTO_UNKNOWN_TYPE] = "unknown_type",
    [PROTO_BAD_ROOM] = "bad_room",
    [PROTO_BAD_CONTENT] = "bad_content",
    [PROTO_BAD_SINCE] = "bad_since",
    [PROTO_NOT_IN_ROOM] = "not_in_room",
    [PROTO_RATE_LIMITED] = "rate_limited",
    [PROTO_UNAVAILABLE] = "unavailable",
    [PROTO_TOO_MANY_ROOMS] = "too_many_rooms",
    [PROTO_BAD_CID] = "bad_cid",
};

const char *proto_error_code(enum proto_error e)
{
    return e < PROTO_ERROR_COUNT ? error_codes[e] : "internal";
}

static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

bool msgid_parse(const char *s, size_t len, struct msgid *out)
{
    const char *dash = memchr(s, '-', len);
    if (!dash)
        return false;
    size_t ms_len = (size_t)(dash - s);
    return parse_u64(s, ms_len, &out->ms) && parse_u64(dash + 1, len - ms_len - 1, &out->seq);
}

size_t msgid_format(const struct msgid *id, char *buf)
{
    int n = snprintf(buf, MSGID_STR_MAX, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
    return (size_t)n;
}

int msgid_cmp(const struct msgid *a, const struct msgid *b)
{
    if (a->ms != b->ms)
        return a->ms < b->ms ? -1 : 1;
    if (a->seq != b->seq)
        return a->seq < b->seq ? -1 : 1;
    return 0;
}

/* Decodes one UTF-8 sequence at s (n bytes left); returns its length and
 * the code point, or 0 if it is malformed, overlong, a surrogate or beyond
 * U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xE0) == 0xC0) {
        len = 2, v = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
        len = 3, v = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return 0;
    *cp = v;
    return len;
}

bool proto_valid_name(const char *s, size_t len, size_t max)
{
    if (!s || len == 0 || len > max)
        return false;
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        size_t n = utf8_decode(p + i, len - i, &cp);
        if (n == 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return false;
        i += n;
    }
    return true;
}

static const struct {
    const char *name;
    enum proto_type type;
} types[] = {
    {"join_room", PROTO_JOIN_ROOM}, {"leave_room", PROTO_LEAVE_ROOM},
    {"chat", PROTO_CHAT},           {"echo", PROTO_ECHO},
    {"ping", PROTO_PING},           {"presence", PROTO_PRESENCE},
};

/* Reads an optional string field; false if present but not a string. */
static bool string_field(json_t *root, const char *key, const char **out, size_t *len)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    *len = 0;
    if (!v)
        return true;
    if (!json_is_string(v))
        return false;
    *out = json_string_value(v);
    *len = json_string_length(v);
    return true;
}

bool proto_valid_cid(const char *s, size_t len)
{
    if (len == 0 || len > PROTO_CID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x20 || s[i] > 0x7E)
            return false;
    return true;
}

static enum proto_error fail(json_t *root, enum proto_error e, const char **why, const char *s)
{
    json_decref(root);
    *why = s;
    return e;
}

enum proto_error proto_decode(const char *data, size_t len, struct proto_request *req,
                              const char **why)
{
    static const char room_rule[] =
        "room must be 1 to 64 bytes of UTF-8 without control characters";
    memset(req, 0, sizeof(*req));
    json_error_t err;
    json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &err);
    if (!root)
        return fail(NULL, PROTO_BAD_JSON, why, "the frame is not valid JSON");
    if (!json_is_object(root))
        return fail(root, PROTO_BAD_JSON, why, "the frame must be a JSON object");

    const char *type;
    size_t type_len;
    if (!string_field(root, "type", &type, &type_len) || !type)
        return fail(root, PROTO_UNKNOWN_TYPE, why, "the frame needs a string field \"type\"");
    size_t i = 0;
    for (; i < sizeof(types) / sizeof(types[0]); i++)
        if (strlen(types[i].name) == type_len && memcmp(types[i].name, type, type_len) == 0)
            break;
    if (i == sizeof(types) / sizeof(types[0]))
        return fail(root, PROTO_UNKNOWN_TYPE, why, "unknown frame type");
    req->type = types[i].type;

    bool room_needed = req->type == PROTO_JOIN_ROOM || req->type == PROTO_LEAVE_ROOM ||
                       req->type == PROTO_PRESENCE;
    if (room_needed || req->type == PROTO_CHAT) { /* other types ignore a room */
        if (!string_field(root, "room", &req->room, &req->room_len) ||
            ((req->room || room_needed) &&
             !proto_valid_name(req->room, req->room_len, PROTO_ROOM_MAX)))
            return fail(root, PROTO_BAD_ROOM, why, room_rule);
    }

    if (req->type == PROTO_CHAT || req->type == PROTO_ECHO) {
        if (!string_field(root, "content", &req->content, &req->content_len) || !req->content ||
            req->content_len == 0)
            return fail(root, PROTO_BAD_CONTENT, why, "content must be a non-empty string");
    }

    if (req->type == PROTO_CHAT) {
        if (!string_field(root, "cid", &req->cid, &req->cid_len) ||
            (req->cid && !proto_valid_cid(req->cid, req->cid_len)))
            return fail(root, PROTO_BAD_CID, why, "cid must be 1 to 64 bytes of printable ASCII");
    }

    if (req->type == PROTO_JOIN_ROOM) {
        json_t *since = json_object_get(root, "since");
        if (since && !json_is_null(since)) {
            if (!json_is_string(since) ||
                !msgid_parse(json_string_value(since), json_string_length(since), &req->since))
                return fail(root, PROTO_BAD_SINCE, why,
                            "since must be a message id such as \"1732190000000-0\"");
            req->has_since = true;
        }
    }
    req->root = root;
    return PROTO_OK;
}

void proto_request_free(struct proto_request *req)
{
    json_decref(req->root);
    req->root = NULL;
}

/* Serialises obj into a new frame and drops obj. */
static struct frame *dump(json_t *obj)
{
    if (!obj)
        return NULL;
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t len = json_dumpb(obj, NULL, 0, flags);
    struct frame *f = len ? frame_alloc(len) : NULL;
    if (f)
        json_dumpb(obj, (char *)frame_data(f), len, flags);
    json_decref(obj);
    return f;
}

static json_t *room_value(const char *room, size_t room_len)
{
    return json_stringn(room, room_len);
}

struct frame *proto_welcome(const char *name, const char *conn_id, const char *gateway, int64_t ts)
{
    char content[PROTO_NAME_MAX + 16];
    snprintf(content, sizeof(content), "Welcome, %s!", name);
    return dump(json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "type", "welcome", "content",
                          content, "sender", "System", "id", conn_id, "gateway", gateway,
                          "username", name, "timestamp", (json_int_t)ts));
}

/* An error, with the cid of the chat it answers when there is one. */
static json_t *error_object(enum proto_error e, const char *why, const char *cid, size_t cid_len)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "type", "error", "code", proto_error_code(e), "content", why);
    if (o && cid)
        json_object_set_new(o, "cid", json_stringn(cid, cid_len));
    return o;
}

struct frame *proto_error_frame(enum proto_error e, const char *why)
{
    return dump(error_object(e, why, NULL, 0));
}

struct frame *proto_chat_error(enum proto_error e, const char *why, const char *cid, size_t cid_len)
{
    return dump(error_object(e, why, cid, cid_len));
}

struct frame *proto_rate_limited(uint32_t retry_after_ms, const char *cid, size_t cid_len)
{
    json_t *o =
        error_object(PROTO_RATE_LIMITED,
                     "too many frames: wait retry_after_ms before sending again", cid, cid_len);
    if (o)
        json_object_set_new(o, "retry_after_ms", json_integer((json_int_t)retry_after_ms));
    return dump(o);
}

size_t proto_peek_cid(const char *data, size_t len, char *buf)
{
    struct proto_request req;
    const char *why;
    if (proto_decode(data, len, &req, &why) != PROTO_OK)
        return 0;
    size_t n = req.type == PROTO_CHAT && req.cid ? req.cid_len : 0;
    if (n)
        memcpy(buf, req.cid, n);
    proto_request_free(&req);
    return n;
}

struct frame *proto_echo(const char *content, size_t len)
{
    return dump(json_pack("{s:s, s:s%}", "type", "echo", "content", content, len));
}

struct frame *proto_pong(void)
{
    static const char pong[] = "{\"type\":\"pong\"}";
    return frame_copy(pong, sizeof(pong) - 1);
}

/* {"type":TYPE,"room":ROOM} */
static struct frame *room_only(const char *type, const char *room, size_t room_len)
{
    return dump(json_pack("{s:s, s:o}", "type", type, "room", room_value(room, room_len)));
}

struct frame *proto_left(const char *room, size_t room_len)
{
    return room_only("left", room, room_len);
}

struct frame *proto_leave_request(const char *room, size_t room_len)
{
    return room_only("leave_room", room, room_len);
}

static json_t *system_object(const char *room, size_t room_len, const char *content, int64_t ts)
{
    json_t *o =
        json_pack("{s:s, s:s, s:s}", "type", "system", "content", content, "sender", "System");
    if (o && room)
        json_object_set_new(o, "room", room_value(room, room_len));
    if (o)
        json_object_set_new(o, "timestamp", json_integer(ts));
    return o;
}

struct frame *proto_system(const char *room, size_t room_len, const char *content, int64_t ts)
{
    return dump(system_object(room, room_len, content, ts));
}

struct frame *proto_announcement(const char *room, size_t room_len, const char *content,
                                 const char *event, const char *const *names, size_t n,
                                 unsigned long count, int64_t ts)
{
    json_t *o = system_object(room, room_len, content, ts);
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(names[i]));
    if (!o || !arr) {
        json_decref(o);
        json_decref(arr);
        return NULL;
    }
    json_object_set_new(o, "event", json_string(event));
    json_object_set_new(o, "names", arr);
    json_object_set_new(o, "count", json_integer((json_int_t)count));
    return dump(o);
}

/* Numbers need no escaping: the frame is its pieces and the numbers. */
const char *const proto_client_count_parts[4] = {"{\"type\":\"client_count\",\"content\":\"",
                                                 "\",\"count\":", ",\"timestamp\":", "}"};

struct frame *proto_client_count(long count, int64_t ts)
{
    const char *const *p = proto_client_count_parts;
    char buf[160];
    int n = snprintf(buf, sizeof(buf), "%s%ld%s%ld%s%lld%s", p[0], count, p[1], count, p[2],
                     (long long)ts, p[3]);
    return n > 0 && (size_t)n < sizeof(buf) ? frame_copy(buf, (size_t)n) : NULL;
}

bool proto_is_client_count(const struct frame *f)
{
    size_t n = strlen(proto_client_count_parts[0]);
    return f->len >= n && memcmp(f->buf + FRAME_HEADROOM, proto_client_count_parts[0], n) == 0;
}

struct frame *proto_presence(const char *room, size_t room_len, const char *const *users, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(users[i]));
    return dump(json_pack("{s:s, s:o, s:o}", "type", "presence", "room", room_value(room, room_len),
                          "users", arr));
}

struct frame *proto_joined(const char *room, size_t room_len, long members,
                           struct frame *const *history, size_t n, bool truncated)
{
    /* The history entries are already-encoded chat frames: splice their
     * bytes into the array rather than decoding them again. */
    struct frame *head =
        dump(json_pack("{s:s, s:o, s:I, s:b}", "type", "joined", "room", room_value(room, room_len),
                       "members", (json_int_t)members, "truncated", truncated));
    if (!head)
        return NULL;
    static const char key[] = ",\"history\":[";
    size_t len = head->len - 1 + sizeof(key) - 1 + 2;
    for (size_t i = 0; i < n; i++)
        len += history[i]->len + (i ? 1 : 0);
    struct frame *f = frame_alloc(len);
    if (f) {
        unsigned char *p = frame_data(f);
        memcpy(p, frame_data(head), head->len - 1), p += head->len - 1;
        memcpy(p, key, sizeof(key) - 1), p += sizeof(key) - 1;
        for (size_t i = 0; i < n; i++) {
            if (i)
                *p++ = ',';
            memcpy(p, frame_data(history[i]), history[i]->len), p += history[i]->len;
        }
        *p++ = ']';
        *p++ = '}';
    }
    frame_unref(head);
    return f;
}

char *proto_chat_rest(const char *room, size_t room_len, const char *sender, const char *content,
                      size_t content_len, const char *cid, size_t cid_len, int64_t ts, size_t *len)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (room)
        json_object_set_new(o, "room", room_value(room, room_len));
    json_object_set_new(o, "sender", json_string(sender));
    json_object_set_new(o, "content", json_stringn(content, content_len));
    if (cid)
        json_object_set_new(o, "cid", json_stringn(cid, cid_len));
    json_object_set_new(o, "timestamp", json_integer(ts));
    const size_t flags = JSON_COMPACT | JSON_PRESERVE_ORDER;
    size_t n = json_dumpb(o, NULL, 0, flags);
    char *buf = n ? malloc(n) : NULL;
    if (buf) {
        json_dumpb(o, buf, n, flags);
        /* Drop the opening brace: the rest follows the id. */
        memmove(buf, buf + 1, n - 1);
        *len = n - 1;
    }
    json_decref(o);
    return buf;
}

struct frame *proto_chat_assemble(const struct msgid *id, const char *rest, size_t len)
{
    char idbuf[MSGID_STR_MAX];
    size_t idlen = msgid_format(id, idbuf);
    size_t plen = sizeof(PROTO_CHAT_PREFIX) - 1;
    struct frame *f = frame_alloc(plen + idlen + 2 + len);
    if (!f)
        return NULL;
    unsigned char *p = frame_data(f);
    memcpy(p, PROTO_CHAT_PREFIX, plen), p += plen;
    memcpy(p, idbuf, idlen), p += idlen;
    *p++ = '"';
    *p++ = ',';
    memcpy(p, rest, len);
    return f;
}

bool proto_chat_id(const unsigned char *payload, size_t len, struct msgid *out)
{
    size_t plen = sizeof(PROTO_CHAT_PREFIX) - 1;
    if (len <= plen || memcmp(payload, PROTO_CHAT_PREFIX, plen) != 0)
        return false;
    const char *start = (const char *)payload + plen;
    const char *end = memchr(start, '"', len - plen);
    return end && msgid_parse(start, (size_t)(end - start), out);
}

static const char control_prefix[] = "{\"type\":\"control\",";

struct frame *proto_control(const struct proto_control *c)
{
    json_t *o = c->op == PROTO_CONTROL_DISCONNECT
                    ? json_pack("{s:s, s:s, s:s, s:i, s:s}", "type", "control", "op", "disconnect",
                                "user", c->user, "code", (int)c->code, "reason", c->reason)
                    : json_pack("{s:s, s:s, s:s, s:o}", "type", "control", "op", "leave", "user",
                                c->user, "room", room_value(c->room, c->room_len));
    return dump(o);
}

bool proto_is_control(const struct frame *f)
{
    size_t n = sizeof(control_prefix) - 1;
    return f->len >= n && memcmp((f->buf + FRAME_HEADROOM), control_prefix, n) == 0;
}

/* Copies a string field of o into buf (cap bytes with the NUL) if it is a
 * valid name of at most max bytes. */
static bool control_name(json_t *o, const char *key, char *buf, size_t max, size_t *len)
{
    const char *s;
    size_t n;
    if (!string_field(o, key, &s, &n) || !proto_valid_name(s, n, max))
        return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (len)
        *len = n;
    return true;
}

bool proto_control_decode(const struct frame *f, struct proto_control *out)
{
    memset(out, 0, sizeof(*out));
    json_t *o = json_loadb((const char *)(f->buf + FRAME_HEADROOM), f->len, 0, NULL);
    const char *op = o ? json_string_value(json_object_get(o, "op")) : NULL;
    bool ok = op && control_name(o, "user", out->user, PROTO_NAME_MAX, NULL);
    if (ok && strcmp(op, "disconnect") == 0) {
        json_t *code = json_object_get(o, "code");
        const char *reason = json_string_value(json_object_get(o, "reason"));
        out->op = PROTO_CONTROL_DISCONNECT;
        ok = json_is_integer(code) && json_integer_value(code) >= 1000 &&
             json_integer_value(code) <= 4999 && reason && strlen(reason) <= PROTO_CLOSE_REASON_MAX;
        if (ok) {
            out->code = (uint16_t)json_integer_value(code);
            snprintf(out->reason, sizeof(out->reason), "%s", reason);
        }
    } else if (ok && strcmp(op, "leave") == 0) {
        out->op = PROTO_CONTROL_LEAVE;
        ok = control_name(o, "room", out->room, PROTO_ROOM_MAX, &out->room_len);
    } else {
        ok = false;
    }
    json_decref(o);
    return ok;
}
