-- Withdraws every presence entry this gateway id left behind (a previous
-- life of the process, or the connection before an outage).
--
-- KEYS: this gateway's set of rooms. ARGV: gateway id, presence key prefix,
-- names key prefix.
--#include forget.lua
local rooms = redis.call('SMEMBERS', KEYS[1])
for _, room in ipairs(rooms) do
  forget(ARGV[2] .. room, ARGV[3] .. room, ARGV[1])
end
redis.call('DEL', KEYS[1])
return #rooms
