-- Merges one gateway's coalesced announcements of a scope with what other
-- gateways hold for it, and lets them out at most once per ARGV[1] ms for
-- the whole cluster (10% early is allowed: the gateways' ticks are not in
-- step with Redis's clock). Returns {1, arrived, names, departed, names}
-- when the caller is to publish them (names tab-separated), or {0, ms}:
-- held, ask again after ms (0: nothing to say). The key expires when
-- unused, so a scope whose gateways all died leaves nothing behind.
--
-- KEYS: the scope's key. ARGV: interval in ms, arrived count, their names,
-- departed count, their names, how many names a batch keeps.
--#include now.lua
local key, every, keep = KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[6])
local h = redis.call('HMGET', key, 't', 'a', 'an', 'd', 'dn')
local function merge(list, more)
  local seen, out = {}, {}
  for n in string.gmatch(list .. '\t' .. more, '[^\t]+') do
    if not seen[n] and #out < keep then seen[n] = true; out[#out + 1] = n end
  end
  return table.concat(out, '\t')
end
local a = (tonumber(h[2]) or 0) + tonumber(ARGV[2])
local d = (tonumber(h[4]) or 0) + tonumber(ARGV[4])
if a + d == 0 then return {0, 0} end
local an, dn = merge(h[3] or '', ARGV[3]), merge(h[5] or '', ARGV[5])
local now = now_ms()
local waited = now - (tonumber(h[1]) or 0)
if waited < every * 0.9 then
  redis.call('HSET', key, 'a', a, 'an', an, 'd', d, 'dn', dn)
  redis.call('PEXPIRE', key, every * 30)
  return {0, every - waited}
end
-- Emptied but for the time, never deleted: while a resharding moves the
-- key's slot, a key this script's node no longer holds is not its to write
-- (Redis refuses the write and the script stops half done).
redis.call('HSET', key, 't', now)
redis.call('HDEL', key, 'a', 'an', 'd', 'dn')
redis.call('PEXPIRE', key, every * 2)
return {1, a, an, d, dn}
