-- Give up a rebuild (or a celebrity list's fill): its mark goes if it is still this
-- rebuild's (begin.lua's "r<token>"), or spoiled ("x", unpush.lua), so that the next
-- reader rebuilds the list; a mark that another rebuild took over, or a list landed
-- meanwhile, stays as it is.
-- KEYS[1] marker; ARGV[1] the rebuild's token. Returns 1 when the mark went.
local state = redis.call('GET', KEYS[1])
if state == 'r' .. ARGV[1] or state == 'x' then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
