-- Withdraws one gateway's entries from one room's presence: the step of a
-- reset or a reap under Redis Cluster, where each room's keys are on the
-- node of its slot and no one script reaches them all. Returns how many
-- fields it looked at.
--
-- KEYS: presence hash, names hash. ARGV: gateway id.
--#include forget.lua
return forget(KEYS[1], KEYS[2], ARGV[1])
