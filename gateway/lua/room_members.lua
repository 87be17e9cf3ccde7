-- The server API's rooms listing, its second step (api.lua names the
-- rooms): the distinct names of each room whose names key (drop_name.lua)
-- is given, in order. Under Redis Cluster each node is sent the keys of
-- the listed rooms whose slots it serves. They are ARGV, not KEYS: declared
-- keys must share one slot. A script without flags (no '#!lua' line) may
-- read keys of every slot of its own node, on Redis 6 as on 7; a key of a
-- slot the node does not serve (it moved) fails the call rather than
-- reading as empty.
local out = {}
for i = 1, #ARGV do out[i] = redis.call('HLEN', ARGV[i]) end
return out
