-- Give up a rebuild (or a celebrity list's fill): its token leaves the mark (begin.lua's
-- "r:<token>..."), and the mark goes with the last token, or if spoiled ("x",
-- unpush.lua), so that the next reader rebuilds the list; the other rebuilds at it go on,
-- and a list landed meanwhile stays as it is.
-- KEYS[1] marker; ARGV[1] the rebuild's token. Returns 1 when the mark went.
local state = redis.call('GET', KEYS[1])
if state == 'x' then
  redis.call('DEL', KEYS[1])
  return 1
end
if not state or string.sub(state, 1, 1) ~= 'r' then
  return 0
end
local tag = ':' .. ARGV[1]
local at = string.find(state, tag, 1, true)
if not at then
  return 0
end
local left = string.sub(state, 1, at - 1) .. string.sub(state, at + #tag)
if left == 'r' then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], left, 'KEEPTTL')
return 0
