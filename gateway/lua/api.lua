-- Read-only views of the cluster for the server API. 'gateways': every
-- gateway of the heartbeat zset, {id, 1 when its heartbeat is current,
-- its client count}. 'rooms': the names of the rooms in live gateways'
-- sets, each once, at most ARGV[3] of them; the gateway then counts their
-- members where each room's keys are (room_members.lua: under Redis Cluster
-- the room sets share the KEYS' hash tag, the rooms' keys are on the nodes
-- of their own slots). A room stays in a gateway's set only while it has
-- members there.
--
-- KEYS: gateways (zset of heartbeat deadlines), counts hash. ARGV: mode,
-- gateway room set prefix, most rooms.
--#include now.lua
local now = now_ms()
local gws = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
local out = {}
if ARGV[1] == 'gateways' then
  for i = 1, #gws, 2 do
    local alive = 0
    if tonumber(gws[i + 1]) > now then alive = 1 end
    out[#out + 1] = {gws[i], alive, tonumber(redis.call('HGET', KEYS[2], gws[i])) or 0}
  end
  return out
end
local seen, most = {}, tonumber(ARGV[3])
for i = 1, #gws, 2 do
  if tonumber(gws[i + 1]) > now then
    for _, room in ipairs(redis.call('SMEMBERS', ARGV[2] .. gws[i])) do
      if not seen[room] and #out < most then
        seen[room] = true
        out[#out + 1] = room
      end
    end
  end
end
return out
