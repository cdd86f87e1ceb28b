-- A caller's open live streams, fleet-wide: open one if fewer than the limit are open.
-- KEYS[1] the caller's set (stream id -> when it lapses, in ms), KEYS[2] the mark that
-- a stream reads the caller's home (its removals are recorded: unpush.lua), ARGV[1]
-- the stream's id, ARGV[2] how long it holds without a renewal (ms), ARGV[3] the
-- limit, or "" to renew an open stream only, ARGV[4] how long the mark lasts (s).
-- Returns 1 when the stream holds a place, 0 when refused.
-- A stream renews its place at every keep-alive, so the places of a process that died
-- lapse on their own.
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local lapses = ms + tonumber(ARGV[2])
if ARGV[3] == '' then
  redis.call('ZADD', KEYS[1], 'XX', lapses, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
  return 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == false and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
  return 0
end
redis.call('ZADD', KEYS[1], lapses, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
redis.call('SET', KEYS[2], '1', 'EX', ARGV[4])
return 1
