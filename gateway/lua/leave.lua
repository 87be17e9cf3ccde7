-- Takes one connection of a name out of a room's presence.
--
-- KEYS: presence hash, names hash. ARGV: "<gateway>\t<name>", name, room,
-- events stream or '' and its cap (event.lua). A field that was not there
-- (withdrawn by a reset meanwhile) counts for no name and no event.
--#include drop_name.lua
--#include event.lua
local c = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
if c <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
if c >= 0 then
  drop_name(KEYS[2], ARGV[2], 1)
  event(ARGV[4], ARGV[5], 'type', 'leave', 'room', ARGV[3], 'user', ARGV[2], 'gateway',
    string.match(ARGV[1], '^(.*)\t'))
end
return 0
