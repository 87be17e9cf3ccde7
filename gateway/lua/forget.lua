-- Withdraws a gateway's entries from one room's presence (Redis deletes a
-- hash with its last field); returns how many fields it looked at.
--#include drop_name.lua
local function forget(key, nkey, gw)
  local pat, all = gw .. '\t', redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local f = all[i]
    if string.sub(f, 1, #pat) == pat then
      redis.call('HDEL', key, f)
      drop_name(nkey, string.sub(f, #pat + 1), tonumber(all[i + 1]))
    end
  end
  return #all / 2
end
