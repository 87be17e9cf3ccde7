#ifndef CHATBENCH_LAYOUT_H
#define CHATBENCH_LAYOUT_H

#include <stdint.h>

/* Where connection i goes. Every process computes the same layout from the
 * options, so none has to tell another who is where. Members of a room are
 * spread over all gateways (so a room's messages cross Redis), publishers
 * are the first connections and so spread over the rooms. */

struct layout {
    uint32_t conns, rooms, publishers, gateways, workers, source_ips;
};

static inline uint32_t layout_room(const struct layout *l, uint32_t i)
{
    return i % l->rooms;
}

static inline uint32_t layout_gateway(const struct layout *l, uint32_t i)
{
    return (i / l->rooms + i % l->rooms) % l->gateways;
}

static inline uint32_t layout_worker(const struct layout *l, uint32_t i)
{
    return i % l->workers;
}

static inline int layout_is_publisher(const struct layout *l, uint32_t i)
{
    return i < l->publishers;
}

/* Publisher i's number among the publishers of its room. */
static inline uint32_t layout_pub_slot(const struct layout *l, uint32_t i)
{
    return i / l->rooms;
}

static inline uint32_t layout_room_members(const struct layout *l, uint32_t r)
{
    return l->conns / l->rooms + (r < l->conns % l->rooms);
}

static inline uint32_t layout_room_publishers(const struct layout *l, uint32_t r)
{
    return l->publishers / l->rooms + (r < l->publishers % l->rooms);
}

/* Last octet of the 127.0.0.x source address of connection i. */
static inline uint32_t layout_source_octet(const struct layout *l, uint32_t i)
{
    return 1 + (i / l->workers) % l->source_ips;
}

#endif
