-- Close a celebrity's list as its author stops being one, and read it: the demotion
-- pushes what it read into the followers' homes, and a push that comes later (a tweet
-- whose event said "celebrity" before the crossing) finds the list closed (push.lua's
-- "1c": -1) and is fanned out instead; read and closed in one step, no push falls
-- between the two and is lost.
-- KEYS[1] the list's marker, KEYS[2] the list. Returns the list's ids, or false if it
-- is not filled (being filled, or gone: the caller fills it and closes it again). A
-- list closed already (a demotion tried again) is read again: its ids are kept until
-- the demotion is done (the marker stays, "d", after them).
local state = redis.call('GET', KEYS[1])
if state == '1' or state == 'c' then
  redis.call('SET', KEYS[1], 'd', 'KEEPTTL')
elseif state ~= 'd' then
  return false
end
return redis.call('LRANGE', KEYS[2], 0, -1)
