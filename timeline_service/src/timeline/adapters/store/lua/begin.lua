-- Mark a home "being rebuilt" before its tweets are fetched (what fan-out pushes
-- meanwhile is kept), empty of what an earlier life of it left; a celebrity's list
-- "being filled" likewise.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities (for a celebrity's
-- list, the list again)
-- ARGV[1] the seconds the mark lasts (the rebuild window), ARGV[2] "1" to take the home
-- over whatever its state, "0" only when it has no marker (single flight: a home that
-- another process is rebuilding, or that is whole again, is left alone), ARGV[3] this
-- rebuild's token, ARGV[4..] followed celebrities (16-byte ids) known already
-- Returns 1 when this caller now rebuilds the home, 0 when it must not.
-- The marker's value says which: "r" and the token while being rebuilt, "1" once whole
-- (page.lua tells readers of an "r" home to wait instead of serving half of it). The
-- token is the rebuild's own: only the rebuild that holds the mark lands (whole.lua,
-- push.lua), so one that was taken over (slow, not dead) cannot land what it read
-- before a removal that the taking over erased ("x", unpush.lua).
local mark = 'r' .. ARGV[3]
if ARGV[2] == '1' then
  redis.call('SET', KEYS[1], mark, 'EX', ARGV[1])
elseif not redis.call('SET', KEYS[1], mark, 'EX', ARGV[1], 'NX') then
  return 0
end
redis.call('DEL', KEYS[2], KEYS[3])
if #ARGV > 3 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 4))
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
