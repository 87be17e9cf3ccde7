/* What the pieces of the Redis bus share, and the rest of the gateway does
 * not see: it knows the Redis bus through bus.h alone. */
#ifndef GATEWAY_BUS_REDIS_INTERNAL_H
#define GATEWAY_BUS_REDIS_INTERNAL_H

/* The scripts, generated from gateway/lua/<name>.lua. */
extern const char lua_chat[], lua_room[], lua_leave[], lua_count[], lua_reset[], lua_announce[],
    lua_reap[];

#endif
