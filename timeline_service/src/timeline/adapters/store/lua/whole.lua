-- Mark a rebuilt home whole, for its full TTL: the last step of landing a rebuild.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] the TTL in seconds
-- A script rather than SET and EXPIREs, so that it cannot run without push.lua: inside
-- the landing's MULTI, a server that lost its scripts (flushed, a failover) refuses
-- every EVALSHA but runs the plain commands, and a plain SET would mark the home whole
-- with none of its ids in. The store loads this script last, so a server that has it
-- has push.lua too.
-- Returns 1, or 0 for a landing refused: a removal reached the home while it was being
-- rebuilt ("x", unpush.lua), so what the rebuild read may hold what was removed. The
-- home goes, with what fan-out pushed meanwhile (all of it in PostgreSQL too): its next
-- read rebuilds it from a read made after the removal.
local state = redis.call('GET', KEYS[1])
if state == 'x' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 0
end
if state then
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
