-- Presence of a room is two hashes: `presence:<room>`, "<gateway>\t<name>"
-- -> that gateway's connections of name in the room, and `pnames:<room>`,
-- name -> the same summed over gateways, so that a join counts the room's
-- distinct members with HLEN instead of reading every entry (10,000 joins
-- of one room would otherwise cost 50 million reads). Every change to the
-- first goes with the same change to the second: this is the change to the
-- second.
local function drop_name(nkey, name, c)
  if redis.call('HINCRBY', nkey, name, -c) <= 0 then redis.call('HDEL', nkey, name) end
end
