-- Cleans up after a gateway whose heartbeat lapsed (it died without
-- withdrawing): its presence entries, its set of rooms, its count. At most
-- ARGV[3] work per call: rooms plus presence entries looked at, so that no
-- call holds Redis for long; a dead gateway with more is cleaned up over
-- several calls. Returns {1 when there may be more to do, the id of a
-- gateway whose cleanup this call finished or ''}. Every live gateway runs
-- it; they share the work, each room once (SPOP).
--
-- KEYS: gateways (zset of heartbeat deadlines), counts hash. ARGV: rooms set
-- prefix, presence key prefix, budget, names key prefix.
--#include now.lua
--#include forget.lua
local now, budget = now_ms(), tonumber(ARGV[3])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #dead == 0 then return {0, ''} end
local gw = dead[1]
local set = ARGV[1] .. gw
while budget > 0 do
  local room = redis.call('SPOP', set)
  if not room then
    redis.call('ZREM', KEYS[1], gw); redis.call('HDEL', KEYS[2], gw)
    return {1, gw}
  end
  budget = budget - 1 - forget(ARGV[2] .. room, ARGV[4] .. room, gw)
end
return {1, ''}
