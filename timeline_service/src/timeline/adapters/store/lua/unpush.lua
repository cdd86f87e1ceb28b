-- Remove tweet ids from a timeline list, and tell the list's live streams.
-- KEYS[1] the list's marker, KEYS[2] the list (a home or a celebrity's)
-- ARGV[1] the prefix of a list's change channel, ARGV[2] the lists' cap, ARGV[3..]
-- 16-byte ids. Returns how many entries were removed.
-- A script, not a pipeline of LREMs, so the removal and its message are one step: a
-- stream that hears "-" and an id finds it gone when it reads.
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
for i = 3, #ARGV do
  if redis.call('LREM', list, 0, ARGV[i]) > 0 then
    removed = removed + 1
    redis.call('SPUBLISH', ARGV[1] .. list, '-' .. ARGV[i])
  end
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
