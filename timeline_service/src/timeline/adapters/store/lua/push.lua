-- Place tweet ids into timeline lists (newest first), idempotently, in id order.
-- KEYS: pairs of marker (the list is "materialized") and list, one pair per timeline
-- ARGV[1] cap, ARGV[2] "1" to write only where the marker exists, ARGV[3] the prefix of
-- a list's change channel, ARGV[4..] 16-byte ids (best newest first: many ids in that
-- order are merged in one pass)
-- Returns how many ids were added over all the lists. A list that gained ids says so on
-- its channel ("+"): the live streams of its readers wake and read what is new.
--
-- Several timelines a call: fan-out writes one tweet into a hundred homes, and one
-- command for them all costs the worker and Redis far less than a hundred (on Redis
-- Cluster, where a script's keys must share a slot, a call holds the homes of one slot).
--
-- Why a script: Kafka delivers at least once and partitions interleave, so an id may
-- arrive twice or late. Check-and-insert must be atomic, or two workers could both
-- see "absent" and insert twice.

-- Raw byte comparison: Lua's `<` on strings uses strcoll, which follows the server's
-- locale; UUIDv7 bytes must compare as bytes to sort by time.
local function newer(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

local cap = tonumber(ARGV[1])

-- Many ids at once (a rebuild, a backfill, a celebrity list filled): merged with the
-- list in one pass instead of one binary search each, which cost a rebuild of 800 ids
-- some 10,000 calls and 3 ms of the server. Only when they come newest first with no
-- repeats (Feed sorts them), which is checked here rather than trusted.
local ids = {}
for i = 4, #ARGV do ids[#ids + 1] = ARGV[i] end
local bulk = #ids > 16
for i = 2, #ids do
  if not bulk then break end
  bulk = newer(ids[i - 1], ids[i])
end

local function merge_into(list)
  local current = redis.call('LRANGE', list, 0, -1)
  local merged, i, j, added = {}, 1, 1, 0
  while #merged < cap and (i <= #current or j <= #ids) do
    local have, new = current[i], ids[j]
    if new == nil or (have ~= nil and newer(have, new)) then
      merged[#merged + 1], i = have, i + 1
    elseif have == nil or newer(new, have) then
      merged[#merged + 1], j, added = new, j + 1, added + 1
    else  -- already there
      merged[#merged + 1], i, j = have, i + 1, j + 1
    end
  end
  if added > 0 then
    redis.call('DEL', list)
    for k = 1, #merged, 1000 do  -- unpack's arguments go on Lua's stack: in slices
      redis.call('RPUSH', list, unpack(merged, k, math.min(k + 999, #merged)))
    end
  end
  return added
end

-- One id at a time: the common case, a tweet fanned out.
local function insert_each(list)
  local added = 0
  -- The list is always in descending id order (this script is the only writer that
  -- adds), so presence needs no scan of the whole list (LPOS read all 800 ids of a full
  -- home, and was half of Redis's time during fan-out): an id newer than the head is
  -- absent, and otherwise it can only sit just above the place the binary search finds.
  for _, id in ipairs(ids) do
    local head = redis.call('LINDEX', list, 0)
    if (not head) or newer(id, head) then
      redis.call('LPUSH', list, id)  -- the common case: the newest tweet goes on top
      added = added + 1
    else
      -- Binary search for the first entry older than id (the list is descending).
      local lo, hi = 0, redis.call('LLEN', list)
      local n = hi
      while lo < hi do
        local mid = math.floor((lo + hi) / 2)
        if newer(id, redis.call('LINDEX', list, mid)) then hi = mid else lo = mid + 1 end
      end
      -- Entries above lo are not older than id: if id is present, it is the last of them.
      if not (lo > 0 and redis.call('LINDEX', list, lo - 1) == id) and lo < cap then
        if lo == n then
          redis.call('RPUSH', list, id)
        else
          redis.call('LINSERT', list, 'BEFORE', redis.call('LINDEX', list, lo), id)
        end
        added = added + 1
      end
    end
  end
  redis.call('LTRIM', list, 0, cap - 1)
  return added
end

local function place(marker, list)
  if ARGV[2] == '1' and redis.call('EXISTS', marker) == 0 then
    return 0
  end
  local added
  if bulk then added = merge_into(list) else added = insert_each(list) end
  -- A list created or written anew here must expire with its marker, or it would
  -- outlive the marker and a later rebuild would find stale entries in it.
  local ttl = redis.call('PTTL', marker)
  if ttl > 0 and added > 0 then
    redis.call('PEXPIRE', list, ttl)
  end
  if added > 0 then
    redis.call('SPUBLISH', ARGV[3] .. list, '+')
  end
  return added
end

local total = 0
for k = 1, #KEYS, 2 do
  total = total + place(KEYS[k], KEYS[k + 1])
end
return total
