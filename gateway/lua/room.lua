-- Joins a room, re-joins it, lists its presence or replays its stream
-- after a resubscribe, in one step so that the history read and the
-- membership agree.
--
-- KEYS: stream, presence hash, gateways (zset of heartbeat deadlines), this
-- gateway's set of rooms, names hash (see drop_name.lua). ARGV: mode
-- ('join', 'rejoin', 'presence' or 'fill'), "<gateway>\t<name>", since (''
-- for all kept), the room, history kept, events stream or '' and its cap
-- (event.lua: a join is one). Returns the sorted names for
-- 'presence', else {members, truncated, newest id, entries after since}.
--#include now.lua
--#include drop_name.lua
--#include event.lua

-- Lists the distinct live names of a presence hash, forgetting the entries
-- of gateways whose heartbeat lapsed. Fields are "<gateway>\t<name>".
local function names(hash, nkey, zset)
  local now, alive, seen, out = now_ms(), {}, {}, {}
  local all = redis.call('HGETALL', hash)
  for i = 1, #all, 2 do
    local f = all[i]
    local gw, name = string.match(f, '^(.*)\t([^\t]*)$')
    if gw then
      local ok = alive[gw]
      if ok == nil then
        local s = redis.call('ZSCORE', zset, gw)
        ok = s ~= false and tonumber(s) > now
        alive[gw] = ok
      end
      if ok then
        if not seen[name] then seen[name] = true; out[#out + 1] = name end
      else
        redis.call('HDEL', hash, f)
        drop_name(nkey, name, tonumber(all[i + 1]))
      end
    end
  end
  table.sort(out)
  return out
end
-- Message ids ("<ms>-<seq>") compared as numbers, not as strings.
local function idless(x, y)
  local a1, b1 = string.match(x, '^(%d+)-(%d+)$')
  local a2, b2 = string.match(y, '^(%d+)-(%d+)$')
  a1, b1, a2, b2 = tonumber(a1), tonumber(b1), tonumber(a2), tonumber(b2)
  return a1 < a2 or (a1 == a2 and b1 < b2)
end
local mode = ARGV[1]
if mode == 'presence' then return names(KEYS[2], KEYS[5], KEYS[3]) end
if mode == 'join' then
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  redis.call('HINCRBY', KEYS[5], string.match(ARGV[2], '\t(.*)$'), 1)
  redis.call('SADD', KEYS[4], ARGV[4])
  local gw, name = string.match(ARGV[2], '^(.*)\t(.*)$')
  event(ARGV[6], ARGV[7], 'type', 'join', 'room', ARGV[4], 'user', name, 'gateway', gw)
end
-- Names of a gateway that died count until the survivors reap it (within
-- about 20 s); presence requests leave them out.
local members = 0
if mode ~= 'fill' then members = redis.call('HLEN', KEYS[5]) end
-- The stream keeps one entry more than the history: the newest that
-- clients can no longer get. A since before it means messages are gone.
local since, keep = ARGV[3], tonumber(ARGV[5])
local entries
if since == '' then entries = redis.call('XRANGE', KEYS[1], '-', '+')
else entries = redis.call('XRANGE', KEYS[1], '(' .. since, '+') end
while #entries > keep do table.remove(entries, 1) end
local truncated, last = 0, '0-0'
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #newest > 0 then last = newest[1][1] end
if since ~= '' and redis.call('XLEN', KEYS[1]) > keep then
  local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if idless(since, oldest[1][1]) then truncated = 1 end
end
return {members, truncated, last, entries}
