-- reap.lua's first half under Redis Cluster: finds a gateway whose
-- heartbeat lapsed and takes up to ARGV[2] rooms out of its set, for the
-- caller to withdraw the gateway from each on the room's own node
-- (forget_room.lua). When the set is empty the gateway is forgotten here.
-- Returns {} (nobody to reap), {gateway, 1} (its cleanup is finished) or
-- {gateway, 0, room...}. Every live gateway runs it; SPOP shares the work.
--
-- KEYS: gateways (zset of heartbeat deadlines), counts hash. ARGV: rooms
-- set prefix (the sets share the KEYS' hash tag), budget.
--#include now.lua
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms(), 'LIMIT', 0, 1)
if #dead == 0 then return {} end
local gw = dead[1]
local rooms = redis.call('SPOP', ARGV[1] .. gw, tonumber(ARGV[2]))
if #rooms == 0 then
  redis.call('ZREM', KEYS[1], gw); redis.call('HDEL', KEYS[2], gw)
  return {gw, 1}
end
local out = {gw, 0}
for i = 1, #rooms do out[#out + 1] = rooms[i] end
return out
