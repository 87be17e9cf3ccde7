/* strmap: hash map from byte-string keys (copied) to pointers. Open
 * addressing with linear probing and backward-shift deletion, so there are
 * no tombstones and no per-entry allocation besides the key copy. */
#ifndef GATEWAY_STRMAP_H
#define GATEWAY_STRMAP_H

#include <stddef.h>
#include <stdint.h>

struct strmap_slot {
    char *key; /* NUL-terminated copy; NULL marks an empty slot */
    size_t len;
    uint64_t hash;
    void *value;
};

struct strmap {
    struct strmap_slot *slots;
    size_t cap; /* power of two, or 0 before the first insert */
    size_t count;
};

void strmap_init(struct strmap *m);
/* Frees the slots and the key copies, not the values. */
void strmap_free(struct strmap *m);
void *strmap_get(const struct strmap *m, const char *key, size_t len);
/* Returns the stored key copy (stable until removal), or NULL on OOM.
 * Replaces the value if the key exists. */
const char *strmap_put(struct strmap *m, const char *key, size_t len, void *value);
/* Returns the removed value, or NULL if absent. */
void *strmap_del(struct strmap *m, const char *key, size_t len);

/* Iteration: for (size_t i = 0; strmap_next(m, &i, &slot);) */
int strmap_next(const struct strmap *m, size_t *pos, const struct strmap_slot **slot);

#endif
