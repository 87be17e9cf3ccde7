/* presence: who is in which room, as a multiset of user names per room (one
 * name may be connected several times). The in-process bus answers presence
 * from it, and the Redis bus re-registers it after a reconnect. */
#ifndef GATEWAY_PRESENCE_H
#define GATEWAY_PRESENCE_H

#include <stddef.h>

#include "strmap.h"

struct presence {
    struct strmap rooms; /* room -> struct strmap of name -> (uintptr_t) count */
};

void presence_init(struct presence *p);
void presence_free(struct presence *p);
/* Both return the name's count in the room after the change, or -1 on OOM
 * (add) or when absent (remove). */
long presence_add(struct presence *p, const char *room, size_t room_len, const char *name);
long presence_remove(struct presence *p, const char *room, size_t room_len, const char *name);
/* The distinct names in a room, sorted; *names is malloc'd (free it, not
 * the strings, which stay valid until the next change). */
size_t presence_names(const struct presence *p, const char *room, size_t room_len,
                      const char ***names);
const struct strmap *presence_room(const struct presence *p, const char *room, size_t room_len);

#endif
