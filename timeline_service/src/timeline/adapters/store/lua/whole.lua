-- Mark a rebuilt home whole, for its full TTL: the last step of landing a rebuild (and
-- of filling a celebrity's list, which begin.lua marked the same way).
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities (for a celebrity's
-- list, the list again), and for a home's landing KEYS[4]: a key (its hash tag, and the
-- rebuild's token) that the caller filled with the rebuild's ids, newest first and at
-- most the cap, by a plain RPUSH in the same transaction
-- ARGV[1] the TTL in seconds, or "" for a celebrity's list (kept with no TTL, until
-- its author is a celebrity no more), ARGV[2] the rebuild's token (begin.lua), ARGV[3]
-- the prefix of a list's change channel, ARGV[4..] the celebrities the rebuild found the
-- user follows (members of KEYS[3]; here, after the check that the home is this
-- rebuild's to land, so that one that may not land adds none)
-- A script rather than SET and EXPIREs: inside the landing's MULTI, a server that lost
-- its scripts (flushed, a failover) refuses every EVALSHA but runs the plain commands,
-- and a plain SET would mark the home whole with none of its ids in (the RPUSH of
-- KEYS[4] runs; the key lapses with the rebuild's mark). The store loads this script
-- last, so a server that has it has push.lua too (the ids of a home that fan-out
-- pushed into meanwhile land through push.lua).
-- Why KEYS[4]: a home's 800 ids given to push.lua as one argument cost the server far
-- more to land (splitting them into Lua strings costs more than making the list;
-- docs/decisions/0018). A RENAME only does while the list is empty, which it
-- is unless fan-out pushed into the home while it was rebuilt: then nothing lands here
-- (2), and the caller lands the ids through push.lua, whose one-pass merge keeps what
-- was pushed.
-- Returns 1 once landed; 2 when KEYS[4]'s ids are for push.lua to merge (the list is
-- not empty; nothing done, KEYS[4] gone); 0 when the list is not this rebuild's to land:
-- the mark is gone (given up, or lapsed), another rebuild at it landed first, or a removal
-- reached the list while it was being rebuilt ("x", unpush.lua), so that what the
-- rebuild read may hold what was removed. The list goes then, with what fan-out pushed
-- meanwhile (all of it in PostgreSQL too), and its next reader rebuilds it from a read
-- made after the removal.
local landing = KEYS[4]
local state = redis.call('GET', KEYS[1])
if state == 'x' then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  if landing then redis.call('DEL', landing) end
  return 0
end
if not state or string.sub(state, 1, 1) ~= 'r' or not string.find(state, ':' .. ARGV[2], 1, true) then
  if landing then redis.call('DEL', landing) end
  return 0
end
if landing then
  -- The ids the caller put in just before, in this transaction: a home marked whole
  -- without them would be served empty, so without them nothing lands.
  if redis.call('EXISTS', landing) == 0 then return 0 end
  if redis.call('EXISTS', KEYS[2]) == 1 then
    redis.call('DEL', landing)
    return 2
  end
  redis.call('RENAME', landing, KEYS[2])
  redis.call('SPUBLISH', ARGV[3] .. KEYS[2], '+')  -- as push.lua says of a list that gained ids
end
if #ARGV > 3 then
  redis.call('SADD', KEYS[3], unpack(ARGV, 4))
end
if ARGV[1] == '' then
  redis.call('SET', KEYS[1], '1')  -- no EX: the mark's TTL goes
  redis.call('PERSIST', KEYS[2])
else
  redis.call('SET', KEYS[1], '1', 'EX', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[3], ARGV[1])
end
return 1
