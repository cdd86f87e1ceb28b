-- Mark a home "being rebuilt" before its tweets are fetched (what fan-out pushes
-- meanwhile is kept), empty of what an earlier life of it left; a celebrity's list
-- "being filled" likewise.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities (for a celebrity's
-- list, the list again)
-- ARGV[1] the seconds the mark lasts (the rebuild window), ARGV[2] "1" to take the home
-- over (after waiting for a rebuild that seems dead), "0" only when it has no marker
-- (single flight: a home that another process is rebuilding, or that is whole again,
-- is left alone), ARGV[3] this rebuild's token (16 hex digits), ARGV[4..] followed
-- celebrities (16-byte ids) known already
-- Returns 1 when this caller now rebuilds the home, 0 when it must not.
-- The marker's value says which: "r" and the tokens of the rebuilds at it (":<token>"
-- each) while being rebuilt, "1" once whole (page.lua tells readers of an "r" home to
-- wait instead of serving half of it). Only a rebuild whose token the mark holds lands
-- (whole.lua, push.lua), the first of them to finish: a take-over joins the rebuild it
-- waited for (it may be slow, not dead) and keeps what fan-out pushed since it began;
-- a removal meanwhile ("x", unpush.lua) voids them all, and a take-over of that starts
-- afresh. So no rebuild lands what it read before a removal, and a slow one still lands.
local tag = ':' .. ARGV[3]
local state = redis.call('GET', KEYS[1])
if ARGV[2] == '1' and state and string.sub(state, 1, 1) == 'r' then
  -- The list (and set) live as long as the mark they belong to, whose window restarts.
  redis.call('SET', KEYS[1], state .. tag, 'EX', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
elseif ARGV[2] == '1' then
  redis.call('SET', KEYS[1], 'r' .. tag, 'EX', ARGV[1])
  redis.call('DEL', KEYS[2], KEYS[3])
elseif redis.call('SET', KEYS[1], 'r' .. tag, 'EX', ARGV[1], 'NX') then
  redis.call('DEL', KEYS[2], KEYS[3])
else
  return 0
end
if #ARGV > 3 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
