/* Unit tests of the generator's pure parts: framing, upgrade, JSON scan,
 * histogram, sequence tracking, layout. Exit status 0 when all pass. */
#include <stdio.h>
#include <string.h>

#include "backoff.h"
#include "handshake.h"
#include "hist.h"
#include "jscan.h"
#include "layout.h"
#include "seqtrack.h"
#include "wsframe.h"

static int failures;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: failed: %s\n", __FILE__, __LINE__, #cond);                     \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

static void test_accept(void)
{
    char out[HS_ACCEPT_LEN + 1];
    const char *head = "HTTP/1.1 101 Switching Protocols\r\n"
                       "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                       "sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo= \r\n\r\n";
    int status;

    /* The example of RFC 6455 section 1.3. */
    hs_accept_for("dGhlIHNhbXBsZSBub25jZQ==", out);
    CHECK(strcmp(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
    CHECK(hs_head_len(head, strlen(head)) == strlen(head));
    CHECK(hs_head_len(head, strlen(head) - 1) == 0);
    CHECK(hs_check_response(head, strlen(head), "dGhlIHNhbXBsZSBub25jZQ==", &status) == 0 &&
          status == 101);
    CHECK(hs_check_response(head, strlen(head), "AAAAAAAAAAAAAAAAAAAAAA==", &status) == -1);
    CHECK(hs_check_response("HTTP/1.1 400 Bad Request\r\n\r\n", 28, "x", &status) == -1 &&
          status == 400);
}

static void test_frames(void)
{
    uint8_t buf[70000 + WS_MAX_HEADER], payload[70000];
    struct ws_frame f;
    size_t n;

    memset(payload, 'a', sizeof(payload));
    n = ws_encode_client(buf, WS_OP_TEXT, payload, 5, 0x01020304);
    CHECK(n == 2 + 4 + 5);
    CHECK(buf[0] == 0x81 && buf[1] == (0x80 | 5));
    CHECK((buf[6] ^ buf[2]) == 'a');
    n = ws_encode_client(buf, WS_OP_TEXT, payload, 300, 7);
    CHECK(n == 4 + 4 + 300 && buf[1] == (0x80 | 126));
    n = ws_encode_client(buf, WS_OP_BINARY, payload, 70000, 7);
    CHECK(n == 10 + 4 + 70000 && buf[1] == (0x80 | 127));

    /* Server frames are unmasked. */
    CHECK(ws_parse_header((const uint8_t *)"\x81\x05hello", 7, 0, &f) == 1);
    CHECK(f.fin && f.opcode == WS_OP_TEXT && f.len == 5 && f.header_len == 2);
    CHECK(ws_parse_header((const uint8_t *)"\x81", 1, 0, &f) == 0);
    CHECK(ws_parse_header((const uint8_t *)"\x81\x7e\x01", 3, 0, &f) == 0);
    CHECK(ws_parse_header((const uint8_t *)"\x01\x7e\x01\x00", 4, 0, &f) == 1);
    CHECK(!f.fin && f.len == 256 && f.header_len == 4);
    CHECK(ws_parse_header((const uint8_t *)"\x81\x85", 2, 0, &f) == -1);
    CHECK(ws_parse_header((const uint8_t *)"\xC1\x05", 2, 0, &f) == -1);
    CHECK(ws_parse_header((const uint8_t *)"\x09\x00", 2, 0, &f) == -1);
    CHECK(ws_parse_header((const uint8_t *)"\x89\x7e\x00\xff", 4, 0, &f) == -1);
    CHECK(ws_parse_header((const uint8_t *)"\x83\x00", 2, 0, &f) == -1);

    /* Client frames are masked: the key comes after the length. */
    CHECK(ws_parse_header(buf, n, 1, &f) == 1);
    CHECK(f.len == 70000 && f.header_len == 14 && memcmp(f.mask, buf + 10, 4) == 0);
    CHECK(ws_parse_header(buf, 12, 1, &f) == 0);
    CHECK(ws_parse_header((const uint8_t *)"\x81\x05hello", 7, 1, &f) == -1);
}

static void test_jscan(void)
{
    const char *chat = "{\"type\":\"chat\",\"id\":\"1-2\",\"room\":\"r\","
                       "\"sender\":\"b\\\"1\",\"content\":\"3 4 5 xx\","
                       "\"timestamp\":17}";
    const char *joined = " { \"history\" : [ {\"type\":\"chat\","
                         "\"content\":\"}\"} ], \"type\" : \"joined\" } ";
    struct jmsg m;

    CHECK(jscan_message(chat, strlen(chat), &m) == 0);
    CHECK(jspan_is(m.type, "chat"));
    CHECK(jspan_is(m.content, "3 4 5 xx"));
    CHECK(m.code.p == NULL);
    CHECK(jscan_message(joined, strlen(joined), &m) == 0);
    CHECK(jspan_is(m.type, "joined") && m.content.p == NULL);
    CHECK(jscan_message("{\"type\":\"error\",\"code\":\"rate_limited\"}", 38, &m) == 0 &&
          jspan_is(m.code, "rate_limited"));
    CHECK(jscan_message("[1]", 3, &m) == -1);
    CHECK(jscan_message("{\"type\":\"chat", 13, &m) == -1);
    CHECK(jscan_message("{\"a\":\"x\\\\\",\"type\":\"pong\"}", 25, &m) == 0 &&
          jspan_is(m.type, "pong"));
}

static void test_hist(void)
{
    static struct hist h, g;

    for (uint64_t v = 1; v <= 10000; v++)
        hist_add(&h, v);
    CHECK(h.count == 10000 && h.max == 10000);
    CHECK(hist_quantile(&h, 0.5) >= 5000 && hist_quantile(&h, 0.5) <= 5080);
    CHECK(hist_quantile(&h, 0.99) >= 9900 && hist_quantile(&h, 0.99) <= 10000);
    CHECK(hist_quantile(&h, 1.0) == 10000);
    hist_add(&g, 100);
    CHECK(hist_quantile(&g, 0.5) == 100);
    hist_add(&g, (uint64_t)1 << 50);
    CHECK(g.max == (uint64_t)1 << 50);
    hist_merge(&g, &h);
    CHECK(g.count == 10002);
}

static void test_seq(void)
{
    struct seqwin w = {0, 0};

    CHECK(seq_note(&w, 0) == SEQ_NEW);
    CHECK(seq_note(&w, 1) == SEQ_NEW);
    CHECK(seq_note(&w, 1) == SEQ_DUP);
    CHECK(seq_note(&w, 4) == SEQ_NEW); /* 2 and 3 missing so far */
    CHECK(seq_note(&w, 3) == SEQ_LATE);
    CHECK(seq_note(&w, 3) == SEQ_DUP);
    CHECK(seq_note(&w, 0) == SEQ_DUP);
    CHECK(seq_note(&w, 200) == SEQ_NEW);
    CHECK(seq_note(&w, 2) == SEQ_LATE); /* too old to tell */
    CHECK(seq_note(&w, 199) == SEQ_LATE);
}

static void test_jscan_more(void)
{
    const char *joined = "{\"type\":\"joined\",\"room\":\"r\",\"history\":[{\"id\":\"5-1\","
                         "\"content\":\"0 7\"} , {\"id\":\"6-0\",\"content\":\"]\"}],"
                         "\"truncated\":true}";
    const char *err = "{\"type\":\"error\",\"code\":\"rate_limited\",\"cid\":\"3-4\","
                      "\"retry_after_ms\":250}";
    struct jmsg m, h;
    struct jspan e;
    const char *pos;

    CHECK(jscan_message(joined, strlen(joined), &m) == 0);
    CHECK(jspan_is(m.truncated, "true"));
    pos = m.history.p;
    CHECK(jscan_array_next(m.history, &pos, &e) == 1);
    CHECK(jscan_message(e.p, e.n, &h) == 0 && jspan_is(h.id, "5-1") && jspan_is(h.content, "0 7"));
    CHECK(jscan_array_next(m.history, &pos, &e) == 1);
    CHECK(jscan_message(e.p, e.n, &h) == 0 && jspan_is(h.content, "]"));
    CHECK(jscan_array_next(m.history, &pos, &e) == 0);
    m.history = (struct jspan){"[]", 2};
    pos = m.history.p;
    CHECK(jscan_array_next(m.history, &pos, &e) == 0);
    m.history = (struct jspan){"[1 2]", 5};
    pos = m.history.p;
    CHECK(jscan_array_next(m.history, &pos, &e) == 1 &&
          jscan_array_next(m.history, &pos, &e) == -1);
    CHECK(jscan_message(err, strlen(err), &m) == 0);
    CHECK(jspan_is(m.cid, "3-4") && jspan_is(m.retry_after_ms, "250"));
    err = "{\"type\":\"welcome\",\"gateway\":\"gw1\"}";
    CHECK(jscan_message(err, strlen(err), &m) == 0 && jspan_is(m.gateway, "gw1"));
}

/* The same figures as client/backoff.js: half fixed, half random, doubling
 * from the base up to the cap. */
static void test_backoff(void)
{
    CHECK(backoff_delay_ms(0, 500, 15000, 0.0) == 250);
    CHECK(backoff_delay_ms(0, 500, 15000, 0.999999) == 500);
    CHECK(backoff_delay_ms(1, 500, 15000, 0.5) == 750);
    CHECK(backoff_delay_ms(5, 500, 15000, 0.0) == 7500);
    CHECK(backoff_delay_ms(6, 500, 15000, 0.0) == 7500);
    CHECK(backoff_delay_ms(1000, 500, 15000, 0.999999) == 15000);
}

static void test_layout(void)
{
    struct layout l = {
        .conns = 10, .rooms = 3, .publishers = 4, .gateways = 2, .workers = 3, .source_ips = 1};
    uint32_t members = 0, pubs = 0, per_gw[2] = {0, 0};

    for (uint32_t r = 0; r < l.rooms; r++) {
        members += layout_room_members(&l, r);
        pubs += layout_room_publishers(&l, r);
    }
    CHECK(members == 10 && pubs == 4);
    CHECK(layout_room_members(&l, 0) == 4 && layout_room_publishers(&l, 0) == 2);
    for (uint32_t i = 0; i < l.conns; i++)
        per_gw[layout_gateway(&l, i)]++;
    CHECK(per_gw[0] == 5 && per_gw[1] == 5);
    /* Publisher 3 is room 0's second publisher. */
    CHECK(layout_room(&l, 3) == 0 && layout_pub_slot(&l, 3) == 1);
    l.rooms = 1;
    CHECK(layout_gateway(&l, 0) != layout_gateway(&l, 1));
}

int main(void)
{
    test_accept();
    test_frames();
    test_jscan();
    test_jscan_more();
    test_backoff();
    test_hist();
    test_seq();
    test_layout();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    puts("chatbench unit tests: all passed");
    return 0;
}
