-- Appends a chat to its stream and publishes it, in one atomic step, so
-- that the stream id is the message id and ids increase in publish order.
-- With a cid (ARGV[6], the dedupe window in ms, not empty) a resend of a
-- message accepted within the window is not published again: the answer is
-- {id, rest} of the original (the resend's own rest when the stream no
-- longer holds it). KEYS[2] is the cid's key, named after the room, sender
-- and cid; under Redis Cluster it carries the room's hash tag, as the
-- stream and the channel do, so that the step stays on one node.
--
-- KEYS: stream, cid key. ARGV: channel, history kept, the message's rest
-- (proto_chat_rest), stream TTL in ms, the frame's prefix up to the id,
-- dedupe window in ms or '', the newest id the sending gateway delivered
-- in the room or '', how to publish (PUBLISH, or SPUBLISH for a room's
-- shard channel under Redis Cluster), events stream or '' and its cap
-- (event.lua), the room ('' for global).
--#include now.lua
--#include event.lua
if ARGV[6] ~= '' then
  local old = redis.call('GET', KEYS[2])
  if old then
    local e = redis.call('XRANGE', KEYS[1], old, old)
    if #e > 0 then return {old, e[1][2][2]} end
    return {old, ARGV[3]}
  end
end
-- The stream keeps one entry more than the history: the newest that
-- clients can no longer get, so that room.lua can tell a since before it
-- means messages are gone.
-- The id follows the newest the sending gateway's members saw, not only
-- Redis's clock and the stream's end: after a failover to a replica whose
-- history ends earlier and whose clock is behind, '*' would hand out ids
-- lower than theirs, and a since of theirs would then hide the new
-- messages. (An XADD id at or below the stream's end fails: '*' then.)
local maxlen, id = tonumber(ARGV[2]) + 1, nil
local fms, fseq = string.match(ARGV[7], '^(%d+)-(%d+)$')
if fms and #fseq < 15 and tonumber(fms) >= now_ms() then
  local r = redis.pcall('XADD', KEYS[1], 'MAXLEN', maxlen, fms .. '-' .. (tonumber(fseq) + 1),
                        'r', ARGV[3])
  if type(r) == 'string' then id = r end
end
if not id then id = redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, '*', 'r', ARGV[3]) end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local frame = ARGV[5] .. id .. '",' .. ARGV[3]
redis.call(ARGV[8], ARGV[1], frame)
event(ARGV[9], ARGV[10], 'type', 'chat', 'room', ARGV[11], 'id', id, 'data', frame)
if ARGV[6] ~= '' then redis.call('SET', KEYS[2], id, 'PX', ARGV[6]) end
return id
