#include "strmap.h"

#include <stdlib.h>
#include <string.h>

/* FNV-1a: room and user names are short, and the input is bounded by the
 * protocol's name limits, so a simple hash is enough. */
static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void strmap_init(struct strmap *m)
{
    m->slots = NULL;
    m->cap = 0;
    m->count = 0;
}

void strmap_free(struct strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].key);
    free(m->slots);
    strmap_init(m);
}

static size_t find_slot(const struct strmap *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key) {
        const struct strmap_slot *s = &m->slots[i];
        if (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

void *strmap_get(const struct strmap *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    size_t i = find_slot(m, key, len, hash_bytes(key, len));
    return m->slots[i].key ? m->slots[i].value : NULL;
}

static int grow(struct strmap *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    struct strmap_slot *ns = calloc(ncap, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key)
            continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    return 0;
}

const char *strmap_put(struct strmap *m, const char *key, size_t len, void *value)
{
    uint64_t h = hash_bytes(key, len);
    if (m->cap) {
        struct strmap_slot *s = &m->slots[find_slot(m, key, len, h)];
        if (s->key) { /* a replacement never allocates */
            s->value = value;
            return s->key;
        }
    }
    if ((m->count + 1) * 4 > m->cap * 3 && grow(m) < 0)
        return NULL;
    struct strmap_slot *s = &m->slots[find_slot(m, key, len, h)];
    char *copy = malloc(len + 1);
    if (!copy)
        return NULL;
    memcpy(copy, key, len);
    copy[len] = '\0';
    *s = (struct strmap_slot){.key = copy, .len = len, .hash = h, .value = value};
    m->count++;
    return copy;
}

void *strmap_del(struct strmap *m, const char *key, size_t len)
{
    if (!m->count)
        return NULL;
    size_t mask = m->cap - 1;
    size_t i = find_slot(m, key, len, hash_bytes(key, len));
    if (!m->slots[i].key)
        return NULL;
    void *value = m->slots[i].value;
    free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->count--;
    /* Backward-shift: move later entries of the probe run into the hole so
     * that lookups never stop early at it. */
    size_t hole = i;
    for (size_t j = (i + 1) & mask; m->slots[j].key; j = (j + 1) & mask) {
        size_t home = m->slots[j].hash & mask;
        size_t dist_j = (j - home) & mask;
        size_t dist_hole = (hole - home) & mask;
        if (dist_hole < dist_j) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    return value;
}

int strmap_next(const struct strmap *m, size_t *pos, const struct strmap_slot **slot)
{
    while (*pos < m->cap) {
        const struct strmap_slot *s = &m->slots[(*pos)++];
        if (s->key) {
            *slot = s;
            return 1;
        }
    }
    return 0;
}
