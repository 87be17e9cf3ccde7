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
 * a primary that fails (its connection closes, it misses heartbeats, its
 * canary does not come back) is left alone: its connections are freed, its
 * rooms' channels wait, requests for its slots fail at once (unavailable),
 * and the map is read again every NODE_RETRY_MS until it names a primary
 * for them that answers, connected to in the lost one's place; its rooms
 * are then subscribed there and their streams replayed. The other
 * primaries' rooms go on untouched. The whole link is connected again (as
 * after any outage: resubscribe and replay, through the seeds) only when
 * the seed's own node fails, the map cannot be read while slots wait, the
 * node of the global tag stays lost for the heartbeat's limit, or the map
 * names more new primaries than there are lost ones to replace. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus_redis_internal.h"
#include "cluster_slots.h"
#include "log.h"
#include "metrics.h"

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
/* While a slot has no primary that answers, the map is read this often:
 * a failover names the replica within cluster-node-timeout and a vote. */
#define NODE_RETRY_MS 500

/* A primary's connections: DOWN (none: lost, or not connected yet),
 * OPENING (connecting), UP (both handshakes done and the command
 * connection answered a PING behind the scripts: a node that accepts TCP
 * but is stopped is not UP). Requests and subscriptions go to UP ones
 * only. */
enum node_state { NODE_DOWN, NODE_OPENING, NODE_UP };

struct cnode {
    redisAsyncContext *cmd, *sub;
    SSL *cmd_ssl, *sub_ssl; /* owned by their contexts */
    enum node_state state;
    unsigned steps; /* OPENING: the two handshakes and the PING still due */
    /* UP: heartbeats since its last answer; OPENING: since it began. */
    unsigned beats_unanswered;
    bool retrying; /* lost and not UP again since: its failures said once */
};

struct rcluster {
    struct cluster_node *seeds;
    size_t n_seeds, next_seed;
    char seed_host[CLUSTER_HOST_MAX]; /* of this attempt's seed */
    /* map.nodes are the primaries connected to; nodes[] are their
     * connections, index for index. */
    struct cluster_map map;
    struct cnode *nodes;
    struct event *refresh_timer;
    bool refreshing; /* a CLUSTER SLOTS in flight */
    /* Requests answered TRYAGAIN, in order, sent again when retry_timer
     * fires. */
    struct request *waiting, **waiting_tail;
    struct event *retry_timer;
    unsigned global_slot;       /* of the gateways' shared keys ({global}) */
    unsigned global_beats_lost; /* heartbeats its node has been lost for */
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
    metrics.redis_cluster_slots_unserved = CLUSTER_SLOTS;
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

static void on_node_pinged(redisAsyncContext *c, void *r, void *privdata);

/* Opens node i's two connections (OPENING); false with why when one
 * cannot even be started (the node stays DOWN). */
static bool node_open(struct rbus *rb, size_t i, char *why, size_t len)
{
    struct rcluster *cl = rb->cluster;
    struct cnode *n = &cl->nodes[i];
    const struct cluster_node *at = &cl->map.nodes[i];
    char failed[300];
    n->state = NODE_OPENING;
    n->steps = 3;
    n->beats_unanswered = 0;
    if ((n->cmd = redis_connect(rb, at->host, at->port, &n->cmd_ssl, failed, sizeof(failed))) &&
        (n->sub = redis_connect(rb, at->host, at->port, &n->sub_ssl, failed, sizeof(failed))))
        return true;
    redis_free_ctx(&n->cmd, &n->cmd_ssl);
    n->state = NODE_DOWN;
    snprintf(why, len, "node %s:%d: %s", at->host, at->port, failed);
    return false;
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
        if (!node_open(rb, i, why, sizeof(why))) {
            rb->link_step(rb, why);
            return;
        }
    }
}

static unsigned slots_of(const struct rcluster *cl, size_t i)
{
    unsigned slots = 0;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        slots += cl->map.owner[s] == i;
    return slots;
}

void cluster_log_nodes(const struct rbus *rb)
{
    const struct rcluster *cl = rb->cluster;
    char list[1024];
    size_t at = 0;
    for (size_t i = 0; i < cl->map.n_nodes && at < sizeof(list); i++) {
        int n = snprintf(list + at, sizeof(list) - at, "%s%s:%d (%u slots)", i ? ", " : "",
                         cl->map.nodes[i].host, cl->map.nodes[i].port, slots_of(cl, i));
        at += n > 0 ? (size_t)n : 0;
    }
    log_info("redis: cluster primaries: %s", list);
}

/* The gauges: primaries UP, and slots whose primary is not (every slot
 * while the link is down). */
static void count_nodes(const struct rcluster *cl)
{
    uint64_t up = 0, unserved = 0;
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++)
        up += cl->nodes[i].state == NODE_UP;
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        unserved += !cl->nodes || cl->map.owner[s] == CLUSTER_NO_OWNER ||
                    cl->nodes[cl->map.owner[s]].state != NODE_UP;
    metrics.redis_cluster_nodes_up = up;
    metrics.redis_cluster_slots_unserved = unserved;
}

/* Reads the map again in ms, unless a read is already due. */
static void refresh_in(struct rcluster *cl, unsigned ms)
{
    if (evtimer_pending(cl->refresh_timer, NULL))
        return;
    struct timeval tv = {ms / 1000, (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(cl->refresh_timer, &tv);
}

/* Node i's connections are freed (what is in flight on them fails: its
 * chats are refused, its joins answered unavailable) and its rooms'
 * channels and canary wait for it, or for the primary that replaces it. */
static void node_drop(struct rbus *rb, size_t i)
{
    struct rcluster *cl = rb->cluster;
    struct cnode *n = &cl->nodes[i];
    /* DOWN first: what fails now must not be sent to it again. */
    n->state = NODE_DOWN;
    redis_free_ctx(&n->cmd, &n->cmd_ssl);
    redis_free_ctx(&n->sub, &n->sub_ssl);
    canary_node_down(rb, i);
    channels_node_down(rb, i);
    count_nodes(cl);
}

/* The seed connection's own server: losing it restarts the link, which
 * reads the map through it. */
static bool is_seed(const struct rbus *rb, const struct cluster_node *at)
{
    return at->port == rb->port && strcmp(at->host, rb->cluster->seed_host) == 0;
}

bool cluster_node_failed(struct rbus *rb, size_t i, const char *why)
{
    struct rcluster *cl = rb->cluster;
    if (!ready(rb) || !cl->nodes || i >= cl->map.n_nodes || is_seed(rb, &cl->map.nodes[i]))
        return false;
    struct cnode *n = &cl->nodes[i];
    const struct cluster_node *at = &cl->map.nodes[i];
    if (n->state == NODE_UP)
        log_warn("redis: lost node %s:%d (%s): the rooms of its %u slots are unavailable until "
                 "the cluster names a primary for them; the other primaries' rooms go on",
                 at->host, at->port, why, slots_of(cl, i));
    else if (n->state == NODE_OPENING && !n->retrying)
        log_info("redis: node %s:%d not back yet (%s); trying again while the slot map names it",
                 at->host, at->port, why);
    n->retrying = true;
    if (n->state != NODE_DOWN)
        node_drop(rb, i);
    refresh_in(cl, NODE_RETRY_MS);
    return true;
}

/* Node i is UP again, or in a lost one's place: this gateway's presence
 * there is registered anew, its rooms are subscribed there and replayed,
 * its canary starts. */
static void node_back(struct rbus *rb, size_t i)
{
    struct rcluster *cl = rb->cluster;
    const struct cluster_node *at = &cl->map.nodes[i];
    cl->nodes[i].retrying = false;
    log_info("redis: node %s:%d is up: serving the rooms of its %u slots", at->host, at->port,
             slots_of(cl, i));
    cluster_reregister_node(rb, i);
    channels_link_up(rb);
    canary_map_changed(rb);
}

/* One of node n's opening steps is done: at the last it is UP. */
static void node_step(struct rbus *rb, struct cnode *n)
{
    if (n->state != NODE_OPENING || --n->steps)
        return;
    n->state = NODE_UP;
    n->beats_unanswered = 0;
    count_nodes(rb->cluster);
    if (ready(rb))
        node_back(rb, (size_t)(n - rb->cluster->nodes));
    else
        rb->link_step(rb, NULL);
}

/* The index in cl's nodes of each of next's primaries: one connected to
 * already, or the place of one that next names for no slot (lost, or
 * serving nothing now), whose connections are dropped; false (why said)
 * when there are more new primaries than such places. */
static bool place_nodes(struct rbus *rb, const struct cluster_map *next, long *at, char *why,
                        size_t len)
{
    struct rcluster *cl = rb->cluster;
    bool *named = calloc(cl->map.n_nodes, sizeof(*named));
    if (!named) {
        snprintf(why, len, "out of memory reading the slot map");
        return false;
    }
    bool *serves = calloc(next->n_nodes, sizeof(*serves));
    if (!serves) {
        free(named);
        snprintf(why, len, "out of memory reading the slot map");
        return false;
    }
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        if (next->owner[s] != CLUSTER_NO_OWNER)
            serves[next->owner[s]] = true;
    for (size_t k = 0; k < next->n_nodes; k++) {
        at[k] = serves[k] ? node_index(cl, &next->nodes[k]) : -1;
        if (at[k] >= 0)
            named[at[k]] = true;
    }
    bool ok = true;
    for (size_t k = 0; k < next->n_nodes && ok; k++) {
        if (!serves[k] || at[k] >= 0)
            continue;
        size_t j = 0;
        while (j < cl->map.n_nodes && named[j])
            j++;
        if (j == cl->map.n_nodes) {
            snprintf(why, len, "the cluster's primaries changed (now %s:%d)", next->nodes[k].host,
                     next->nodes[k].port);
            ok = false;
            break;
        }
        struct cnode *n = &cl->nodes[j];
        if (n->state != NODE_DOWN)
            node_drop(rb, j);
        log_info("redis: node %s:%d takes the place of %s:%d", next->nodes[k].host,
                 next->nodes[k].port, cl->map.nodes[j].host, cl->map.nodes[j].port);
        cl->map.nodes[j] = next->nodes[k];
        n->retrying = true; /* connected to below */
        named[j] = true;
        at[k] = (long)j;
    }
    free(serves);
    free(named);
    return ok;
}

/* A map read again while the link is up: the owners as indexes of the
 * nodes connected to, lost nodes connected to again when it names them,
 * new primaries in the places of nodes it names for no slot. */
static void map_read(struct rbus *rb, const redisReply *r)
{
    struct rcluster *cl = rb->cluster;
    char why[400];
    struct cluster_map *next = malloc(sizeof(*next));
    if (!next) {
        log_error("redis: out of memory reading the cluster's slot map");
        return;
    }
    cluster_map_init(next);
    long *at = NULL;
    if (!cluster_map_parse(next, r, cl->seed_host, why, sizeof(why))) {
        cluster_map_free(next);
        free(next);
        count_nodes(cl);
        /* Slots waiting for a primary cannot get one without the map. */
        if (metrics.redis_cluster_slots_unserved) {
            rb->link_step(rb, why);
            return;
        }
        log_error("redis: %s", why);
        channels_link_up(rb); /* the subscriptions a move ended */
        canary_map_changed(rb);
        return;
    }
    if (!(at = calloc(next->n_nodes ? next->n_nodes : 1, sizeof(*at))) ||
        !place_nodes(rb, next, at, why, sizeof(why))) {
        if (!at)
            snprintf(why, sizeof(why), "out of memory reading the slot map");
        free(at);
        cluster_map_free(next);
        free(next);
        rb->link_step(rb, why); /* reconnects: closes the seed's connection */
        return;
    }
    for (size_t s = 0; s < CLUSTER_SLOTS; s++)
        cl->map.owner[s] =
            next->owner[s] == CLUSTER_NO_OWNER ? CLUSTER_NO_OWNER : (uint16_t)at[next->owner[s]];
    free(at);
    cluster_map_free(next);
    free(next);
    /* A lost node the map names is connected to again. */
    for (size_t i = 0; i < cl->map.n_nodes; i++) {
        if (cl->nodes[i].state != NODE_DOWN || !slots_of(cl, i))
            continue;
        if (!node_open(rb, i, why, sizeof(why)) && !cluster_node_failed(rb, i, why)) {
            rb->link_step(rb, why);
            return;
        }
    }
    count_nodes(cl);
    /* Before the channels: their subscriptions that cannot go now ask for
     * a read of their own, which this one is. */
    if (metrics.redis_cluster_slots_unserved)
        refresh_in(cl, NODE_RETRY_MS);
    channels_link_up(rb); /* the subscriptions a move ended */
    canary_map_changed(rb);
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
    map_read(rb, r);
}

void cluster_link_open(struct rbus *rb)
{
    char key[KEY_MAX];
    rb->cluster->global_slot = cluster_key_slot(key, make_key(key, rb, "gateways", "", 0));
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
    if (cl->nodes)
        refresh_in(cl, REFRESH_DELAY_MS);
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

/* The PING behind the scripts: the node answers. */
static void on_node_pinged(redisAsyncContext *c, void *r, void *privdata)
{
    (void)privdata;
    struct rbus *rb = c->data;
    struct cnode *n = rb && r ? node_of(rb->cluster, c) : NULL;
    if (n && n->cmd == c)
        node_step(rb, n);
}

void cluster_node_open(struct rbus *rb, redisAsyncContext *c)
{
    struct cnode *n = node_of(rb->cluster, c);
    if (!n)
        return;
    if (c == n->cmd) {
        scripts_load(rb, c);
        redisAsyncCommand(c, on_node_pinged, NULL, "PING");
    }
    node_step(rb, n);
}

bool cluster_ready(const struct rbus *rb)
{
    const struct rcluster *cl = rb->cluster;
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++)
        if (cl->nodes[i].state != NODE_UP)
            return false;
    return cl->nodes != NULL;
}

long cluster_forget(struct rbus *rb, const redisAsyncContext *c, char *what, size_t len)
{
    struct rcluster *cl = rb->cluster;
    struct cnode *n = cl ? node_of(cl, c) : NULL;
    if (!n)
        return -1;
    const struct cluster_node *at = &cl->map.nodes[n - cl->nodes];
    snprintf(what, len, "node %s:%d's %s", at->host, at->port,
             n->cmd == c ? "command" : "sharded-subscriber");
    /* hiredis frees it after the callback; its SSL goes with it. */
    if (n->cmd == c)
        n->cmd = NULL, n->cmd_ssl = NULL;
    else
        n->sub = NULL, n->sub_ssl = NULL;
    return n - cl->nodes;
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
    cl->refreshing = false;
    cl->global_beats_lost = 0;
    evtimer_del(cl->refresh_timer);
    cluster_map_free(&cl->map);
    count_nodes(cl);
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
        if (n->state == NODE_DOWN)
            continue;
        if (n->beats_unanswered >= missed_max) {
            snprintf(silent, len, "node %s:%d %s for %u heartbeats", cl->map.nodes[i].host,
                     cl->map.nodes[i].port,
                     n->state == NODE_UP ? "answered nothing" : "did not finish connecting",
                     missed_max);
            if (!cluster_node_failed(rb, i, silent))
                return false;
            continue;
        }
        /* A beat unanswered: the map may already name its replica, which
         * then takes its place (map_read) without waiting for the last. */
        if (n->state == NODE_UP && n->beats_unanswered)
            cluster_refresh(rb);
        if (n->state == NODE_OPENING)
            n->beats_unanswered++;
        else if (redisAsyncCommand(n->cmd, on_beat, NULL, "PING") == REDIS_OK)
            n->beats_unanswered++;
    }
    /* The gateways' shared keys (counts, heartbeats, room sets) wait for
     * their node as long as a heartbeat may; then the link starts again
     * from the seeds. */
    uint16_t g = cl->nodes ? cl->map.owner[cl->global_slot] : CLUSTER_NO_OWNER;
    if (cl->nodes && (g == CLUSTER_NO_OWNER || cl->nodes[g].state != NODE_UP)) {
        if (++cl->global_beats_lost > missed_max) {
            snprintf(silent, len,
                     "the node of the gateways' shared keys was lost for %u heartbeats",
                     missed_max);
            return false;
        }
    } else {
        cl->global_beats_lost = 0;
    }
    return true;
}

unsigned cluster_ping_all(struct rbus *rb, redisCallbackFn *fn)
{
    struct rcluster *cl = rb->cluster;
    unsigned sent = 0;
    for (size_t i = 0; cl->nodes && i < cl->map.n_nodes; i++)
        sent += cl->nodes[i].state == NODE_UP &&
                redisAsyncCommand(cl->nodes[i].cmd, fn, NULL, "PING") == REDIS_OK;
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
    if (!cl || !cl->nodes || i >= cl->map.n_nodes || cl->nodes[i].state != NODE_UP)
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
    if (!cl->nodes || cl->map.owner[slot] == CLUSTER_NO_OWNER ||
        cl->nodes[cl->map.owner[slot]].state != NODE_UP)
        return NULL;
    return &cl->nodes[cl->map.owner[slot]];
}

long cluster_node_of(const struct rbus *rb, const char *key, size_t len)
{
    const struct rcluster *cl = rb->cluster;
    uint16_t i = cl && cl->nodes ? cl->map.owner[cluster_key_slot(key, len)] : CLUSTER_NO_OWNER;
    return i == CLUSTER_NO_OWNER ? -1 : (long)i;
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
    if (q->redirects++ >= REDIRECTS_MAX || i < 0 || !cl->nodes || cl->nodes[i].state != NODE_UP)
        return false; /* fails as it is; an unknown node is for the refresh */
    struct cnode *n = &cl->nodes[i];
    if (!d.ask)
        cl->map.owner[d.slot] = (uint16_t)i;
    else if (redisAsyncCommand(n->cmd, NULL, NULL, "ASKING") != REDIS_OK)
        return false;
    return send_request_to(rb, q, n->cmd) == 0;
}
