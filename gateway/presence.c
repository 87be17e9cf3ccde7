#include "presence.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void presence_init(struct presence *p)
{
    strmap_init(&p->rooms);
}

void presence_free(struct presence *p)
{
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(&p->rooms, &i, &s);) {
        strmap_free(s->value);
        free(s->value);
    }
    strmap_free(&p->rooms);
}

long presence_add(struct presence *p, const char *room, size_t room_len, const char *name)
{
    struct strmap *names = strmap_get(&p->rooms, room, room_len);
    if (!names) {
        names = malloc(sizeof(*names));
        if (!names)
            return -1;
        strmap_init(names);
        if (!strmap_put(&p->rooms, room, room_len, names)) {
            free(names);
            return -1;
        }
    }
    size_t len = strlen(name);
    uintptr_t n = (uintptr_t)strmap_get(names, name, len) + 1;
    if (!strmap_put(names, name, len, (void *)n))
        return -1;
    return (long)n;
}

long presence_remove(struct presence *p, const char *room, size_t room_len, const char *name)
{
    struct strmap *names = strmap_get(&p->rooms, room, room_len);
    size_t len = strlen(name);
    uintptr_t n = names ? (uintptr_t)strmap_get(names, name, len) : 0;
    if (!n)
        return -1;
    if (--n)
        strmap_put(names, name, len, (void *)n); /* key exists: cannot fail */
    else
        strmap_del(names, name, len);
    if (!names->count) {
        strmap_del(&p->rooms, room, room_len);
        strmap_free(names);
        free(names);
    }
    return (long)n;
}

const struct strmap *presence_room(const struct presence *p, const char *room, size_t room_len)
{
    return strmap_get(&p->rooms, room, room_len);
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t presence_names(const struct presence *p, const char *room, size_t room_len,
                      const char ***names)
{
    *names = NULL;
    const struct strmap *m = presence_room(p, room, room_len);
    if (!m || !m->count)
        return 0;
    const char **out = malloc(sizeof(*out) * m->count);
    if (!out)
        return 0;
    size_t n = 0;
    const struct strmap_slot *s;
    for (size_t i = 0; strmap_next(m, &i, &s);)
        out[n++] = s->key;
    qsort(out, n, sizeof(*out), cmp_names);
    *names = out;
    return n;
}
