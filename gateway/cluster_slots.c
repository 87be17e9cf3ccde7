/* Redis Cluster's slots: see cluster_slots.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_slots.h"
#include "config.h"

uint16_t cluster_crc16(const char *buf, size_t len)
{
    /* Bitwise rather than Redis's 512-byte table: keys are short, and the
     * polynomial is then the only constant to get right. */
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((unsigned char)buf[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

unsigned cluster_key_slot(const char *key, size_t len)
{
    const char *open = memchr(key, '{', len);
    if (open) {
        const char *tag = open + 1;
        const char *close = memchr(tag, '}', len - (size_t)(tag - key));
        if (close && close > tag)
            return cluster_crc16(tag, (size_t)(close - tag)) & (CLUSTER_SLOTS - 1);
    }
    return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}

void cluster_room_tag(char *out, const char *room, size_t len)
{
    snprintf(out, CLUSTER_TAG_LEN + 1, "{%04x}", cluster_crc16(room, len));
}

void cluster_map_init(struct cluster_map *m)
{
    m->nodes = NULL;
    m->n_nodes = 0;
    for (size_t i = 0; i < CLUSTER_SLOTS; i++)
        m->owner[i] = CLUSTER_NO_OWNER;
}

void cluster_map_free(struct cluster_map *m)
{
    free(m->nodes);
    cluster_map_init(m);
}

const struct cluster_node *cluster_map_owner(const struct cluster_map *m, unsigned slot)
{
    if (slot >= CLUSTER_SLOTS || m->owner[slot] == CLUSTER_NO_OWNER)
        return NULL;
    return &m->nodes[m->owner[slot]];
}

size_t cluster_canary_tag(char *out, unsigned k)
{
    return (size_t)snprintf(out, CLUSTER_CANARY_TAG_MAX, "{c%u}", k % CLUSTER_CANARY_TAGS);
}

bool cluster_canary_find(const struct cluster_map *m, size_t node, unsigned *k)
{
    /* A node without slots would cost the whole list of candidates. */
    size_t s = 0;
    while (s < CLUSTER_SLOTS && m->owner[s] != node)
        s++;
    if (s == CLUSTER_SLOTS)
        return false;
    char tag[CLUSTER_CANARY_TAG_MAX];
    for (unsigned i = 0; i < CLUSTER_CANARY_TAGS; i++) {
        unsigned c = (*k + i) % CLUSTER_CANARY_TAGS;
        if (m->owner[cluster_key_slot(tag, cluster_canary_tag(tag, c))] == node) {
            *k = c;
            return true;
        }
    }
    return false; /* not reached: the candidates reach every slot */
}

/* One node of a range, [host, port, id, ...], into n. */
static bool parse_node(const redisReply *r, const char *asked_host, struct cluster_node *n)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements < 2 ||
        r->element[0]->type != REDIS_REPLY_STRING || r->element[1]->type != REDIS_REPLY_INTEGER ||
        r->element[1]->integer < 1 || r->element[1]->integer > 65535)
        return false;
    const redisReply *h = r->element[0];
    /* "" and "?": the node does not say its address; it is on the host
     * that was asked (Redis's cluster-announce-hostname rules). */
    bool unknown = h->len == 0 || (h->len == 1 && h->str[0] == '?');
    const char *host = unknown ? asked_host : h->str;
    size_t hl = unknown ? strlen(asked_host) : h->len;
    if (hl >= sizeof(n->host) || memchr(host, '\0', hl))
        return false;
    memcpy(n->host, host, hl);
    n->host[hl] = '\0';
    n->port = (int)r->element[1]->integer;
    return true;
}

/* The index of n in the node list, added when new; -1 when out of memory. */
static long node_index(struct cluster_node **nodes, size_t *count, const struct cluster_node *n)
{
    for (size_t i = 0; i < *count; i++)
        if ((*nodes)[i].port == n->port && strcmp((*nodes)[i].host, n->host) == 0)
            return (long)i;
    struct cluster_node *grown = realloc(*nodes, (*count + 1) * sizeof(**nodes));
    if (!grown)
        return -1;
    *nodes = grown;
    grown[*count] = *n;
    return (long)(*count)++;
}

bool cluster_map_parse(struct cluster_map *m, const redisReply *r, const char *asked_host,
                       char *why, size_t whylen)
{
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        snprintf(why, whylen, "CLUSTER SLOTS: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        return false;
    }
    struct cluster_map *next = malloc(sizeof(*next));
    if (!next) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    cluster_map_init(next);
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        struct cluster_node n;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 ||
            e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[0]->integer < 0 ||
            e->element[0]->integer > e->element[1]->integer ||
            e->element[1]->integer >= CLUSTER_SLOTS || !parse_node(e->element[2], asked_host, &n)) {
            snprintf(why, whylen, "CLUSTER SLOTS: range %zu is not [first, last, [host, port]]", i);
            goto fail;
        }
        long idx = node_index(&next->nodes, &next->n_nodes, &n);
        if (idx < 0) {
            snprintf(why, whylen, "out of memory");
            goto fail;
        }
        for (long long s = e->element[0]->integer; s <= e->element[1]->integer; s++)
            next->owner[s] = (uint16_t)idx;
    }
    cluster_map_free(m);
    *m = *next;
    free(next);
    return true;
fail:
    cluster_map_free(next);
    free(next);
    return false;
}

bool cluster_redirect_parse(const char *err, size_t len, struct cluster_redirect *out)
{
    char buf[16 + CLUSTER_HOST_MAX], kind[8];
    unsigned slot;
    int end = 0;
    if (len >= sizeof(buf))
        return false;
    memcpy(buf, err, len);
    buf[len] = '\0';
    if (sscanf(buf, "%7s %u %n", kind, &slot, &end) != 2 || !end || slot >= CLUSTER_SLOTS ||
        (strcmp(kind, "MOVED") != 0 && strcmp(kind, "ASK") != 0) ||
        !config_parse_hostport(buf + end, out->to.host, sizeof(out->to.host), &out->to.port) ||
        out->to.port == 0)
        return false;
    out->ask = kind[0] == 'A';
    out->slot = slot;
    return true;
}
