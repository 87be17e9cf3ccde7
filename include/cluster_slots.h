/* Redis Cluster's arithmetic and map, apart from any connection: the hash
 * slot of a key (CRC16 of its hash tag, as Redis computes it), the hash tag
 * that keeps a room's keys and channel on one slot, the slot map from a
 * CLUSTER SLOTS reply, and the redirections (MOVED, ASK) a node answers. */
#ifndef GATEWAY_CLUSTER_SLOTS_H
#define GATEWAY_CLUSTER_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#define CLUSTER_SLOTS 16384
/* "{xxxx}": a room's tag, without its NUL. */
#define CLUSTER_TAG_LEN 6
#define CLUSTER_HOST_MAX 256

/* CRC16-CCITT (XModem), Redis Cluster's key hash. */
uint16_t cluster_crc16(const char *buf, size_t len);
/* The slot Redis gives key: the CRC16 of what is between the first '{' and
 * the first '}' after it when that is not empty, else of the whole key. */
unsigned cluster_key_slot(const char *key, size_t len);
/* The hash tag of a room into out (CLUSTER_TAG_LEN + 1 bytes): "{" + the
 * room's CRC16 in 4 hex digits + "}". The room's name itself cannot be the
 * tag: names may hold '{' and '}', which would end or move it. Its hash
 * can: all of a room's keys and its channel, named "<kind><tag><room>",
 * share the tag's slot whatever the name holds. */
void cluster_room_tag(char *out, const char *room, size_t len);

struct cluster_node {
    char host[CLUSTER_HOST_MAX];
    int port;
};

/* Which primary serves each slot. */
struct cluster_map {
    struct cluster_node *nodes; /* the primaries, each once */
    size_t n_nodes;
    uint16_t owner[CLUSTER_SLOTS]; /* index into nodes; CLUSTER_NO_OWNER */
};
#define CLUSTER_NO_OWNER UINT16_MAX

void cluster_map_init(struct cluster_map *m);
void cluster_map_free(struct cluster_map *m);
/* Replaces m with the map of a CLUSTER SLOTS reply; a node announced with
 * no host ("" or "?") is on asked_host, the host of the node that answered.
 * On error, m is unchanged and why (whylen bytes) says what was wrong. */
bool cluster_map_parse(struct cluster_map *m, const redisReply *r, const char *asked_host,
                       char *why, size_t whylen);
/* The primary serving slot, or NULL when none does. */
const struct cluster_node *cluster_map_owner(const struct cluster_map *m, unsigned slot);

/* The hash tags of the subscription canary's channel on each primary
 * (bus_redis_canary.c): candidates "{c0}", "{c1}", ..., the first
 * CLUSTER_CANARY_TAGS of which hash to every slot (c0 to c117595 already
 * do), so a primary that serves any slot has one of them. */
#define CLUSTER_CANARY_TAGS 131072u
#define CLUSTER_CANARY_TAG_MAX 10 /* "{c131071}" and its NUL */
/* Candidate k's tag (k modulo CLUSTER_CANARY_TAGS) into out
 * (CLUSTER_CANARY_TAG_MAX bytes); returns its length. */
size_t cluster_canary_tag(char *out, unsigned k);
/* The first candidate from *k on, then from 0 (each is tried once), whose
 * slot node serves in m, into *k; false when node serves no slot. */
bool cluster_canary_find(const struct cluster_map *m, size_t node, unsigned *k);

/* "MOVED <slot> <host>:<port>" or "ASK <slot> <host>:<port>". */
struct cluster_redirect {
    bool ask; /* ASK: this one command only, after ASKING; MOVED: the map is old */
    unsigned slot;
    struct cluster_node to;
};
/* Whether err (an error reply's text) is a redirection, parsed into out. */
bool cluster_redirect_parse(const char *err, size_t len, struct cluster_redirect *out);

#endif
