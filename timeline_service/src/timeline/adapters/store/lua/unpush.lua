-- Remove tweet ids from a timeline list, and tell the list's live streams.
-- KEYS[1] the list's marker, KEYS[2] the list (a home or a celebrity's), KEYS[3] the
-- list's record of removals, KEYS[4] a key whose presence asks for that record (a home:
-- a stream read it lately; a celebrity's list: the list itself)
-- ARGV[1] the prefix of a list's change channel, ARGV[2] the lists' cap, ARGV[3] how
-- long a removal stays recorded (ms), ARGV[4..] 16-byte ids. Returns how many entries
-- were removed.
-- A script, not a pipeline of LREMs, so the removal and its message are one step: a
-- stream that hears "-" and an id finds it gone when it reads. A message is lost when
-- no stream listens (a client reconnecting) or the subscriber's connection drops: the
-- record (id -> when, Redis's clock) is what a resume and each keep-alive read, so that
-- a delete reaches a stream as surely as a tweet does.
--
-- A list at its cap that loses ids (a deleted tweet, an unfollow) is still short of the
-- older tweets it no longer holds, though it is now below its cap, the sign readers go
-- by: its marker says so ("c", cut; "1" is whole) for as long as the list lives, so that
-- pages still say where the window ends and pushes let no id in below its last
-- (page.lua, push.lua). A rebuild starts the list afresh and marks it "1" again; a cut
-- list left empty has no last entry to bound anything by, and goes with its marker (its
-- next reader rebuilds it; a celebrity's list is filled again).
--
-- A list being rebuilt ("r" and its rebuild's token, begin.lua; a celebrity's list being
-- filled) is marked "x" instead, whatever it held: the rebuild's read of PostgreSQL may
-- predate this removal (an unfollow, a delete) and would land what it removed. whole.lua
-- refuses that landing, and the list is rebuilt from a fresh read.
local list, removed = KEYS[2], 0
local full = redis.call('LLEN', list) >= tonumber(ARGV[2])
local kept = tonumber(ARGV[3])
local now = nil
if redis.call('EXISTS', KEYS[4]) == 1 then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end
for i = 4, #ARGV do
  if redis.call('LREM', list, 0, ARGV[i]) > 0 then
    removed = removed + 1
    redis.call('SPUBLISH', ARGV[1] .. list, '-' .. ARGV[i])
    if now then
      redis.call('ZADD', KEYS[3], now, ARGV[i])
    end
  end
end
if now and removed > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - kept)
  redis.call('PEXPIRE', KEYS[3], kept)
end
local state = redis.call('GET', KEYS[1])
if state and string.sub(state, 1, 1) == 'r' then
  redis.call('SET', KEYS[1], 'x', 'KEEPTTL')
elseif removed > 0 then
  if state == 'c' or (state == '1' and full) then
    if redis.call('LLEN', list) == 0 then
      redis.call('DEL', KEYS[1], list)
    elseif state == '1' then
      redis.call('SET', KEYS[1], 'c', 'KEEPTTL')
    end
  end
end
return removed
