-- Joins a room, re-joins it, lists its presence or replays its stream
-- after a resubscribe, in one step so that the history read and the
-- membership agree.
--
-- KEYS: stream, presence hash, gateways (zset of heartbeat deadlines), this
-- gateway's set of rooms, names hash (see drop_name.lua). ARGV: mode
-- ('join', 'rejoin', 'presence' or 'fill'), "<gateway>\t<name>", since (''
-- for all kept), the room, history kept, '1' under Redis Cluster, events
-- stream or '' and its cap (event.lua: a join is one). Returns the sorted
-- names for 'presence', else {members, truncated (0, 1 or 2: see below),
-- newest id, entries after since}.
--
-- Under Redis Cluster the gateways zset and the room sets are on another
-- node than the room: KEYS[3] and KEYS[4] are then the stream's key again,
-- not used; the gateway adds the room to its set itself, and presence
-- counts the names of a dead gateway until the survivors reap it. (The
-- event stream is not offered under Redis Cluster: config.c refuses it.)
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
      if ok == nil and ARGV[6] == '1' then ok = true end
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
  if ARGV[6] ~= '1' then redis.call('SADD', KEYS[4], ARGV[4]) end
  local gw, name = string.match(ARGV[2], '^(.*)\t(.*)$')
  event(ARGV[7], ARGV[8], 'type', 'join', 'room', ARGV[4], 'user', name, 'gateway', gw)
end
-- Names of a gateway that died count until the survivors reap it (within
-- about 20 s); presence requests leave them out.
local members = 0
if mode ~= 'fill' then members = redis.call('HLEN', KEYS[5]) end
-- Where since stands in the stream, answered as 'truncated': 0 all after
-- it is here; 1 it is older than the kept history (the stream keeps one
-- entry more than the history, the newest that clients can no longer get,
-- so a since before it means messages were trimmed); 2 it belongs to a
-- history that no longer exists. Clients only ever hold ids of real
-- entries and entries only leave from the front, so a since that is not an
-- entry although not older than the stream's first, one newer than its
-- newest, or one older than the first entry of a stream never trimmed
-- means the stream lost entries: Redis restarted empty, a failover lost
-- writes, or the room's stream expired and began again. The entries then
-- answered are those after the last entry before since (what the client
-- and this history share), whose ids may be lower than since's.
-- '0-0' is the position before any entry: never lost.
local since, keep = ARGV[3], tonumber(ARGV[5])
local truncated, last, from = 0, '0-0', since
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if #newest > 0 then last = newest[1][1] end
if since ~= '' and since ~= '0-0' then
  if #newest == 0 or idless(last, since) then
    truncated, from = 2, last
  elseif #redis.call('XRANGE', KEYS[1], since, since) == 0 then
    local before = redis.call('XREVRANGE', KEYS[1], '(' .. since, '-', 'COUNT', 1)
    if #before > 0 then truncated, from = 2, before[1][1]
    elseif redis.call('XLEN', KEYS[1]) > keep then truncated = 1
    else truncated, from = 2, '' end
  end
elseif since == '0-0' and redis.call('XLEN', KEYS[1]) > keep then
  truncated = 1
end
local entries
if from == '' then entries = redis.call('XRANGE', KEYS[1], '-', '+')
else entries = redis.call('XRANGE', KEYS[1], '(' .. from, '+') end
while #entries > keep do table.remove(entries, 1) end
return {members, truncated, last, entries}
