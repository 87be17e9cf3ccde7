-- Included by the scripts that need the time: Redis's clock, in
-- milliseconds, so that every gateway compares heartbeats and intervals
-- against the same clock whatever its own says.
local function now_ms() local t = redis.call('TIME') return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
