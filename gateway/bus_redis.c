/* The Redis bus. Two hiredis async connections on the gateway's event_base:
 * one for commands and Lua scripts, one subscribed to the broadcast channel
 * and to the channel of every room with local members.
 *
 * Chat messages go through one script that appends to the room's stream
 * and publishes in the same atomic step, so the stream id is the message id
 * and ids increase in publish order.
 *
 * When Redis goes away, every request in flight fails (the sender gets
 * `unavailable`), the gateway keeps its clients, reconnects with capped
 * exponential backoff and jitter, re-registers its presence and count,
 * resubscribes its rooms and replays from the streams what was published
 * while it was away.
 *
 * With redis[s]+sentinel:// the server is the primary the sentinels name,
 * asked before each attempt (bus_redis_sentinel.c); its ROLE must say
 * master before the link is ready, and a +switch-master tears the link down
 * at once and connects to the new primary, which then goes the way of any
 * reconnect.
 *
 * This file is the connection and its life: connecting, readiness,
 * heartbeat and liveness, backoff, close. The other pieces are listed in
 * bus_redis_internal.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "log.h"
#include "metrics.h"

/* Reconnect backoff: doubles from the first to the cap, with jitter. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_CAP_MS 3000
/* Heartbeat period; also how long a connection attempt or an answer from
 * Redis may take before the connection is given up and started again. */
#define HEARTBEAT_MS 5000
#define HEARTBEATS_MISSED_MAX 2
#define CLOSE_TIMEOUT_MS 1000

static void teardown(struct rbus *rb, const char *why);

/* ---- connection life ---- */

static void heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (rb->state == LINK_CONNECTING) {
        teardown(rb, "connection attempt timed out");
        return;
    }
    if (rb->state != LINK_READY || rb->closing)
        return;
    /* Answers came since the last beat: Redis is alive, only behind (in a
     * connect storm thousands of joins queue up ahead of the heartbeat).
     * Only a Redis that answers nothing at all is gone. */
    if (rb->replies_since_beat)
        rb->heartbeats_unanswered = 0;
    rb->replies_since_beat = 0;
    if (rb->heartbeats_unanswered >= HEARTBEATS_MISSED_MAX) {
        /* Redis has not answered for periods: treat it as gone, so that
         * what waits on it fails now instead of hanging. (One late answer
         * is only a busy loop: both ends may be loaded.) */
        teardown(rb, "no answer to the heartbeat");
        return;
    }
    char silent[300];
    if (rb->cluster && !cluster_beat(rb, HEARTBEATS_MISSED_MAX, silent, sizeof(silent))) {
        teardown(rb, silent);
        return;
    }
    send_count(rb, rb->local_clients, "beat", true);
    send_reap(rb);
}

/* " as user 'U', database N" of what the configuration asks for, or "". */
static void describe_login(const struct config *cfg, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s%s%s", cfg->redis_user[0] ? " as user '" : "", cfg->redis_user,
                     cfg->redis_user[0] ? "'" : "");
    if (cfg->redis_db && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", database %u", cfg->redis_db);
}

static void check_ready(struct rbus *rb)
{
    if (rb->state != LINK_CONNECTING || !rb->cmd_up || !rb->broadcast_live || rb->scripts_pending ||
        (rb->cluster && !cluster_ready(rb)))
        return;
    rb->state = LINK_READY;
    rb->attempt = 0;
    char login[320], addr[ADDR_MAX], failover[ADDR_MAX + 40] = "";
    describe_login(rb->base.cfg, login, sizeof(login));
    snprintf(addr, sizeof(addr), "%s:%d", rb->host, rb->port);
    /* Ready on another server than last time: the sentinels' primary moved
     * and this gateway followed. (Redis Cluster's seeds take turns: its
     * failovers are the nodes', cluster_log_nodes tells them.) */
    if (!rb->cluster && rb->ready_addr[0] && strcmp(rb->ready_addr, addr) != 0) {
        metrics.redis_failovers++;
        snprintf(failover, sizeof(failover), " (failover followed: the primary was %s)",
                 rb->ready_addr);
    }
    snprintf(rb->ready_addr, sizeof(rb->ready_addr), "%s", addr);
    log_info("redis: connected to %s%s%s%s%s%s, resubscribing %zu rooms",
             rb->cluster ? "Redis Cluster through " : "", addr, rb->tls ? " over TLS" : "",
             rb->named_by, failover, login, rb->channels.count);
    if (rb->cluster)
        cluster_log_nodes(rb);
    if (rb->tls && rb->base.cfg->redis_tls_insecure)
        log_warn("redis: connected WITHOUT verifying the server's certificate "
                 "(--redis-tls-insecure-skip-verify)");
    /* Presence is registered when the answer says so (count_done). */
    send_count(rb, rb->local_clients, "connect", false);
    /* The canary first: under Redis Cluster its channels are then the
     * first subscriptions each primary confirms. */
    canary_link_up(rb);
    channels_link_up(rb);
}

static void link_step(struct rbus *rb, const char *failure)
{
    if (failure)
        teardown(rb, failure);
    else
        check_ready(rb);
}

static void connect_target(struct rbus *rb);

/* The attempt's target, and ", the primary of 'NAME' as sentinel HOST:PORT named it"
 * into rb->named_by for the log. */
static void set_target(struct rbus *rb, const char *host, int port, const char *named_by)
{
    snprintf(rb->host, sizeof(rb->host), "%s", host);
    rb->port = port;
    rb->target_known = true;
    snprintf(rb->named_by, sizeof(rb->named_by), ", the primary of '%s' as %s named it",
             rb->base.cfg->redis_master_name, named_by);
}

static void link_found(struct rbus *rb, const char *host, int port, const char *named_by)
{
    if (rb->state != LINK_CONNECTING || rb->closing)
        return;
    set_target(rb, host, port, named_by);
    connect_target(rb);
}

static void start_connect(struct rbus *rb);

static void link_moved(struct rbus *rb, const char *host, int port, const char *named_by,
                       const char *why)
{
    if (rb->closing)
        return;
    /* Already there, or on the way. */
    if (rb->state != LINK_DOWN && rb->target_known && strcmp(rb->host, host) == 0 &&
        rb->port == port)
        return;
    log_warn("redis: %s; %s now", why,
             rb->state == LINK_READY ? "leaving the old primary and connecting to the new one"
                                     : "connecting to it");
    char lost[ADDR_MAX + 80];
    snprintf(lost, sizeof(lost), "the primary moved to %s:%d", host, port);
    if (rb->state != LINK_DOWN)
        teardown(rb, lost);
    /* At once, not after the backoff: the new primary is there. */
    evtimer_del(rb->reconnect_timer);
    rb->attempt = 0;
    set_target(rb, host, port, named_by);
    rb->direct = true;
    start_connect(rb);
}

/* ---- the handshake: AUTH, then SELECT, before anything else ---- */

static const char *const password_source[] = {
    [CONFIG_SECRET_NONE] = "none configured",
    [CONFIG_SECRET_URL] = "from the --redis URL",
    [CONFIG_SECRET_ENV] = "from " CONFIG_REDIS_PASSWORD_ENV,
    [CONFIG_SECRET_FILE] = "from --redis-password-file",
};

/* What an operator should look at for a TLS failure, or "". */
static const char *tls_hint(const char *why)
{
    if (strstr(why, "certificate verify failed"))
        return "; check --redis-tls-ca (the CA that signed Redis's certificate) and that the "
               "certificate holds the server name (--redis-tls-server-name, default the host "
               "of --redis)";
    if (strstr(why, "alert certificate required") || strstr(why, "handshake failure") ||
        strstr(why, "closed during set-up"))
        return "; Redis may want a client certificate: give --redis-tls-cert and --redis-tls-key";
    if (strstr(why, "wrong version number") || strstr(why, "packet length too long"))
        return "; is this port TLS? rediss:// needs Redis's --tls-port";
    return "";
}

/* What an operator should look at for an error Redis gave, or "". */
static const char *hint(const char *why)
{
    if (strstr(why, "NOAUTH"))
        return "; Redis wants a password: give it in the --redis URL, --redis-password-file "
               "or " CONFIG_REDIS_PASSWORD_ENV;
    if (strstr(why, "WRONGPASS"))
        return "; check the user in --redis and the password";
    if (strstr(why, "NOPERM"))
        return "; the ACL user lacks a right the gateway needs (README: Redis with a password or "
               "an ACL user)";
    if (strstr(why, "cluster support disabled"))
        return "; redis+cluster:// needs the nodes of a Redis Cluster (cluster-enabled yes); "
               "one Redis is redis://";
    if (strstr(why, "DB index"))
        return "; the database number of --redis is more than Redis's 'databases' setting allows";
    if (strstr(why, "ROLE refused"))
        return "; the ACL user needs +role with redis+sentinel:// (README: Redis with a "
               "password or an ACL user)";
    return tls_hint(why);
}

/* The connection's own work, once the handshake is done. */
static void link_open(struct rbus *rb, redisAsyncContext *c)
{
    if (c == rb->cmd) {
        rb->cmd_up = true;
        /* Under Redis Cluster the scripts run on the nodes, loaded there. */
        if (rb->cluster)
            cluster_link_open(rb);
        else
            scripts_load(rb, c);
    } else if (c == rb->sub) {
        channels_connected(rb);
    } else {
        cluster_node_open(rb, c);
    }
}

/* The handshake's steps, named as their commands: an answer's privdata. */
static char step_auth[] = "AUTH", step_role[] = "ROLE", step_select[] = "SELECT";

/* An answer of the handshake: NULL only when the connection goes away, which
 * its disconnect callback reports. */
static bool handshake_ok(struct rbus *rb, const redisReply *reply, const char *command)
{
    if (!reply)
        return false;
    if (reply->type != REDIS_REPLY_ERROR)
        return true;
    const struct config *cfg = rb->base.cfg;
    char why[800];
    if (command == step_auth)
        snprintf(why, sizeof(why), "AUTH as user '%s' (password %s) refused: %s",
                 cfg->redis_user[0] ? cfg->redis_user : "default",
                 password_source[cfg->redis_password_from], reply->str);
    else
        snprintf(why, sizeof(why), "SELECT %u refused: %s", cfg->redis_db, reply->str);
    teardown(rb, why);
    return false;
}

static void on_handshake(redisAsyncContext *c, void *r, void *privdata);

/* Keys live in the database chosen; channels are the server's, whatever
 * the database: the subscriber connection needs no SELECT. */
static void select_db(struct rbus *rb, redisAsyncContext *c)
{
    char db[16];
    const char *argv[2] = {"SELECT", db};
    size_t lens[2] = {6, (size_t)snprintf(db, sizeof(db), "%u", rb->base.cfg->redis_db)};
    if (c == rb->cmd && rb->base.cfg->redis_db)
        redisAsyncCommandArgv(c, on_handshake, step_select, 2, argv, lens);
    else
        link_open(rb, c);
}

/* The command connection asks the server whether it is the primary: a
 * replica would refuse every write. With redis[s]+sentinel:// a sentinel's
 * answer may be stale (it was cut off during a failover, or the old
 * primary came back as a replica); with redis[s]:// the name may point at
 * a replica now. Under Redis Cluster the seed connection only reads the
 * slot map, which a replica serves too (a seed may be one after a
 * failover), and the nodes' redirections tell where the primaries are. */
static void check_role(struct rbus *rb, redisAsyncContext *c)
{
    if (c == rb->cmd && !rb->cluster)
        redisAsyncCommand(c, on_handshake, step_role, "ROLE");
    else
        select_db(rb, c);
}

/* ROLE's answer: true for a primary; else false with why. */
static bool role_ok(const struct rbus *rb, const redisReply *r, char *why, size_t whylen)
{
    const char *stale = rb->sentinel ? ": the sentinel's answer is stale, asking again" : "";
    struct redisReply *const *e = r->element;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && e[0]->type == REDIS_REPLY_STRING &&
        strcmp(e[0]->str, "master") == 0)
        return true;
    if (r->type == REDIS_REPLY_ARRAY && r->elements >= 3 && e[0]->type == REDIS_REPLY_STRING &&
        strcmp(e[0]->str, "slave") == 0 && e[1]->type == REDIS_REPLY_STRING &&
        e[2]->type == REDIS_REPLY_INTEGER)
        snprintf(why, whylen, "it is a replica (ROLE: slave of %.255s:%lld), not the primary%s",
                 e[1]->str, e[2]->integer, stale);
    else
        snprintf(why, whylen, "it is not a primary (ROLE: %.64s)%s",
                 r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                         e[0]->type == REDIS_REPLY_STRING
                     ? e[0]->str
                     : "an unexpected answer",
                 stale);
    return false;
}

static void on_role(struct rbus *rb, redisAsyncContext *c, const redisReply *reply)
{
    char why[700];
    if (reply->type == REDIS_REPLY_ERROR && !rb->sentinel) {
        /* A proxy in front of Redis, or an ACL user without +role: the
         * check is a courtesy there, needed only to follow sentinels. */
        select_db(rb, c);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, sizeof(why), "ROLE refused: %s", reply->str);
        teardown(rb, why);
    } else if (role_ok(rb, reply, why, sizeof(why))) {
        select_db(rb, c);
    } else {
        teardown(rb, why);
    }
}

static void on_handshake(redisAsyncContext *c, void *r, void *privdata)
{
    struct rbus *rb = c->data;
    if (rb && r && privdata == step_role) {
        on_role(rb, c, r);
        return;
    }
    if (!rb || !handshake_ok(rb, r, privdata))
        return;
    if (privdata == step_auth)
        check_role(rb, c);
    else
        link_open(rb, c);
}

/* AUTH [user] password (binary-safe: any byte but NUL), when one is
 * configured. The next step waits for its answer: a subscriber must not
 * subscribe before it is let in (hiredis 0.14 drops a connection whose
 * SUBSCRIBE is answered with an error), and a refusal is reported once
 * rather than as the failure of every command behind it. */
static void authenticate(struct rbus *rb, redisAsyncContext *c)
{
    const struct config *cfg = rb->base.cfg;
    if (!cfg->redis_password[0]) {
        check_role(rb, c);
        return;
    }
    const char *argv[3] = {"AUTH", cfg->redis_user, cfg->redis_password};
    size_t lens[3] = {4, strlen(cfg->redis_user), strlen(cfg->redis_password)};
    int argc = 3;
    if (!cfg->redis_user[0]) { /* AUTH password: the default user */
        argv[1] = argv[2], lens[1] = lens[2];
        argc = 2;
    }
    redisAsyncCommandArgv(c, on_handshake, step_auth, argc, argv, lens);
}

static void on_connect(const redisAsyncContext *c, int status)
{
    struct rbus *rb = c->data;
    if (!rb)
        return;
    char what[300] = "";
    if (status != REDIS_OK) {
        /* hiredis frees this context after the callback. */
        long node = -1;
        if (c == rb->cmd)
            rb->cmd = NULL;
        else if (c == rb->sub)
            rb->sub = NULL;
        else if ((node = cluster_forget(rb, c, what, sizeof(what))) >= 0)
            strncat(what, ": ", sizeof(what) - strlen(what) - 1);
        strncat(what, c->errstr, sizeof(what) - strlen(what) - 1);
        /* A primary connected to again after a loss that is not back yet. */
        if (node >= 0 && cluster_node_failed(rb, (size_t)node, what))
            return;
        rb->dying = c;
        teardown(rb, what);
        return;
    }
    /* The callbacks take a mutable context; this one is ours. */
    authenticate(rb, c == rb->cmd ? rb->cmd : c == rb->sub ? rb->sub : cluster_ctx(rb, c));
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
    struct rbus *rb = c->data;
    if (!rb)
        return; /* we freed it ourselves */
    /* hiredis frees this context after the callback. */
    bool was_sub = c == rb->sub;
    long node = -1;
    char what[200] = "command";
    /* Its SSL stays known until teardown, which asks it why. */
    if (was_sub)
        snprintf(what, sizeof(what), "subscriber"), rb->sub = NULL;
    else if (c == rb->cmd)
        rb->cmd = NULL;
    else
        node = cluster_forget(rb, c, what, sizeof(what));
    char why[400];
    snprintf(why, sizeof(why), "%s connection closed%s%s", what, status == REDIS_OK ? "" : ": ",
             status == REDIS_OK ? "" : c->errstr);
    /* One primary lost: only its rooms wait (Redis Cluster). */
    if (node >= 0 && cluster_node_failed(rb, (size_t)node, why))
        return;
    rb->dying = c;
    /* Redis also closes a subscriber that passes its pub/sub output buffer
     * limit; it logs 'client-output-buffer-limit' when it does. (Not while
     * connecting: a TLS server refusing the client's certificate closes
     * both connections, the subscriber's maybe first.) */
    if (was_sub && rb->state == LINK_READY)
        log_warn("redis: the server closed the subscriber connection while the command "
                 "connection was up: if Redis logged 'client-output-buffer-limit', this "
                 "gateway fell behind its pub/sub traffic");
    teardown(rb, why);
}

static void schedule_reconnect(struct rbus *rb)
{
    unsigned shift = rb->attempt < 10 ? rb->attempt : 10;
    unsigned delay = BACKOFF_FIRST_MS << shift;
    if (delay > BACKOFF_CAP_MS)
        delay = BACKOFF_CAP_MS;
    delay = delay / 2 + (unsigned)((unsigned)rand() % (delay / 2 + 1)); /* jitter */
    rb->attempt++;
    struct timeval tv = {delay / 1000, (suseconds_t)(delay % 1000) * 1000};
    evtimer_add(rb->reconnect_timer, &tv);
}

void redis_free_ctx(redisAsyncContext **pc, SSL **pssl)
{
    redisAsyncContext *c = *pc;
    *pc = NULL;
    *pssl = NULL; /* freed with the context */
    if (c) {
        c->data = NULL;
        redisAsyncFree(c); /* fails what is in flight on it */
    }
}

static void finish_close(struct rbus *rb)
{
    evtimer_del(rb->close_timer);
    if (rb->close_done) {
        bus_done_fn done = rb->close_done;
        rb->close_done = NULL;
        done(rb->close_arg, 0);
    }
}

static void teardown(struct rbus *rb, const char *why)
{
    bool was_ready = rb->state == LINK_READY;
    /* A refused TLS handshake shows to hiredis as a failed read or write
     * (errno's text), and to the gateway often first as a failed command
     * ("could not load scripts"): OpenSSL knows the real reason. The SSLs
     * are alive until the contexts are freed below. */
    char tls_why[300];
    const redisAsyncContext *broken = rb->dying                 ? rb->dying
                                      : rb->cmd && rb->cmd->err ? rb->cmd
                                      : rb->sub && rb->sub->err ? rb->sub
                                                                : NULL;
    rb->dying = NULL;
    if (rb->tls && !rb->closing) {
        if (redis_tls_why(rb->cmd_ssl, rb->sub_ssl, tls_why, sizeof(tls_why)))
            why = tls_why;
        else if (rb->state == LINK_CONNECTING && broken &&
                 (broken->err == REDIS_ERR_IO || broken->err == REDIS_ERR_EOF) &&
                 !strstr(broken->errstr, "refused")) { /* not TCP's "Connection refused" */
            /* Under TLS 1.3 a server refusing the client's certificate may
             * close before its alert is read: the write fails first. */
            snprintf(tls_why, sizeof(tls_why), "TLS connection closed during set-up (%s)",
                     broken->errstr);
            why = tls_why;
        }
    }
    if (rb->closing)
        ; /* leaving on purpose */
    else if (was_ready)
        log_warn("redis: lost (%s%s); clients stay connected, messages are refused until it "
                 "is back",
                 why, hint(why));
    else if (rb->state == LINK_CONNECTING && rb->cluster)
        log_warn("redis: cannot connect to Redis Cluster (%s%s)", why, hint(why));
    else if (rb->state == LINK_CONNECTING && rb->target_known)
        log_warn("redis: cannot connect to %s:%d%s (%s%s)", rb->host, rb->port, rb->named_by, why,
                 hint(why));
    else if (rb->state == LINK_CONNECTING) /* the sentinels said no: their hints are theirs */
        log_warn("redis: cannot connect: %s%s", why, tls_hint(why));
    /* A primary a sentinel named that did not work out: ask another first
     * next time (one that +switch-master named is asked about again). */
    if (rb->sentinel && rb->state == LINK_CONNECTING && rb->target_known && !rb->direct)
        sentinel_distrust(rb->sentinel);
    if (rb->sentinel)
        sentinel_cancel(rb->sentinel);
    rb->direct = false;
    rb->state = LINK_DOWN;
    rb->cmd_up = rb->broadcast_live = false;
    rb->heartbeats_unanswered = rb->replies_since_beat = rb->scripts_pending = 0;
    redis_free_ctx(&rb->cmd, &rb->cmd_ssl);
    redis_free_ctx(&rb->sub, &rb->sub_ssl);
    if (rb->cluster)
        cluster_link_down(rb);
    /* The subscriptions died with the connection. */
    canary_link_down(rb);
    channels_link_down(rb);
    if (rb->closing) {
        finish_close(rb);
        return;
    }
    if (was_ready)
        metrics.redis_reconnects++;
    if (!evtimer_pending(rb->reconnect_timer, NULL))
        schedule_reconnect(rb);
}

redisAsyncContext *redis_connect(struct rbus *rb, const char *host, int port, SSL **ssl, char *why,
                                 size_t whylen)
{
    return redis_open(rb, host, port, ssl, rb, on_connect, on_disconnect, why, whylen);
}

/* Both connections to rb->host:rb->port. */
static void connect_target(struct rbus *rb)
{
    char why[300] = "";
    rb->cmd = redis_connect(rb, rb->host, rb->port, &rb->cmd_ssl, why, sizeof(why));
    if (rb->cmd)
        rb->sub = redis_connect(rb, rb->host, rb->port, &rb->sub_ssl, why, sizeof(why));
    if (!rb->cmd || !rb->sub) {
        teardown(rb, why); /* one line for the attempt */
        return;
    }
    struct timeval tv = {HEARTBEAT_MS / 1000, 0};
    evtimer_del(rb->heartbeat_timer);
    evtimer_add(rb->heartbeat_timer, &tv);
}

static void start_connect(struct rbus *rb)
{
    rb->state = LINK_CONNECTING;
    if (rb->cluster) { /* the seeds in turn */
        const char *host;
        cluster_next_seed(rb, &host, &rb->port);
        snprintf(rb->host, sizeof(rb->host), "%s", host);
    }
    if (!rb->sentinel || rb->direct) {
        connect_target(rb);
        return;
    }
    /* The sentinels answer (or give up) within their own time limits; the
     * heartbeat's limit starts with the connections. */
    rb->target_known = false;
    rb->named_by[0] = '\0';
    evtimer_del(rb->heartbeat_timer);
    sentinel_discover(rb->sentinel);
}

static void reconnect(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    if (!rb->closing)
        start_connect(rb);
}

static bool redis_ready(struct bus *b)
{
    return ready((struct rbus *)b);
}

static void close_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    log_warn("redis: no answer while leaving the cluster");
    teardown(rb, "closing");
}

static void on_withdrawn(redisAsyncContext *c, void *r, void *privdata)
{
    (void)r, (void)privdata;
    struct rbus *rb = c->data;
    if (rb && --rb->close_pending == 0)
        teardown(rb, "closing");
}

static void redis_close(struct bus *b, bus_done_fn done, void *arg)
{
    struct rbus *rb = (struct rbus *)b;
    bool was_ready = ready(rb);
    rb->closing = true;
    rb->close_done = done;
    rb->close_arg = arg;
    evtimer_del(rb->reconnect_timer);
    evtimer_del(rb->heartbeat_timer);
    evtimer_del(rb->count_retry);
    if (!was_ready) {
        teardown(rb, "closing");
        return;
    }
    /* Withdraw presence and count, then wait for Redis to have done it:
     * a PING behind the withdrawal on every connection that got some. */
    if (rb->cluster)
        cluster_withdraw(rb); /* from each room's own node */
    presence_free(&rb->presence);
    presence_init(&rb->presence);
    if (!rb->cluster)
        reregister(rb);
    send_count(rb, 0, "withdraw", false);
    if (rb->cluster)
        rb->close_pending = cluster_ping_all(rb, on_withdrawn);
    else
        rb->close_pending = redisAsyncCommand(rb->cmd, on_withdrawn, NULL, "PING") == REDIS_OK;
    if (!rb->close_pending) {
        teardown(rb, "closing");
        return;
    }
    struct timeval tv = {0, CLOSE_TIMEOUT_MS * 1000};
    evtimer_add(rb->close_timer, &tv);
}

static void redis_free(struct bus *b)
{
    struct rbus *rb = (struct rbus *)b;
    rb->closing = true;
    rb->close_done = NULL;
    redis_free_ctx(&rb->cmd, &rb->cmd_ssl);
    redis_free_ctx(&rb->sub, &rb->sub_ssl);
    if (rb->cluster)
        cluster_free(rb);
    if (rb->sentinel)
        sentinel_free(rb->sentinel);
    event_free(rb->reconnect_timer);
    event_free(rb->heartbeat_timer);
    event_free(rb->close_timer);
    if (rb->count_retry)
        event_free(rb->count_retry);
    canary_free(rb);
    channels_free(rb);
    presence_free(&rb->presence);
    redis_tls_ctx_free(rb->tls);
    bus_base_free(b);
    free(rb);
}

static void redis_target(struct bus *b, const char **mode, char *primary, size_t len, bool *tls)
{
    struct rbus *rb = (struct rbus *)b;
    *mode = rb->cluster ? "cluster" : rb->sentinel ? "sentinel" : "single";
    *tls = rb->tls != NULL;
    if (rb->host[0])
        snprintf(primary, len, "%s:%d", rb->host, rb->port);
}

static const struct bus_ops redis_ops = {
    .publish_chat = redis_publish_chat,
    .publish_frame = redis_publish_frame,
    .subscribe = redis_subscribe,
    .unsubscribe = redis_unsubscribe,
    .join = redis_join,
    .leave = redis_leave,
    .presence = redis_presence,
    .history = redis_history,
    .rooms = redis_rooms,
    .gateways = redis_gateways,
    .announce = bus_announce_event,
    .publish_announcement = redis_publish_announcement,
    .publish_count = redis_publish_count,
    .connection_event = redis_connection_event,
    .ready = redis_ready,
    .target = redis_target,
    .close = redis_close,
    .free = redis_free,
};

struct bus *bus_redis_new(struct event_base *base, const struct config *cfg,
                          const struct bus_handlers *h)
{
    struct rbus *rb = calloc(1, sizeof(*rb));
    if (!rb || bus_base_init(&rb->base, &redis_ops, base, cfg, h) < 0) {
        log_error("redis: out of memory setting up the bus");
        free(rb);
        return NULL;
    }
    log_info("redis: hiredis %d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    strmap_init(&rb->channels);
    presence_init(&rb->presence);
    rb->broadcast_len = make_key(rb->broadcast, rb, "broadcast", "", 0);
    if (cfg->events_stream)
        rb->events_len = make_key(rb->events, rb, "events", "", 0);
    snprintf(rb->events_cap, sizeof(rb->events_cap), "%u", cfg->events_maxlen);
    rb->link_step = link_step;
    rb->link_found = link_found;
    rb->link_moved = link_moved;
    if (!cfg->redis_sentinel) {
        snprintf(rb->host, sizeof(rb->host), "%s", cfg->redis_host);
        rb->port = cfg->redis_port;
        rb->target_known = true;
    }
    rb->reconnect_timer = evtimer_new(base, reconnect, rb);
    rb->heartbeat_timer = event_new(base, -1, EV_PERSIST, heartbeat, rb);
    rb->close_timer = evtimer_new(base, close_timeout, rb);
    rb->count_retry = evtimer_new(base, redis_count_retry, rb);
    if (!rb->reconnect_timer || !rb->heartbeat_timer || !rb->close_timer || !rb->count_retry ||
        canary_init(rb) < 0 || (rb->base.cfg->redis_cluster && !(rb->cluster = cluster_new(rb)))) {
        log_error("redis: out of memory setting up the bus");
        redis_free(&rb->base);
        return NULL;
    }
    /* Each logs why when it fails. */
    if ((rb->base.cfg->redis_tls && !(rb->tls = redis_tls_ctx_new(rb->base.cfg))) ||
        (cfg->redis_sentinel && !(rb->sentinel = sentinel_new(rb)))) {
        redis_free(&rb->base);
        return NULL;
    }
    start_connect(rb);
    return &rb->base;
}
