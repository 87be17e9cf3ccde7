#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto.h"

#define S(lit) lit, sizeof(lit) - 1

/* --- message ids --- */

static bool parses(const char *s, uint64_t ms, uint64_t seq)
{
    struct msgid id;
    return msgid_parse(s, strlen(s), &id) && id.ms == ms && id.seq == seq;
}

static bool rejects(const char *s)
{
    struct msgid id;
    return !msgid_parse(s, strlen(s), &id);
}

static void test_msgid_parse(void)
{
    CHECK(parses("0-0", 0, 0));
    CHECK(parses("1732190000000-0", 1732190000000ULL, 0));
    CHECK(parses("1732190000000-42", 1732190000000ULL, 42));
    CHECK(parses("007-010", 7, 10)); /* leading zeros are digits */
    CHECK(parses("18446744073709551615-18446744073709551615", UINT64_MAX, UINT64_MAX));
    CHECK(rejects("18446744073709551616-0")); /* UINT64_MAX + 1 */
    CHECK(rejects("0-18446744073709551616"));
    CHECK(rejects("99999999999999999999-0"));  /* 20 digits, too big */
    CHECK(rejects("000000000000000000001-0")); /* 21 digits */
    CHECK(rejects(""));
    CHECK(rejects("-"));
    CHECK(rejects("12"));
    CHECK(rejects("-1"));
    CHECK(rejects("1-"));
    CHECK(rejects("1--1"));
    CHECK(rejects("1-2-3"));
    CHECK(rejects("+1-2"));
    CHECK(rejects("1-+2"));
    CHECK(rejects(" 1-2"));
    CHECK(rejects("1-2 "));
    CHECK(rejects("1.5-2"));
    CHECK(rejects("a-b"));
    CHECK(rejects("0x1-0"));
    CHECK(rejects("*"));
    /* len bounds the input: the dash and digits past it do not count. */
    struct msgid id;
    CHECK(!msgid_parse("12-34", 2, &id));
    CHECK(msgid_parse("12-34", 4, &id) && id.ms == 12 && id.seq == 3);
    CHECK(!msgid_parse(S("1-2\0"
                         "3"),
                       &id));
}

static void test_msgid_format_cmp(void)
{
    char buf[MSGID_STR_MAX];
    struct msgid id = {1732190000000ULL, 7};
    CHECK_INT(msgid_format(&id, buf), ==, strlen("1732190000000-7"));
    CHECK_STR(buf, "1732190000000-7");
    struct msgid max = {UINT64_MAX, UINT64_MAX};
    size_t n = msgid_format(&max, buf);
    CHECK_STR(buf, "18446744073709551615-18446744073709551615");
    CHECK_INT(n, <, MSGID_STR_MAX);
    struct msgid back;
    CHECK(msgid_parse(buf, n, &back) && msgid_cmp(&back, &max) == 0);

    /* Numeric, part by part: "9-0" < "10-0" although it sorts after as text. */
    struct msgid a = {9, 0}, b = {10, 0}, c = {10, 1}, d = {10, 10}, e = {10, 9};
    CHECK_INT(msgid_cmp(&a, &b), <, 0);
    CHECK_INT(msgid_cmp(&b, &a), >, 0);
    CHECK_INT(msgid_cmp(&b, &c), <, 0);
    CHECK_INT(msgid_cmp(&e, &d), <, 0);
    CHECK_INT(msgid_cmp(&d, &d), ==, 0);
    struct msgid big_seq = {1, UINT64_MAX}, next_ms = {2, 0};
    CHECK_INT(msgid_cmp(&big_seq, &next_ms), <, 0);
    CHECK_INT(msgid_cmp(&max, &next_ms), >, 0);
}

/* --- names --- */

static bool valid(const char *s, size_t len)
{
    return proto_valid_name(s, len, PROTO_NAME_MAX);
}
#define VALID(lit) valid(S(lit))

static void test_valid_name_utf8(void)
{
    CHECK(VALID("alice"));
    CHECK(VALID("a"));
    CHECK(VALID("with space"));
    CHECK(VALID("日本語"));
    CHECK(VALID("チャット部屋"));
    CHECK(VALID("é"));                /* U+00E9, 2 bytes */
    CHECK(VALID("\xC2\xA0"));         /* U+00A0, the first after C1 */
    CHECK(VALID("\xF0\x9F\x98\x80")); /* U+1F600, 4 bytes */
    CHECK(VALID("\xED\x9F\xBF"));     /* U+D7FF, just below the surrogates */
    CHECK(VALID("\xEE\x80\x80"));     /* U+E000, just above */
    CHECK(VALID("\xEF\xBF\xBF"));     /* U+FFFF */
    CHECK(VALID("\xF4\x8F\xBF\xBF")); /* U+10FFFF, the last code point */
    CHECK(VALID("\xDF\xBF"));         /* U+07FF, longest 2-byte */
    CHECK(VALID("\xE0\xA0\x80"));     /* U+0800, shortest 3-byte */
    CHECK(VALID("\xF0\x90\x80\x80")); /* U+10000, shortest 4-byte */

    /* Overlong forms. */
    CHECK(!VALID("\xC0\xAF"));
    CHECK(!VALID("\xC1\xBF"));
    CHECK(!VALID("\xC0\x80")); /* overlong NUL */
    CHECK(!VALID("\xE0\x80\xAF"));
    CHECK(!VALID("\xE0\x9F\xBF"));
    CHECK(!VALID("\xF0\x80\x80\xAF"));
    CHECK(!VALID("\xF0\x8F\xBF\xBF"));
    /* Surrogates. */
    CHECK(!VALID("\xED\xA0\x80"));
    CHECK(!VALID("\xED\xBF\xBF"));
    CHECK(!VALID("\xED\xA0\xBD\xED\xB8\x80")); /* CESU-8 pair */
    /* Beyond U+10FFFF and bytes that never start a sequence. */
    CHECK(!VALID("\xF4\x90\x80\x80"));
    CHECK(!VALID("\xF5\x80\x80\x80"));
    CHECK(!VALID("\xF7\xBF\xBF\xBF"));
    CHECK(!VALID("\xF8\x88\x80\x80\x80"));
    CHECK(!VALID("\xFC\x84\x80\x80\x80\x80"));
    CHECK(!VALID("\xFE"));
    CHECK(!VALID("\xFF"));
    /* Truncated sequences and stray continuation bytes. */
    CHECK(!VALID("\xC3"));
    CHECK(!VALID("a\xE6\x97"));
    CHECK(!VALID("\xF0\x9F\x98"));
    CHECK(!VALID("\x80"));
    CHECK(!VALID("a\xBF"
                 "b"));
    CHECK(!VALID("\xC3\x28"));
    CHECK(!VALID("\xE6\x97\x28"));
    /* len cuts a valid sequence: "日本" is 6 bytes. */
    CHECK(!valid("日本", 4));
    CHECK(valid("日本", 3));
}

static void test_valid_name_controls_and_length(void)
{
    CHECK(!valid("", 0));
    CHECK(!proto_valid_name(NULL, 0, PROTO_NAME_MAX));
    CHECK(!VALID("\x01"));
    CHECK(!VALID("a\nb"));
    CHECK(!VALID("\t"));
    CHECK(!VALID("\x1F"));
    CHECK(!VALID("a\x7F"));     /* DEL */
    CHECK(!VALID("\xC2\x80"));  /* U+0080, first C1 */
    CHECK(!VALID("x\xC2\x9F")); /* U+009F, last C1 */
    CHECK(!VALID("a\0b"));      /* an embedded NUL */
    CHECK(VALID(" "));          /* U+0020 is not a control */
    CHECK(VALID("~"));          /* U+007E, just below DEL */

    char buf[80];
    memset(buf, 'x', sizeof(buf));
    CHECK(valid(buf, 32));
    CHECK(!valid(buf, 33));
    CHECK(proto_valid_name(buf, 64, PROTO_ROOM_MAX));
    CHECK(!proto_valid_name(buf, 65, PROTO_ROOM_MAX));
    /* Multi-byte characters count in bytes: 29 + 3 fits, 30 + 3 does not. */
    memcpy(buf + 29, "日", 3);
    CHECK(valid(buf, 32));
    memset(buf, 'x', 30);
    memcpy(buf + 30, "日", 3);
    CHECK(!valid(buf, 33));
    /* Eleven 3-byte characters are 33 bytes. */
    char jp[40] = "";
    for (int i = 0; i < 11; i++)
        strcat(jp, "語");
    CHECK(!valid(jp, strlen(jp)));
    CHECK(valid(jp, 30));
}

/* --- decoding --- */

static enum proto_error decode(const char *json, struct proto_request *req)
{
    const char *why = NULL;
    enum proto_error e = proto_decode(json, strlen(json), req, &why);
    if (e != PROTO_OK) {
        /* On error there is nothing to free and a reason for people. */
        CHECK(req->root == NULL);
        CHECK(why && *why);
    }
    return e;
}

static enum proto_error decode_err(const char *json)
{
    struct proto_request req;
    enum proto_error e = decode(json, &req);
    if (e == PROTO_OK)
        proto_request_free(&req);
    return e;
}

static bool field_is(const char *p, size_t len, const char *want)
{
    return p && len == strlen(want) && memcmp(p, want, len) == 0;
}

static void test_decode_errors(void)
{
    CHECK_INT(decode_err(""), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("{"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("not json"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("[]"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("[{\"type\":\"ping\"}]"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("\"ping\""), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("42"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("null"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("{\"type\":\"ping\"} {}"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("{\"type\":\"ping\",\"type\":\"ping\"}"), ==, PROTO_BAD_JSON);
    CHECK_INT(decode_err("{\"type\":\"echo\",\"content\":\"\xff\"}"), ==, PROTO_BAD_JSON);

    CHECK_INT(decode_err("{}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":1}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":null}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"dance\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"PING\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"pin\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"pingpong\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"ping\\u0000\"}"), !=, PROTO_OK);
    /* Server-to-client types are not requests. */
    CHECK_INT(decode_err("{\"type\":\"joined\",\"room\":\"r\"}"), ==, PROTO_UNKNOWN_TYPE);
    CHECK_INT(decode_err("{\"type\":\"pong\"}"), ==, PROTO_UNKNOWN_TYPE);

    static const char *const room_types[] = {"join_room", "leave_room", "presence"};
    for (size_t i = 0; i < 3; i++) {
        char buf[200];
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\"}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":\"\"}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":7}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":null}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":\"a\\nb\"}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":\"\\u0085\"}", room_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":\"%065d\"}", room_types[i], 0);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_ROOM);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"room\":\"%064d\"}", room_types[i], 0);
        CHECK_INT(decode_err(buf), ==, PROTO_OK);
    }
    /* chat: room optional, but checked when given. */
    CHECK_INT(decode_err("{\"type\":\"chat\",\"room\":\"\",\"content\":\"x\"}"), ==,
              PROTO_BAD_ROOM);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"room\":[],\"content\":\"x\"}"), ==, PROTO_BAD_ROOM);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"room\":\"\\u001b\",\"content\":\"x\"}"), ==,
              PROTO_BAD_ROOM);

    /* content: a non-empty string, for chat and echo. */
    static const char *const content_types[] = {"chat", "echo"};
    for (size_t i = 0; i < 2; i++) {
        char buf[200];
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\"}", content_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_CONTENT);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"content\":\"\"}", content_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_CONTENT);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"content\":5}", content_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_CONTENT);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"content\":null}", content_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_CONTENT);
        snprintf(buf, sizeof(buf), "{\"type\":\"%s\",\"content\":{\"a\":1}}", content_types[i]);
        CHECK_INT(decode_err(buf), ==, PROTO_BAD_CONTENT);
    }

    /* since: a message id, or absent/null. */
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":\"\"}"), ==,
              PROTO_BAD_SINCE);
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":\"abc\"}"), ==,
              PROTO_BAD_SINCE);
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":\"12\"}"), ==,
              PROTO_BAD_SINCE);
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":12}"), ==,
              PROTO_BAD_SINCE);
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":\"1-2-3\"}"), ==,
              PROTO_BAD_SINCE);
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"r\",\"since\":"
                         "\"18446744073709551616-0\"}"),
              ==, PROTO_BAD_SINCE);
    /* The room is checked before since. */
    CHECK_INT(decode_err("{\"type\":\"join_room\",\"room\":\"\",\"since\":\"x\"}"), ==,
              PROTO_BAD_ROOM);

    /* cid: 1 to 64 bytes of printable ASCII. */
    CHECK_INT(decode_err("{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"\"}"), ==, PROTO_BAD_CID);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"content\":\"x\",\"cid\":7}"), ==, PROTO_BAD_CID);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"a\\tb\"}"), ==,
              PROTO_BAD_CID);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"日本\"}"), ==,
              PROTO_BAD_CID);
    char buf[160];
    snprintf(buf, sizeof(buf), "{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"%065d\"}", 0);
    CHECK_INT(decode_err(buf), ==, PROTO_BAD_CID);
    snprintf(buf, sizeof(buf), "{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"%064d\"}", 0);
    CHECK_INT(decode_err(buf), ==, PROTO_OK);
    CHECK_INT(decode_err("{\"type\":\"chat\",\"content\":\"x\",\"cid\":\" ~!\"}"), ==, PROTO_OK);
}

static void test_decode_requests(void)
{
    struct proto_request req;

    CHECK_INT(decode("{\"type\":\"join_room\",\"room\":\"lobby\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_JOIN_ROOM);
    CHECK(field_is(req.room, req.room_len, "lobby"));
    CHECK(!req.has_since);
    proto_request_free(&req);
    CHECK(req.root == NULL);

    CHECK_INT(
        decode("{\"type\":\"join_room\",\"room\":\"lobby\",\"since\":\"1732190000000-5\"}", &req),
        ==, PROTO_OK);
    CHECK(req.has_since && req.since.ms == 1732190000000ULL && req.since.seq == 5);
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"join_room\",\"room\":\"lobby\",\"since\":null}", &req), ==,
              PROTO_OK);
    CHECK(!req.has_since);
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"leave_room\",\"room\":\"日本語の部屋\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_LEAVE_ROOM);
    CHECK(field_is(req.room, req.room_len, "日本語の部屋"));
    proto_request_free(&req);

    /* JSON escapes are decoded before the room is checked. */
    CHECK_INT(decode("{\"type\":\"presence\",\"room\":\"\\u65e5\\\"q\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_PRESENCE);
    CHECK(field_is(req.room, req.room_len, "日\"q"));
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"chat\",\"room\":\"r\",\"content\":\"hi\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_CHAT);
    CHECK(field_is(req.room, req.room_len, "r"));
    CHECK(field_is(req.content, req.content_len, "hi"));
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"chat\",\"content\":\"to everyone\"}", &req), ==, PROTO_OK);
    CHECK(req.room == NULL && req.room_len == 0);
    CHECK(field_is(req.content, req.content_len, "to everyone"));
    proto_request_free(&req);

    /* Content may hold anything a JSON string can, controls included. */
    CHECK_INT(decode("{\"type\":\"echo\",\"content\":\"a\\nb\\t\\u00e9\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_ECHO);
    CHECK(field_is(req.content, req.content_len, "a\nb\t\xC3\xA9"));
    CHECK(req.room == NULL);
    proto_request_free(&req);

    /* Fields a type does not use are ignored, even when invalid for others. */
    CHECK_INT(decode("{\"type\":\"echo\",\"content\":\"x\",\"room\":\"\"}", &req), ==, PROTO_OK);
    CHECK(req.room == NULL);
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"ping\"}", &req), ==, PROTO_OK);
    CHECK_INT(req.type, ==, PROTO_PING);
    CHECK(req.room == NULL && req.content == NULL && !req.has_since);
    proto_request_free(&req);

    CHECK_INT(decode("{\"type\":\"ping\",\"content\":\"\",\"since\":\"junk\",\"extra\":[1]}", &req),
              ==, PROTO_OK);
    CHECK(req.content == NULL && !req.has_since);
    proto_request_free(&req);

    /* since is a join_room field only. */
    CHECK_INT(decode("{\"type\":\"leave_room\",\"room\":\"r\",\"since\":\"junk\"}", &req), ==,
              PROTO_OK);
    CHECK(!req.has_since);
    proto_request_free(&req);

    /* Whitespace around the object is fine. */
    CHECK_INT(decode(" \n{ \"type\" : \"ping\" }\n", &req), ==, PROTO_OK);
    proto_request_free(&req);
}

static void test_error_codes(void)
{
    CHECK_STR(proto_error_code(PROTO_BAD_JSON), "bad_json");
    CHECK_STR(proto_error_code(PROTO_UNKNOWN_TYPE), "unknown_type");
    CHECK_STR(proto_error_code(PROTO_BAD_ROOM), "bad_room");
    CHECK_STR(proto_error_code(PROTO_BAD_CONTENT), "bad_content");
    CHECK_STR(proto_error_code(PROTO_BAD_SINCE), "bad_since");
    CHECK_STR(proto_error_code(PROTO_NOT_IN_ROOM), "not_in_room");
    CHECK_STR(proto_error_code(PROTO_RATE_LIMITED), "rate_limited");
    CHECK_STR(proto_error_code(PROTO_UNAVAILABLE), "unavailable");
    CHECK(proto_error_code(PROTO_ERROR_COUNT) != NULL);
}

/* --- encoding --- */

/* Parses a frame as a client would: the payload alone, which must be one
 * JSON object. Also checks the NUL that frame_alloc promises after it. */
static json_t *parse(struct frame *f)
{
    if (!CHECK(f != NULL))
        return NULL;
    CHECK(frame_data(f)[f->len] == '\0');
    json_error_t err;
    json_t *o = json_loadb((const char *)frame_data(f), f->len,
                           JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    if (!CHECK(o && json_is_object(o)))
        fprintf(stderr, "  not a JSON object: %.*s (%s)\n", (int)f->len, frame_data(f), err.text);
    frame_unref(f);
    return o;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static bool has(json_t *o, const char *key)
{
    return json_object_get(o, key) != NULL;
}

static void test_simple_encoders(void)
{
    json_t *o = parse(proto_welcome("alice", "c17", "gw1", 1732190000123LL));
    CHECK_STR(str(o, "type"), "welcome");
    CHECK_STR(str(o, "content"), "Welcome, alice!");
    CHECK_STR(str(o, "sender"), "System");
    CHECK_STR(str(o, "id"), "c17");
    CHECK_STR(str(o, "gateway"), "gw1");
    CHECK_STR(str(o, "username"), "alice");
    CHECK_INT(num(o, "timestamp"), ==, 1732190000123LL);
    json_decref(o);

    /* The longest name, all 3-byte characters, still fits the greeting. */
    char longname[40] = "xx";
    for (int i = 0; i < 10; i++)
        strcat(longname, "語");
    o = parse(proto_welcome(longname, "c1", "gw", 0));
    char want[64];
    snprintf(want, sizeof(want), "Welcome, %s!", longname);
    CHECK_STR(str(o, "content"), want);
    json_decref(o);

    o = parse(proto_error_frame(PROTO_NOT_IN_ROOM, "you are not in that room"));
    CHECK_STR(str(o, "type"), "error");
    CHECK_STR(str(o, "code"), "not_in_room");
    CHECK_STR(str(o, "content"), "you are not in that room");
    json_decref(o);

    /* Echo keeps the content byte for byte, NULs included. */
    o = parse(proto_echo(S("a\"b\\c\n\0d 日本")));
    CHECK_STR(str(o, "type"), "echo");
    json_t *c = json_object_get(o, "content");
    CHECK(json_string_length(c) == sizeof("a\"b\\c\n\0d 日本") - 1 &&
          memcmp(json_string_value(c), "a\"b\\c\n\0d 日本", json_string_length(c)) == 0);
    json_decref(o);

    o = parse(proto_pong());
    CHECK_STR(str(o, "type"), "pong");
    CHECK_INT(json_object_size(o), ==, 1);
    json_decref(o);

    o = parse(proto_left(S("部屋")));
    CHECK_STR(str(o, "type"), "left");
    CHECK_STR(str(o, "room"), "部屋");
    json_decref(o);

    o = parse(proto_system(S("r\"1"), "alice joined the room", 99));
    CHECK_STR(str(o, "type"), "system");
    CHECK_STR(str(o, "room"), "r\"1");
    CHECK_STR(str(o, "content"), "alice joined the room");
    CHECK_STR(str(o, "sender"), "System");
    CHECK_INT(num(o, "timestamp"), ==, 99);
    json_decref(o);

    o = parse(proto_system(NULL, 0, "alice connected", 5));
    CHECK(!has(o, "room")); /* global: the field is left out */
    CHECK_STR(str(o, "content"), "alice connected");
    json_decref(o);

    o = parse(proto_client_count(1234567, 42));
    CHECK_STR(str(o, "type"), "client_count");
    CHECK_STR(str(o, "content"), "1234567");
    CHECK_INT(num(o, "count"), ==, 1234567);
    CHECK_INT(num(o, "timestamp"), ==, 42);
    json_decref(o);
    /* What the count script splices together reads the same. */
    struct frame *cf = proto_client_count(7, 8), *sf = proto_system(NULL, 0, "x", 1);
    char spliced[200];
    const char *const *p = proto_client_count_parts;
    snprintf(spliced, sizeof(spliced), "%s7%s7%s8%s", p[0], p[1], p[2], p[3]);
    CHECK_INT(cf->len, ==, strlen(spliced));
    CHECK(memcmp(frame_data(cf), spliced, cf->len) == 0);
    CHECK(proto_is_client_count(cf) && !proto_is_client_count(sf));
    frame_unref(cf);
    frame_unref(sf);

    const char *users[] = {"alice", "bob", "日本"};
    o = parse(proto_presence(S("r"), users, 3));
    CHECK_STR(str(o, "type"), "presence");
    CHECK_STR(str(o, "room"), "r");
    json_t *arr = json_object_get(o, "users");
    CHECK(json_is_array(arr) && json_array_size(arr) == 3);
    CHECK_STR(json_string_value(json_array_get(arr, 0)), "alice");
    CHECK_STR(json_string_value(json_array_get(arr, 2)), "日本");
    json_decref(o);

    o = parse(proto_presence(S("empty"), NULL, 0));
    arr = json_object_get(o, "users");
    CHECK(json_is_array(arr) && json_array_size(arr) == 0);
    json_decref(o);
}

static struct frame *chat_frame(const char *room, uint64_t ms, uint64_t seq, const char *sender,
                                const char *content)
{
    size_t len = 0;
    char *rest = proto_chat_rest(room, room ? strlen(room) : 0, sender, content, strlen(content),
                                 NULL, 0, (int64_t)ms, &len);
    if (!rest)
        return NULL;
    struct msgid id = {ms, seq};
    struct frame *f = proto_chat_assemble(&id, rest, len);
    free(rest);
    return f;
}

/* rate_limited carries a JSON number more, and the refused chat's cid. */
static void test_rate_limited(void)
{
    json_t *o = parse(proto_rate_limited(1234, NULL, 0));
    CHECK_STR(str(o, "type"), "error");
    CHECK_STR(str(o, "code"), "rate_limited");
    CHECK(str(o, "content") != NULL);
    CHECK_INT(num(o, "retry_after_ms"), ==, 1234);
    CHECK_INT(json_object_size(o), ==, 4);
    json_decref(o);
    o = parse(proto_rate_limited(5, S("c-9")));
    CHECK_STR(str(o, "cid"), "c-9");
    json_decref(o);

    char cid[PROTO_CID_MAX];
    CHECK_INT(proto_peek_cid(S("{\"type\":\"chat\",\"content\":\"x\",\"cid\":\"k\"}"), cid), ==, 1);
    CHECK(cid[0] == 'k');
    CHECK_INT(proto_peek_cid(S("{\"type\":\"chat\",\"content\":\"x\"}"), cid), ==, 0);
    CHECK_INT(proto_peek_cid(S("{\"type\":\"echo\",\"content\":\"x\",\"cid\":\"k\"}"), cid), ==, 0);
    CHECK_INT(proto_peek_cid(S("not json"), cid), ==, 0);
}

static void test_chat_round_trip(void)
{
    size_t len = 0;
    char *rest =
        proto_chat_rest(S("ロビー"), "alice", S("hi \"there\"\n"), S("c-1"), 1732190000000LL, &len);
    if (!CHECK(rest != NULL))
        return;
    CHECK(len > 0 && rest[len - 1] == '}' && rest[0] == '"');
    struct msgid id = {1732190000000ULL, 3};
    struct frame *f = proto_chat_assemble(&id, rest, len);
    free(rest);
    if (!CHECK(f != NULL))
        return;
    /* The layout the id splicing relies on. */
    CHECK(memcmp(frame_data(f), PROTO_CHAT_PREFIX, strlen(PROTO_CHAT_PREFIX)) == 0);
    struct msgid back;
    CHECK(proto_chat_id(frame_data(f), f->len, &back) && msgid_cmp(&back, &id) == 0);

    json_t *o = parse(frame_ref(f));
    CHECK_STR(str(o, "type"), "chat");
    CHECK_STR(str(o, "id"), "1732190000000-3");
    CHECK_STR(str(o, "room"), "ロビー");
    CHECK_STR(str(o, "sender"), "alice");
    CHECK_STR(str(o, "content"), "hi \"there\"\n");
    CHECK_STR(str(o, "cid"), "c-1");
    CHECK_INT(num(o, "timestamp"), ==, 1732190000000LL);
    CHECK_INT(json_object_size(o), ==, 7);
    json_decref(o);
    frame_unref(f);

    /* Global chat: no room field. The largest id survives the trip. */
    f = chat_frame(NULL, UINT64_MAX, UINT64_MAX, "bob", "yo");
    CHECK(f && proto_chat_id(frame_data(f), f->len, &back) && back.ms == UINT64_MAX &&
          back.seq == UINT64_MAX);
    o = parse(f);
    CHECK(!has(o, "room"));
    CHECK_STR(str(o, "id"), "18446744073709551615-18446744073709551615");
    CHECK_STR(str(o, "content"), "yo");
    json_decref(o);
}

static void test_chat_id_rejects(void)
{
    struct msgid id;
    CHECK(!proto_chat_id((const unsigned char *)S("{\"type\":\"system\",\"content\":\"x\"}"), &id));
    CHECK(!proto_chat_id((const unsigned char *)S("{\"type\":\"chat\",\"id\":\""), &id));
    CHECK(!proto_chat_id((const unsigned char *)S("{\"type\":\"chat\",\"id\":\"12-3"), &id));
    CHECK(!proto_chat_id((const unsigned char *)S("{\"type\":\"chat\",\"id\":\"x-3\","), &id));
    CHECK(!proto_chat_id((const unsigned char *)S("{\"type\":\"chat\""), &id));
    CHECK(!proto_chat_id((const unsigned char *)"", 0, &id));
    CHECK(proto_chat_id((const unsigned char *)S("{\"type\":\"chat\",\"id\":\"12-3\",}"), &id) &&
          id.ms == 12 && id.seq == 3);
    /* The closing quote must lie within len. */
    CHECK(!proto_chat_id((const unsigned char *)"{\"type\":\"chat\",\"id\":\"12-3\"",
                         strlen(PROTO_CHAT_PREFIX) + 4, &id));
}

static void test_joined(void)
{
    /* No history: an empty array. */
    json_t *o = parse(proto_joined(S("lobby"), 3, NULL, 0, false));
    CHECK_STR(str(o, "type"), "joined");
    CHECK_STR(str(o, "room"), "lobby");
    CHECK_INT(num(o, "members"), ==, 3);
    CHECK(json_is_false(json_object_get(o, "truncated")));
    json_t *h = json_object_get(o, "history");
    CHECK(json_is_array(h) && json_array_size(h) == 0);
    json_decref(o);

    struct frame *hist[3] = {
        chat_frame("部屋", 100, 0, "alice", "one"),
        chat_frame("部屋", 100, 1, "bob", "two, with \"quotes\" and ]}"),
        chat_frame("部屋", 101, 0, "alice", "three"),
    };
    if (!CHECK(hist[0] && hist[1] && hist[2]))
        return;
    o = parse(proto_joined(S("部屋"), 2, hist, 3, true));
    CHECK_STR(str(o, "room"), "部屋");
    CHECK_INT(num(o, "members"), ==, 2);
    CHECK(json_is_true(json_object_get(o, "truncated")));
    h = json_object_get(o, "history");
    if (CHECK(json_is_array(h) && json_array_size(h) == 3)) {
        CHECK_STR(str(json_array_get(h, 0), "id"), "100-0");
        CHECK_STR(str(json_array_get(h, 1), "id"), "100-1");
        CHECK_STR(str(json_array_get(h, 2), "id"), "101-0");
        CHECK_STR(str(json_array_get(h, 1), "content"), "two, with \"quotes\" and ]}");
        CHECK_STR(str(json_array_get(h, 2), "type"), "chat");
        CHECK_STR(str(json_array_get(h, 0), "room"), "部屋");
    }
    json_decref(o);
    /* joined takes no reference to the history frames. */
    for (int i = 0; i < 3; i++) {
        CHECK_INT(hist[i]->refs, ==, 1);
        frame_unref(hist[i]);
    }
}

/* Control frames: what one gateway encodes, every other decodes the same;
 * anything else on the broadcast channel is refused. */
static void test_control_round_trip(void)
{
    struct proto_control in = {.op = PROTO_CONTROL_DISCONNECT,
                               .user = "mallory",
                               .code = 4003,
                               .reason = "banned \"for\" spam"};
    struct frame *f = proto_control(&in);
    struct proto_control out;
    if (CHECK(f != NULL) && CHECK(proto_is_control(f)) && CHECK(proto_control_decode(f, &out))) {
        CHECK_INT(out.op, ==, PROTO_CONTROL_DISCONNECT);
        CHECK_STR(out.user, "mallory");
        CHECK_INT(out.code, ==, 4003);
        CHECK_STR(out.reason, "banned \"for\" spam");
    }
    frame_unref(f);
    struct proto_control leave = {.op = PROTO_CONTROL_LEAVE, .user = "bob", .room_len = 6};
    memcpy(leave.room, "部屋", 6);
    f = proto_control(&leave);
    if (CHECK(f != NULL) && CHECK(proto_control_decode(f, &out))) {
        CHECK_INT(out.op, ==, PROTO_CONTROL_LEAVE);
        CHECK_STR(out.room, "部屋");
        CHECK_INT(out.room_len, ==, 6);
    }
    frame_unref(f);
    static const char *const bad[] = {
        "{\"type\":\"control\",\"op\":\"explode\",\"user\":\"a\"}",
        "{\"type\":\"control\",\"op\":\"disconnect\",\"user\":\"a\",\"code\":70000,"
        "\"reason\":\"\"}",
        "{\"type\":\"control\",\"op\":\"disconnect\",\"user\":\"a\",\"code\":1000}",
        "{\"type\":\"control\",\"op\":\"leave\",\"user\":\"a\"}",
        "{\"type\":\"control\",\"op\":\"leave\",\"user\":\"\",\"room\":\"r\"}",
        "{\"type\":\"control\",",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        f = frame_copy(bad[i], strlen(bad[i]));
        CHECK(proto_is_control(f));
        CHECK(!proto_control_decode(f, &out));
        frame_unref(f);
    }
    f = frame_copy("{\"type\":\"chat\"}", 15);
    CHECK(!proto_is_control(f));
    frame_unref(f);
}

int main(int argc, char **argv)
{
    CHECK_ARGS(argc, argv);
    RUN(test_msgid_parse);
    RUN(test_msgid_format_cmp);
    RUN(test_valid_name_utf8);
    RUN(test_valid_name_controls_and_length);
    RUN(test_decode_errors);
    RUN(test_decode_requests);
    RUN(test_error_codes);
    RUN(test_simple_encoders);
    RUN(test_rate_limited);
    RUN(test_chat_round_trip);
    RUN(test_chat_id_rejects);
    RUN(test_joined);
    RUN(test_control_round_trip);
    return CHECK_DONE("test_proto");
}
