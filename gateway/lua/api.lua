-- Read-only views of the cluster for the server API. 'gateways': every
-- gateway of the heartbeat zset, {id, 1 when its heartbeat is current,
-- its client count}. 'rooms': the rooms that live gateways have members
-- in, {room, distinct names}, at most ARGV[4] of them.
--
-- Under Redis Cluster (names key prefix '') 'rooms' answers the names of
-- at most ARGV[4] rooms of live gateways' sets, without counting them: the
-- sets share the KEYS' hash tag, but each room's names hash is on the node
-- of the room's own slot, where the gateway counts it (room_members.lua).
-- A room stays in a gateway's set only while it has members there.
--
-- KEYS: gateways (zset of heartbeat deadlines), counts hash. ARGV: mode,
-- gateway room set prefix, names key prefix (drop_name.lua) or '', most
-- rooms.
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
local seen, most = {}, tonumber(ARGV[4])
for i = 1, #gws, 2 do
  if tonumber(gws[i + 1]) > now then
    for _, room in ipairs(redis.call('SMEMBERS', ARGV[2] .. gws[i])) do
      if not seen[room] and #out < most then
        seen[room] = true
        if ARGV[3] == '' then
          out[#out + 1] = room
        else
          local n = redis.call('HLEN', ARGV[3] .. room)
          if n > 0 then out[#out + 1] = {room, n} end
        end
      end
    end
  end
end
return out
