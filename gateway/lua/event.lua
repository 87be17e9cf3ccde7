-- Appends an event to the backends' stream (--events-stream) in the step of
-- the script that makes it happen, so that a stream entry exists exactly
-- when the change does. key '' (the stream is off): nothing. The stream is
-- capped near cap entries (MAXLEN ~, whole macro nodes at a time: cheap).
local function event(key, cap, ...)
  if key ~= '' then redis.call('XADD', key, 'MAXLEN', '~', cap, '*', ...) end
end
