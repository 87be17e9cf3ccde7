-- Registers (or withdraws) this gateway's client count and publishes the
-- cluster total, in one step so that totals are published in order.
--
-- KEYS: gateways (zset of heartbeat deadlines), counts hash, last published
-- "<total>:<ms>". ARGV: gateway id, its count, its TTL in ms, the broadcast
-- channel, the publish interval in ms, "withdraw", "connect" or "beat", and
-- the four pieces of the client_count frame (proto_client_count_parts) that
-- the total, the total again and the time go between.
-- Returns {the milliseconds until a total held back may go out (0 when
-- nothing is held back), whether the gateway must register its presence:
-- on connect, and when its heartbeat had lapsed, since the others may have
-- cleaned up after it}. The gateway is alive before it registers, so that
-- nobody reaps what it registers.
--#include now.lua
local now, register = now_ms(), 0
if ARGV[6] == 'withdraw' then
  redis.call('ZREM', KEYS[1], ARGV[1]); redis.call('HDEL', KEYS[2], ARGV[1])
else
  local prev = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if ARGV[6] == 'connect' or not prev or tonumber(prev) <= now then register = 1 end
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
local total = 0
local gws = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
for i = 1, #gws, 2 do
  if tonumber(gws[i + 1]) > now then
    total = total + (tonumber(redis.call('HGET', KEYS[2], gws[i])) or 0)
  end
end
-- Published when the total changed, at most once per ARGV[5] ms for the
-- whole cluster: in a connection storm every gateway calls this each
-- second, and each publish is a frame to every client. The gateway whose
-- change is held back calls again when the interval ends.
local prev_total, prev_ms = string.match(redis.call('GET', KEYS[3]) or '', '^(%d+):(%d+)$')
if tostring(total) == prev_total then return {0, register} end
local waited, every = now - (tonumber(prev_ms) or 0), tonumber(ARGV[5])
if waited < every then return {every - waited, register} end
redis.call('SET', KEYS[3], total .. ':' .. now)
redis.call('PUBLISH', ARGV[4], ARGV[7] .. total .. ARGV[8] .. total .. ARGV[9] .. now .. ARGV[10])
return {0, register}
