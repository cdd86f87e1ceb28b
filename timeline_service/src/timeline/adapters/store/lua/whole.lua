-- Mark a rebuilt home whole, for its full TTL: the last step of landing a rebuild.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] the TTL in seconds
-- A script rather than SET and EXPIREs, so that it cannot run without push.lua: inside
-- the landing's MULTI, a server that lost its scripts (flushed, a failover) refuses
-- every EVALSHA but runs the plain commands, and a plain SET would mark the home whole
-- with none of its ids in. The store loads this script last, so a server that has it
-- has push.lua too.
if redis.call('SET', KEYS[1], '1', 'EX', ARGV[1], 'XX') then
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
