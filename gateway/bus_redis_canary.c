/* The Redis bus's subscription canary. A subscriber connection can stay up
 * while it no longer delivers (the peers' most reported failure:
 * anycable#275, nchan#442, the Socket.IO streams adapter's #32), and then
 * rooms go quiet with nothing failing. So every --redis-canary-interval
 * the command connection publishes a numbered canary to this gateway's own
 * channel, which the subscriber connection subscribes to before anything
 * else. Once Redis has answered the PUBLISH the canary is in the
 * subscriber's output; if it is not back within another interval while
 * nothing else came either, the link is restarted, which resubscribes
 * every room and replays its stream. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "log.h"
#include "metrics.h"

static struct timeval interval(const struct rbus *rb)
{
    unsigned ms = rb->base.cfg->redis_canary_interval_ms;
    return (struct timeval){ms / 1000, (suseconds_t)(ms % 1000) * 1000};
}

static size_t format_seq(char *buf, size_t len, uint64_t seq)
{
    return (size_t)snprintf(buf, len, "%" PRIu64, seq);
}

/* Redis's answer to the canary's PUBLISH: from now on it is due back. */
static void on_published(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    const redisReply *reply = r;
    /* No answer: the link went down, and took the canary with it. */
    if (!rb || !reply || !rb->canary.out || (uintptr_t)privdata != rb->canary.seq)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        /* The link works, but cannot be checked (an ACL without the
         * canary's channel): said once per link. */
        if (!rb->canary.refused)
            log_warn("redis: the subscription canary cannot be published (%s); the README's ACL "
                     "line allows it",
                     reply->str);
        rb->canary.refused = true;
        rb->canary.out = false;
        return;
    }
    struct timeval tv = interval(rb);
    rb->canary.heard = false;
    evtimer_add(rb->canary.deadline, &tv);
}

static void send_canary(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    /* One canary at a time: the one out has its deadline. One whose
     * PUBLISH is not answered waits on Redis, which the heartbeat checks. */
    if (!ready(rb) || rb->canary.out)
        return;
    char seq[24];
    rb->canary.seq++;
    const char *argv[3] = {"PUBLISH", rb->canary.channel, seq};
    size_t lens[3] = {7, rb->canary.channel_len, format_seq(seq, sizeof(seq), rb->canary.seq)};
    if (redisAsyncCommandArgv(rb->cmd, on_published, (void *)(uintptr_t)rb->canary.seq, 3, argv,
                              lens) == REDIS_OK)
        rb->canary.out = true;
}

static void canary_missed(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (!ready(rb))
        return;
    /* A subscriber that delivered something meanwhile is alive, only
     * behind (a busy loop, a burst ahead of the canary in the same
     * order): it gets another interval. Only one that delivers nothing is
     * stuck. */
    if (rb->canary.heard) {
        struct timeval tv = interval(rb);
        rb->canary.heard = false;
        evtimer_add(rb->canary.deadline, &tv);
        return;
    }
    metrics.redis_canary_misses++;
    char why[200];
    snprintf(why, sizeof(why),
             "the subscription canary did not come back within %u ms: the subscriber "
             "connection stopped delivering",
             rb->base.cfg->redis_canary_interval_ms);
    rb->link_step(rb, why);
}

bool canary_message(struct rbus *rb, const redisReply *kind, const redisReply *chan,
                    const redisReply *payload)
{
    if (chan->len != rb->canary.channel_len ||
        memcmp(chan->str, rb->canary.channel, chan->len) != 0)
        return false;
    char seq[24];
    size_t len = format_seq(seq, sizeof(seq), rb->canary.seq);
    /* Anything but the one out (a late one of an earlier link) is dropped. */
    if (strcmp(kind->str, "message") == 0 && rb->canary.out &&
        payload->type == REDIS_REPLY_STRING && payload->len == len &&
        memcmp(payload->str, seq, len) == 0) {
        rb->canary.out = false;
        evtimer_del(rb->canary.deadline);
    }
    return true;
}

void canary_link_up(struct rbus *rb)
{
    struct timeval tv = interval(rb);
    rb->canary.out = rb->canary.refused = false;
    evtimer_add(rb->canary.tick, &tv);
}

void canary_link_down(struct rbus *rb)
{
    rb->canary.out = false;
    evtimer_del(rb->canary.tick);
    evtimer_del(rb->canary.deadline);
}

int canary_init(struct rbus *rb)
{
    const char *id = rb->base.cfg->id;
    rb->canary.channel_len = make_key(rb->canary.channel, rb, "canary:", id, strlen(id));
    rb->canary.tick = event_new(rb->base.base, -1, EV_PERSIST, send_canary, rb);
    rb->canary.deadline = evtimer_new(rb->base.base, canary_missed, rb);
    return rb->canary.tick && rb->canary.deadline ? 0 : -1;
}

void canary_free(struct rbus *rb)
{
    if (rb->canary.tick)
        event_free(rb->canary.tick);
    if (rb->canary.deadline)
        event_free(rb->canary.deadline);
}
