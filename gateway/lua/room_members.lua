#!lua flags=no-writes,allow-cross-slot-keys
-- The server API's rooms listing under Redis Cluster, its second step: the
-- distinct names of each room whose names key (drop_name.lua) is given, in
-- order, on one node, which is sent the keys of every listed room whose
-- slot it serves. The keys are ARGV, not KEYS, since declared keys must
-- share one slot; the flag lets a script read keys of several slots of its
-- own node, and a key of a slot the node does not serve (it moved) fails
-- the call rather than reading as empty.
local out = {}
for i = 1, #ARGV do out[i] = redis.call('HLEN', ARGV[i]) end
return out
