/* fuzz_frame: client frames through the gateway's requests (decoding and
 * dispatch, requests.h), rooms and the bus, with every frame a client is sent
 * checked (frame_check.h).
 *
 * Input: one settings byte, then records separated by '\n'. A record's
 * first byte says what happens:
 *   'a'..'d'  the rest is a text frame from client 0..3 (connected first
 *             if it is not)
 *   'A'..'D'  client 0..3 disconnects
 *   'n'       the next byte picks a client (low two bits), the rest is a
 *             user name: the client reconnects with it (if it is valid)
 *   'J' / 'j' the oldest waiting join is answered: ok / cluster unreachable
 *   'K'       likewise ok, with the history as it is now (defer_bus.h)
 *   'S' / 's' the oldest waiting subscription is answered likewise
 *   'X'       the cluster goes down or comes back
 *   'P'       the client count is published
 * Others are ignored. J, K, S and X do something only with a deferring bus.
 * Settings bits: 0 deferring bus (defer_bus.h) instead of answering at
 * once; 1-2 history per room (0, 1, 3, 100); 3-4 send-queue and held
 * limit (64, 512, 4096, 1m bytes); 5 announce connections.
 *
 * At the end every answer still waiting is given, and then no client may
 * still wait for one; every client disconnects, and then no room may be
 * left, nobody may be listed in presence, and LeakSanitizer checks that
 * everything was freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"
#include "defer_bus.h"
#include "log.h"
#include "metrics.h"

/* Keeps one input's work bounded whatever its length. */
#define RECORDS_MAX 1000

static const char *const default_names[CLIENTS] = {"alice", "bob", "alice",
                                                   "Zo\xc3\xab \xf0\x9f\x98\x80"};

static struct event_base *base;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    log_set_level(LOG_ERROR);
    base = event_base_new();
    if (!base)
        abort();
    return 0;
}

/* The gateway's own wiring (requests_bus_handlers), with a check after
 * each chat of a room has been handed to its members. */
static void on_room_frame(void *ctx, const char *room, size_t room_len, const struct msgid *id,
                          struct frame *f)
{
    struct harness *h = ctx;
    h->wired.room_frame(h->wired.ctx, room, room_len, id, f);
    if (id)
        clients_check_received(h, room, room_len, id);
}

static void on_broadcast(void *ctx, struct frame *f)
{
    struct harness *h = ctx;
    h->wired.broadcast_frame(h->wired.ctx, f);
}

static void on_control(void *ctx, struct frame *f)
{
    struct harness *h = ctx;
    h->wired.control(h->wired.ctx, f);
}

static void on_subscribed(void *ctx, const char *room, size_t room_len, int status)
{
    struct harness *h = ctx;
    h->wired.subscribed(h->wired.ctx, room, room_len, status);
}

static void on_history_lost(void *ctx, const char *room, size_t room_len)
{
    struct harness *h = ctx;
    h->wired.history_lost(h->wired.ctx, room, room_len);
}

static void setup(struct harness *h, uint8_t settings, bool deferred)
{
    static const unsigned histories[] = {0, 1, 3, 100};
    static const size_t limits[] = {64, 512, 4096, 1 << 20};
    memset(h, 0, sizeof(*h));
    h->cfg.history = histories[(settings >> 1) & 3];
    h->cfg.send_queue_limit = limits[(settings >> 3) & 3];
    h->cfg.announce_connections = settings & 32;
    h->cfg.max_rooms = VIEW_ROOMS_MAX;
    snprintf(h->cfg.id, sizeof(h->cfg.id), "fuzz-gw");
    h->wired = requests_bus_handlers(&h->rq);
    struct bus_handlers handlers = {.room_frame = on_room_frame,
                                    .broadcast_frame = on_broadcast,
                                    .control = on_control,
                                    .subscribed = on_subscribed,
                                    .history_lost = on_history_lost,
                                    .ctx = h};
    h->bus = bus_local_new(base, &h->cfg, &handlers);
    if (h->bus && deferred)
        h->bus = defer_bus_new(h->bus);
    if (!h->bus)
        abort();
    requests_init(&h->rq, &h->cfg, h->bus, &client_ops, h);
}

static void presence_empty(void *arg, int status, const char *const *names, size_t n)
{
    const char *room = arg;
    if (status < 0 || n) {
        fprintf(stderr, "fuzz_frame: room %s: %zu name(s) listed after everyone left (first: %s)\n",
                room, n, n ? names[0] : "-");
        abort();
    }
}

/* Gives every answer still waiting, and those they lead to: the answers
 * let waiting requests go, which may join again. */
static void settle(struct harness *h)
{
    defer_bus_set_down(h->bus, false);
    for (int n = 0; n < 10 * RECORDS_MAX; n++)
        if (!defer_bus_answer_subscribe(h->bus, 0) && !defer_bus_answer_join(h->bus, 0, false))
            return;
    fprintf(stderr, "fuzz_frame: answers keep leading to more\n");
    abort();
}

static void teardown(struct harness *h, bool deferred)
{
    if (deferred)
        settle(h);
    for (int i = 0; i < CLIENTS; i++) {
        if (h->clients[i] && h->clients[i]->req.busy) {
            fprintf(stderr, "fuzz_frame: %s's join was never answered\n", h->clients[i]->req.name);
            abort();
        }
        client_disconnect(h, i);
    }
    if (rooms_count(&h->rq.rooms)) {
        fprintf(stderr, "fuzz_frame: %zu room(s) left after everyone left\n",
                rooms_count(&h->rq.rooms));
        abort();
    }
    for (size_t i = 0; i < h->n_seen; i++) {
        char room[PROTO_ROOM_MAX + 1];
        snprintf(room, sizeof(room), "%.*s", (int)h->seen[i].len, h->seen[i].name);
        h->bus->ops->presence(h->bus, h->seen[i].name, h->seen[i].len, presence_empty, room);
    }
    requests_free(&h->rq);
    bus_free(h->bus);
}

static void rename_client(struct harness *h, const char *p, size_t len)
{
    if (len < 1 || !proto_valid_name(p + 1, len - 1, PROTO_NAME_MAX))
        return;
    char name[PROTO_NAME_MAX + 1];
    memcpy(name, p + 1, len - 1);
    name[len - 1] = '\0';
    int i = p[0] & 3;
    client_disconnect(h, i);
    client_connect(h, i, name);
}

/* A text frame in a buffer of its own size, so that reading past its end
 * is an overflow ASan sees rather than a read of the next record. */
static void send_text(struct harness *h, int i, const char *p, size_t len)
{
    if (!h->clients[i])
        client_connect(h, i, default_names[i]);
    char *copy = malloc(len ? len : 1);
    if (!copy)
        abort();
    memcpy(copy, p, len);
    client_receive(h->clients[i], copy, len);
    free(copy);
}

static void run_record(struct harness *h, bool deferred, const char *p, size_t len)
{
    char op = p[0];
    p++, len--;
    if (op >= 'a' && op < 'a' + CLIENTS)
        send_text(h, op - 'a', p, len);
    else if (op >= 'A' && op < 'A' + CLIENTS)
        client_disconnect(h, op - 'A');
    else if (op == 'n')
        rename_client(h, p, len);
    else if (op == 'P')
        h->bus->ops->publish_count(h->bus, h->connected);
    else if (deferred && (op == 'J' || op == 'j' || op == 'K'))
        defer_bus_answer_join(h->bus, op == 'j' ? -1 : 0, op == 'K');
    else if (deferred && (op == 'S' || op == 's'))
        defer_bus_answer_subscribe(h->bus, op == 'S' ? 0 : -1);
    else if (deferred && op == 'X')
        defer_bus_set_down(h->bus, !defer_bus_is_down(h->bus));

    /* A session asked to close goes at its next callback: after this. */
    for (int i = 0; i < CLIENTS; i++)
        if (h->clients[i] && h->clients[i]->req.closing)
            client_disconnect(h, i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    bool deferred = data[0] & 1;
    struct harness h;
    setup(&h, data[0], deferred);
    const char *p = (const char *)data + 1, *end = (const char *)data + size;
    for (int n = 0; p < end && n < RECORDS_MAX; n++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (len)
            run_record(&h, deferred, p, len);
        p += len + 1;
    }
    teardown(&h, deferred);
    return 0;
}
