/* The Redis bus under Redis Cluster (redis+cluster://): the slot map, one
 * command and one sharded-subscriber connection per primary, and which of
 * them a key or a room channel goes to.
 *
 * A connection attempt connects the bus's two usual connections to a seed
 * (the next one each attempt): the command one asks CLUSTER SLOTS, the
 * subscriber one holds the broadcast channel, classic pub/sub that every
 * node relays. Then every primary of the map gets its two connections, the
 * scripts are loaded on each, and the link is ready when all are up. A
 * room's keys and channel share its hash tag, so each script call and each
 * SSUBSCRIBE goes to the one node that serves the room's slot; the keys of
 * no room (counts, heartbeats, the room sets) share the global tag.
 *
 * Changes of topology: a MOVED or ASK answer to any request, a script
 * call or a plain command, is followed (at most REDIRECTS_MAX times) and
 * asks for the map again, and a TRYAGAIN (a command of several keys whose
 * slot is half moved) is sent again a little later, at most TRYAGAIN_MAX
 * times; a slot that leaves
 * a node ends its shard subscriptions with a sunsubscribe, after which the
 * channels piece subscribes again on the new owner and replays the stream;
 * a primary that fails closes its connections, and the whole link is
 * connected again (as after any outage: resubscribe and replay), through
 * the seeds, until the map names its replacement. A map whose primaries
 * are not those connected to is such a change too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "cluster_slots.h"
#include "log.h"

/* Redirections one request follows before it fails: a slot moves once. */
#define REDIRECTS_MAX 3
/* Map refreshes asked for within this long are one. */
#define REFRESH_DELAY_MS 100
/* TRYAGAIN lasts while a resharding moves a slot's keys, one MIGRATE batch
 * after another, and until it says where the slot is (CLUSTER SETSLOT
 * NODE): a request waits this long between tries, about a second in all,
 * before it fails. */
#define TRYAGAIN_DELAY_MS 100
#define TRYAGAIN_MAX 10

struct cnode {
    redisAsyncContext *cmd, *sub;
    SSL *cmd_ssl, *sub_ssl;    /* owned by their contexts */
    unsigned beats_unanswered; /* since its last answer */
};

struct rcluster {
    struct cluster_node *seeds;
    size_t n_seeds, next_seed;
    char seed_host[CLUSTER_HOST_MAX]; /* of this attempt's seed */
    /* map.nodes are the primaries connected to; nodes[] are their
     * connections, index for index. */
    struct cluster_map map;
    struct cnode *nodes;
    unsigned opening; /* node connections whose handshake is not done */
    struct event *refresh_timer;
    bool refreshing; /* a CLUSTER SLOTS in flight */
    /* Requests answered TRYAGAIN, in order, sent again when retry_timer
     * fires. */
    struct request *waiting, **waiting_tail;
    struct event *retry_timer;
};

static void refresh_now(evutil_socket_t fd, short what, void *arg);
static void retry_now(evutil_socket_t fd, short what, void *arg);

struct rcluster *cluster_new(struct rbus *rb)
{
    const char *seeds = rb->base.cfg->redis_seeds;
    struct rcluster *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return NULL;
    cluster_map_init(&cl->map);
    size_t n = 1;
    for (const char *p = seeds; *p; p++)
        n += *p == ',';
    cl->seeds = calloc(n, sizeof(*cl->seeds));
    cl->waiting_tail = &cl->waiting;
    cl->refresh_timer = evtimer_new(rb->base.base, refresh_now, rb);
    cl->retry_timer = evtimer_new(rb->base.base, retry_now, rb);
    if (!cl->seeds || !cl->refresh_timer || !cl->retry_timer) {
        free(cl->seeds);
        if (cl->refresh_timer)
            event_free(cl->refresh_timer);
        if (cl->retry_timer)
            event_free(cl->retry_timer);
        free(cl);
        return NULL;
    }
    /* config_parse_redis_url wrote them: "HOST:PORT" each, valid. */
    for (const char *p = seeds; *p && cl->n_seeds < n;) {
        char one[CLUSTER_HOST_MAX + 16];
        size_t len = strcspn(p, ",");
        snprintf(one, sizeof(one), "%.*s", (int)len, p);
        struct cluster_node *s = &cl->seeds[cl->n_seeds];
        if (config_parse_hostport(one, s->host, sizeof(s->host), &s->port))
            cl->n_seeds++;
        p += len + (p[len] == ',');
    }
    if (!cl->n_seeds) { /* not reached: config_parse_redis_url lets none through */
        event_free(cl->refresh_timer);
        event_free(cl->retry_timer);
        free(cl->seeds);
        free(cl);
        return NULL;
    }
    return cl;
}

void cluster_free(struct rbus *rb)
{
    struct rcluster *cl = rb->cluster;
    cluster_link_down(rb);
    event_free(cl->refresh_timer);
    event_free(cl->retry_timer);
    free(cl->seeds);
    free(cl);
    rb->cluster = NULL;
}

void cluster_next_seed(struct rbus *rb, const char **host, int *port)
{
    struct rcluster *cl = rb->cluster;
    const struct cluster_node *s = &cl->seeds[cl->next_seed++ % cl->n_seeds];
    snprintf(cl->seed_host, sizeof(cl->seed_host), "%s", s->host);
    *host = s->host;
    *port = s->port;
}

/* ---- the map ---- */

static long node_index(const struct rcluster *cl, const struct cluster_node *n)
{
    for (size_t i = 0; i < cl->map.n_nodes; i++)
        if (cl->map.nodes[i].port == n->port && strcmp(cl->map.nodes[i].host, n->host) == 0)
            return (long)i;
    return -1;
}

/* Connects to every primary of the map just parsed. */
static void connect_nodes(struct rbus *rb)
{
    struct rcluster *cl = rb->cluster;
    char why[600];
    for (size_t s = 0; s < CLUSTER_SLOTS; s++) {
        if (cl->map.owner[s] == CLUSTER_NO_OWNER) {
            snprintf(why, sizeof(why), "the cluster serves no slot %zu (is it set up and ok?)", s);
            rb->link_step(rb, why);
            return;
        }
    }
    cl->nodes = calloc(cl->map.n_nodes, sizeof(*cl->nodes));
    if (!cl->nodes) {
        rb->link_step(rb, "out of memory");
        return;
    }
    for (size_t i = 0; i < cl->map.n_nodes; i++) {
        struct cnode *n = &cl->nodes[i];
        const struct cluster_node *at = &cl->map.nodes[i];
        char failed[300];
        if (!(n->cmd =
                  redis_connect(rb, at->host, at->port, &n->cmd_ssl, failed, sizeof(failed))) ||
            !(n->sub =
                  redis_connect(rb, at->host, at->port, &n->sub_ssl, failed, sizeof(failed)))) {
            snprintf(why, sizeof(why), "node %s:%d: %s", at->host, at->port, failed);
            rb->link_step(rb, why);
            return;
        }
        cl->opening += 2;
    }
}

void cluster_log_nodes(const struct rbus *rb)
{
    const struct rcluster *cl = rb->cluster;
    char list[1024];
    size_t at = 0;
    for (size_t i = 0; i < cl->map.n_nodes && at < sizeof(list); i++) {
        unsigned slots = 0;
        for (size_t s = 0; s < CLUSTER_SLOTS; s++)
            slots += cl->map.owner[s] == i;
        int n = snprintf(list + at, sizeof(list) - at, "%s%s:%d (%u slots)", i ? ", " : "",
                         cl->map.nodes[i].host, cl->map.nodes[i].port, slots);
        at += n > 0 ? (size_t)n : 0;
    }
    log_info("redis: cluster primaries: %s", list);
}

/* The map's answer, during a connection attempt or after a refresh. */
static void on_slots(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct rbus *rb = c->data;
    if (!rb || !r)
        return; /* the connection is going: its disconnect says why */
    struct rcluster *cl = rb->cluster;
    char why[400];
    if (!cl->nodes) { /* connecting */
        if (!cluster_map_parse(&cl->map, r, cl->seed_host, why, sizeof(why)))
            rb->link_step(rb, why);
        else
            connect_nodes(rb);
        return;
    }
    cl->refreshing = false;
    struct cluster_map *next = malloc(sizeof(*next));
    if (!next) {
        log_error("redis: out of memory reading the cluster's slot map");
        return;
    }
    cluster_map_init(next);
    if (!cluster_map_parse(next, r, cl->seed_host, why, sizeof(why))) {
        log_error("redis: %s", why);
    } else {
        /* The owners, as indexes of the nodes connected to. A primary not
         * connected to (a replica took over) means connecting again. */
        uint16_t owner[CLUSTER_SLOTS];
        const struct cluster_node *unknown = NULL;
        for (size_t s = 0; s < CLUSTER_SLOTS && !unknown; s++) {
            const struct cluster_node *n = cluster_map_owner(next, (unsigned)s);
            long i = n ? node_index(cl, n) : -1;
            if (n && i < 0)
                unknown = n;
            owner[s] = i < 0 ? CLUSTER_NO_OWNER : (uint16_t)i;
        }
        if (unknown) {
            snprintf(why, sizeof(why), "the cluster's primaries changed (now %s:%d)", unknown->host,
                     unknown->port);
            cluster_map_free(next);
            free(next);
            rb->link_step(rb, why); /* reconnects: closes c */
            return;
        }
        memcpy(cl->map.owner, owner, sizeof(owner));
    }
    cluster_map_free(next);
    free(next);
    channels_link_up(rb); /* the subscriptions a move ended */
    canary_map_changed(rb);
}

void cluster_link_open(struct rbus *rb)
{
    redisAsyncCommand(rb->cmd, on_slots, NULL, "CLUSTER SLOTS");
}

static void refresh_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    struct rcluster *cl = rb->cluster;
    if (!ready(rb) || cl->refreshing)
        return; /* a new connection reads the map anyway */
    cl->refreshing = redisAsyncCommand(rb->cmd, on_slots, NULL, "CLUSTER SLOTS") == REDIS_OK;
}

void cluster_refresh(struct rbus *rb)
{
    struct rcluster *cl = rb->cluster;
    if (!cl->nodes || evtimer_pending(cl->refresh_timer, NULL))
        return;
    struct timeval tv = {0, REFRESH_DELAY_MS * 1000};
    evtimer_add(cl->refresh_timer, &tv);
}

/* ---- the node connections ---- */

static struct cnode *node_of(struct rcluster *cl, const redisAsyncContext *c)
{
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++)
        if (cl->nodes[i].cmd == c || cl->nodes[i].sub == c)
            return &cl->nodes[i];
    return NULL;
}

redisAsyncContext *cluster_ctx(struct rbus *rb, const redisAsyncContext *c)
{
    struct cnode *n = rb->cluster ? node_of(rb->cluster, c) : NULL;
    return !n ? NULL : n->cmd == c ? n->cmd : n->sub;
}

void cluster_node_open(struct rbus *rb, redisAsyncContext *c)
{
    struct cnode *n = node_of(rb->cluster, c);
    if (!n)
        return;
    if (c == n->cmd)
        scripts_load(rb, c);
    rb->cluster->opening--;
    rb->link_step(rb, NULL);
}

bool cluster_ready(const struct rbus *rb)
{
    return rb->cluster->nodes && rb->cluster->opening == 0;
}

bool cluster_forget(struct rbus *rb, const redisAsyncContext *c, char *what, size_t len)
{
    struct rcluster *cl = rb->cluster;
    struct cnode *n = cl ? node_of(cl, c) : NULL;
    if (!n)
        return false;
    const struct cluster_node *at = &cl->map.nodes[n - cl->nodes];
    snprintf(what, len, "node %s:%d's %s", at->host, at->port,
             n->cmd == c ? "command" : "sharded-subscriber");
    /* hiredis frees it after the callback; its SSL goes with it. */
    if (n->cmd == c)
        n->cmd = NULL;
    else
        n->sub = NULL;
    return true;
}

/* Takes the requests waiting to try again out of the queue, in order. */
static struct request *take_waiting(struct rcluster *cl)
{
    struct request *q = cl->waiting;
    cl->waiting = NULL;
    cl->waiting_tail = &cl->waiting;
    evtimer_del(cl->retry_timer);
    return q;
}

void cluster_link_down(struct rbus *rb)
{
    struct rcluster *cl = rb->cluster;
    struct request *waiting = take_waiting(cl);
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++) {
        redis_free_ctx(&cl->nodes[i].cmd, &cl->nodes[i].cmd_ssl);
        redis_free_ctx(&cl->nodes[i].sub, &cl->nodes[i].sub_ssl);
    }
    free(cl->nodes);
    cl->nodes = NULL;
    cl->opening = 0;
    cl->refreshing = false;
    evtimer_del(cl->refresh_timer);
    cluster_map_free(&cl->map);
    /* They fail as those in flight just did. */
    while (waiting) {
        struct request *q = waiting;
        waiting = q->next;
        request_fail(q);
    }
}

void cluster_heard(struct rbus *rb, const redisAsyncContext *c)
{
    struct cnode *n = node_of(rb->cluster, c);
    if (n)
        n->beats_unanswered = 0;
}

static void on_beat(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct rbus *rb = c->data;
    if (rb && r)
        cluster_heard(rb, c);
}

bool cluster_beat(struct rbus *rb, unsigned missed_max, char *silent, size_t len)
{
    struct rcluster *cl = rb->cluster;
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++) {
        struct cnode *n = &cl->nodes[i];
        if (n->beats_unanswered >= missed_max) {
            snprintf(silent, len, "node %s:%d answered nothing for %u heartbeats",
                     cl->map.nodes[i].host, cl->map.nodes[i].port, missed_max);
            return false;
        }
        if (n->cmd && redisAsyncCommand(n->cmd, on_beat, NULL, "PING") == REDIS_OK)
            n->beats_unanswered++;
    }
    return true;
}

unsigned cluster_ping_all(struct rbus *rb, redisCallbackFn *fn)
{
    struct rcluster *cl = rb->cluster;
    unsigned sent = 0;
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++)
        sent +=
            cl->nodes[i].cmd && redisAsyncCommand(cl->nodes[i].cmd, fn, NULL, "PING") == REDIS_OK;
    return sent;
}

/* ---- for the canary: the primaries by index ---- */

const struct cluster_map *cluster_map_now(const struct rbus *rb)
{
    return rb->cluster && rb->cluster->nodes ? &rb->cluster->map : NULL;
}

redisAsyncContext *cluster_node_conn(struct rbus *rb, size_t i, bool sub)
{
    struct rcluster *cl = rb->cluster;
    if (!cl || !cl->nodes || i >= cl->map.n_nodes)
        return NULL;
    return sub ? cl->nodes[i].sub : cl->nodes[i].cmd;
}

long cluster_node_index(struct rbus *rb, const redisAsyncContext *c)
{
    struct cnode *n = rb->cluster ? node_of(rb->cluster, c) : NULL;
    return n ? (long)(n - rb->cluster->nodes) : -1;
}

/* ---- routing ---- */

static struct cnode *node_for(struct rbus *rb, const char *key, size_t len)
{
    struct rcluster *cl = rb->cluster;
    unsigned slot = cluster_key_slot(key, len);
    if (!cl->nodes || cl->map.owner[slot] == CLUSTER_NO_OWNER)
        return NULL;
    return &cl->nodes[cl->map.owner[slot]];
}

redisAsyncContext *cmd_for(struct rbus *rb, const char *key, size_t len)
{
    if (!rb->cluster)
        return rb->cmd;
    struct cnode *n = node_for(rb, key, len);
    return n ? n->cmd : NULL;
}

redisAsyncContext *sub_for(struct rbus *rb, const char *chan, size_t len)
{
    struct cnode *n = node_for(rb, chan, len);
    return n ? n->sub : NULL;
}

static void retry_now(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct rbus *rb = arg;
    /* Each goes by the map again: to the slot's owner, which answers ASK
     * while the slot is still on its way. */
    for (struct request *q = take_waiting(rb->cluster), *next; q; q = next) {
        next = q->next;
        if (send_request_to(rb, q, NULL) < 0)
            request_fail(q);
    }
}

/* The slot of q's key (a command's name comes before it). */
static uint16_t request_slot(const struct request *q)
{
    int key = q->command;
    return (uint16_t)cluster_key_slot(q->argv[key], q->argvlen[key]);
}

/* q goes to the end of the queue, for the next retry. */
static void wait_in_line(struct rcluster *cl, struct request *q)
{
    q->slot = request_slot(q);
    q->next = NULL;
    *cl->waiting_tail = q;
    cl->waiting_tail = &q->next;
    if (!evtimer_pending(cl->retry_timer, NULL)) {
        struct timeval tv = {0, TRYAGAIN_DELAY_MS * 1000};
        evtimer_add(cl->retry_timer, &tv);
    }
}

/* TRYAGAIN: q waits in the queue for the next retry, with its
 * redirections counted afresh; false when it tried often enough. */
static bool try_again(struct rbus *rb, struct request *q)
{
    struct rcluster *cl = rb->cluster;
    if (q->tryagains++ >= TRYAGAIN_MAX || !cl->nodes)
        return false;
    q->redirects = 0;
    wait_in_line(cl, q);
    return true;
}

bool cluster_hold(struct rbus *rb, struct request *q)
{
    struct rcluster *cl = rb->cluster;
    if (!cl || !cl->waiting)
        return false;
    uint16_t slot = request_slot(q);
    for (const struct request *w = cl->waiting; w; w = w->next) {
        if (w->slot == slot) {
            wait_in_line(cl, q);
            return true;
        }
    }
    return false;
}

bool cluster_redirect(struct rbus *rb, struct request *q, const char *err, size_t len)
{
    struct rcluster *cl = rb->cluster;
    struct cluster_redirect d;
    if (len >= 8 && memcmp(err, "TRYAGAIN", 8) == 0)
        return try_again(rb, q);
    if (!cluster_redirect_parse(err, len, &d))
        return false;
    cluster_refresh(rb); /* the map is old, or a slot is on its way */
    /* Behind the slot's requests that wait, as it was sent after them. */
    if (cluster_hold(rb, q))
        return true;
    long i = node_index(cl, &d.to);
    if (q->redirects++ >= REDIRECTS_MAX || i < 0 || !cl->nodes || !cl->nodes[i].cmd)
        return false; /* fails as it is; an unknown node is for the refresh */
    struct cnode *n = &cl->nodes[i];
    if (!d.ask)
        cl->map.owner[d.slot] = (uint16_t)i;
    else if (redisAsyncCommand(n->cmd, NULL, NULL, "ASKING") != REDIS_OK)
        return false;
    return send_request_to(rb, q, n->cmd) == 0;
}
