-- Takes one connection of a name out of a room's presence.
--
-- KEYS: presence hash, names hash. ARGV: "<gateway>\t<name>", name. A field
-- that was not there (withdrawn by a reset meanwhile) counts for no name.
--#include drop_name.lua
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if c >= 0 then drop_name(KEYS[2], ARGV[2], 1) end
return 0
