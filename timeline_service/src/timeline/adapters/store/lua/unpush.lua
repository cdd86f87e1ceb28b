-- Remove tweet ids from timeline lists, and tell each list's live streams.
-- KEYS: lists (a home or a celebrity's), ARGV[1] the prefix of a list's change channel,
-- ARGV[2..] 16-byte ids. Returns how many entries were removed over all the lists.
-- A script, not a pipeline of LREMs, so the removal and its message are one step: a
-- stream that hears "-" and an id finds it gone when it reads.
local removed = 0
for _, list in ipairs(KEYS) do
  for i = 2, #ARGV do
    if redis.call('LREM', list, 0, ARGV[i]) > 0 then
      removed = removed + 1
      redis.call('SPUBLISH', ARGV[1] .. list, '-' .. ARGV[i])
    end
  end
end
return removed
