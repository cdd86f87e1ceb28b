-- Place tweet ids into timeline lists (newest first), idempotently, in id order.
-- KEYS: pairs of marker (the list is "materialized") and list, one pair per timeline
-- ARGV[1] cap (a list holds its newest `cap` ids, and up to cap/25 more: the slack
-- below), ARGV[2] "1" to write only where the marker exists ("1s" also: the ids
-- are newest first and distinct, checked by the caller, which is the store adapter:
-- in C there, off the server's one thread, docs/decisions/0018; "1p" also: the ids are
-- only the newest of their authors' tweets, older ones exist that they leave out, so a
-- list is cut at the oldest of them, below; "1c" for a celebrity's list: as "1", but a
-- list without a marker answers -2, and one closed as its author stopped being a
-- celebrity (close.lua's "d") -1, and takes nothing), any of them followed by "@" and a rebuild's
-- token to write only into a list whose mark still holds that token (its landing:
-- begin.lua's "r:<token>..."; a list that a removal spoiled, or that another rebuild
-- landed first, is left as it is), ARGV[3] the prefix of
-- a list's change channel, ARGV[4..] 16-byte ids, or runs of them in one argument (a
-- rebuild's 800 ids: one argument, not 800 for the client to pack and the server to
-- parse); best newest first: many ids in that order are merged in one pass
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

-- An id's first six bytes are its millisecond timestamp (UUIDv7): as a number (exact,
-- under 2^53), most comparisons are one comparison of numbers (`newer` walks the bytes
-- two ids share, two calls a byte: on the server's time, for every id of a rebuild).
local function stamp(id)
  local a, b, c, d, e, f = string.byte(id, 1, 6)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

local cap = tonumber(ARGV[1])
-- Arguments to redis.call as strings: a Lua number is formatted with sprintf on every
-- call, a share of Redis's time in a fan-out that buys nothing (docs/benchmarks.md,
-- "What a tweet costs, counted to the end").
local last_kept = tostring(cap - 1)
-- A full list is trimmed back to `cap` once a push takes it past cap + slack, not on
-- every push: a trim on every push is one command in four of a delivery into a full
-- home (docs/decisions/0022). The ids held past the cap are as exact as the rest (a
-- late id lands among them, below), so readers read them as any.
local slack = math.floor(cap / 25)
-- A late id is looked for among this many of a list's newest entries first (below):
-- fewer send more late ids on to the binary search, more make every LRANGE longer
-- (docs/decisions/0022).
local near = 16
local near_last = tostring(near - 1)

-- Many ids at once (a rebuild, a backfill, a celebrity list filled): merged with the
-- list in one pass instead of one binary search each, a dozen calls for every id of a
-- rebuild, all of them on the server's time (docs/decisions/0005). Only when they come
-- newest first with no repeats (Feed sorts them), which is checked here rather than
-- trusted.
local ids = {}
for i = 4, #ARGV do
  local run = ARGV[i]
  for j = 1, #run, 16 do ids[#ids + 1] = string.sub(run, j, j + 15) end
end
-- "1p": a part of a longer story (a backfill of a followee's newest, a celebrity's list
-- pushed into homes when the author falls below the threshold): below the oldest id
-- given, the list would lack that author's older tweets, so it keeps nothing older and
-- says it is cut (unpush.lua's "c"). Always merged in one pass, which places the cut.
local mode, token = string.match(ARGV[2], '^([^@]*)@?(.*)$')
local partial = mode == '1p'
local bulk = #ids > 16 or (partial and #ids > 0)
if bulk and mode ~= '1s' then
  local last = stamp(ids[1])
  for i = 2, #ids do
    local this = stamp(ids[i])
    if not (last > this or (last == this and newer(ids[i - 1], ids[i]))) then
      bulk = false
      break
    end
    last = this
  end
end

-- Whether ids older than every entry of a list of `n` may go at its end: only where the
-- list is the whole story below its last entry, below its cap and not cut (a list that
-- lost ids at its cap: unpush.lua's "c"). One that was trimmed, or cut, lacks older ids,
-- and one of those might be newer than the id. `state`: the marker's value if read.
local function open_below(marker, n, state)
  return n < cap and (state or redis.call('GET', marker)) ~= 'c'
end

local function merge_into(marker, list)
  local current = redis.call('LRANGE', list, 0, -1)
  -- The marker as the list was before these ids, read once where it matters (not for
  -- the usual rebuild's landing, below). A list that takes a part of a longer story is
  -- cut from now on (while rebuilt, "r:<token>", the rebuild decides what it holds when
  -- it lands).
  local state = (partial or #current > 0) and redis.call('GET', marker)
  if partial and state == '1' then redis.call('SET', marker, 'c', 'KEEPTTL') end
  if #current == 0 then  -- the usual rebuild: nothing was fanned out meanwhile
    local take = math.min(#ids, cap)
    for k = 1, take, 1000 do  -- unpack's arguments go on Lua's stack: in slices
      redis.call('RPUSH', list, unpack(ids, k, math.min(k + 999, take)))
    end
    return take, take > 0
  end
  local function above(a, b)  -- a is newer than b
    local x, y = stamp(a), stamp(b)
    return x > y or (x == y and newer(a, b))
  end
  local merged, i, j, added = {}, 1, 1, 0
  local below = open_below(marker, #current, state)  -- may ids go past the list's last entry
  local floor = partial and ids[#ids]  -- and nothing past the oldest of a part
  while #merged < cap and (i <= #current or (below and j <= #ids)) do
    local have, new = current[i], ids[j]
    if new == nil and floor and above(floor, have) then
      break  -- the list's entries older than the part's oldest: left to the source
    elseif new == nil or (have ~= nil and above(have, new)) then
      merged[#merged + 1], i = have, i + 1
    elseif have == nil or above(new, have) then
      merged[#merged + 1], j, added = new, j + 1, added + 1
    else  -- already there
      merged[#merged + 1], i, j = have, i + 1, j + 1
    end
  end
  local rewritten = added > 0 or #merged < #current
  if rewritten then
    redis.call('DEL', list)
    for k = 1, #merged, 1000 do  -- unpack's arguments go on Lua's stack: in slices
      redis.call('RPUSH', list, unpack(merged, k, math.min(k + 999, #merged)))
    end
  end
  return added, rewritten and #merged > 0
end

-- Whether an id (`s`: its stamp) is newer than a list's entry: by their stamps, one
-- call to read the entry's; byte by byte (`newer`) only within one millisecond. `newer`
-- alone walks the bytes two ids share, two calls a byte, and ids minutes apart share
-- four: a late delivery compares the id with up to 16 entries, and that Lua would
-- cost the server more than the delivery's commands (docs/decisions/0022).
local stamps = {}
if not bulk then
  for k = 1, #ids do stamps[k] = stamp(ids[k]) end
end
local function newer_than(id, s, entry)
  local e = stamp(entry)
  if s ~= e then return s > e end
  return newer(id, entry)
end

-- One id at a time: the common case, a tweet fanned out. Returns how many ids were
-- added and whether the list was created here (it had no entries).
local function insert_each(marker, list)
  local added, created, length = 0, false, 0
  -- The list is always in descending id order (this script is the only writer that
  -- adds), so presence needs no scan of the whole list (LPOS reads all the ids of a full
  -- home on every delivery: docs/benchmarks.md, "The fan-out path"): an id newer than the
  -- head is absent, and otherwise it can only sit just above the place the binary search
  -- finds.
  for k, id in ipairs(ids) do
    local s = stamps[k]
    local head = redis.call('LINDEX', list, '0')
    -- The marker is asked only of an empty list (and every 32nd entry, below): a list
    -- exists only while its marker does (it is made here or by a rebuild, with the
    -- marker's expiry), or after a rebuild given up, which no page reads and the next
    -- rebuild empties first. Not asking on every delivery spares one key lookup in
    -- four (docs/decisions/0022).
    if not head then  -- an empty list: LPUSH creates it, if the home is materialized
      if not created and mode ~= '0' and redis.call('EXISTS', marker) == 0 then
        return 0, false
      end
      created = true
    end
    if (not head) or newer_than(id, s, head) then
      length = redis.call('LPUSH', list, id)  -- the common case: the newest tweet goes on top
      added = added + 1
    else
      -- A late id: partitions interleave, so a tweet may reach a home just after a newer
      -- one. It most often belongs among the newest few, and one LRANGE of them finds its
      -- place (lo: the first entry older than it), where a binary search of LINDEXes
      -- walks the list a dozen times (late deliveries are common when partitions are
      -- fanned out side by side: docs/decisions/0022).
      local top = redis.call('LRANGE', list, '0', near_last)
      local lo, n, pivot = nil, nil, nil
      for i = 2, #top do  -- top[1], the head, is not older than id (or id would be newer)
        if newer_than(id, s, top[i]) then
          lo, pivot = i - 1, top[i]
          break
        end
      end
      if not lo and #top < near then
        lo, n = #top, #top  -- the whole list, no entry of it older than id
      elseif not lo then  -- older than the newest `near`: a binary search of the rest
        local hi
        n = redis.call('LLEN', list)
        lo, hi = #top, n
        while lo < hi do
          local mid = math.floor((lo + hi) / 2)
          if newer_than(id, s, redis.call('LINDEX', list, mid)) then hi = mid else lo = mid + 1 end
        end
      end
      -- Entries above lo are not older than id: if id is present, it is the last of them.
      -- An id older than every entry goes at the end only where open_below says so;
      -- anywhere above the last entry, the slack included, it belongs.
      local above = top[lo] or redis.call('LINDEX', list, lo - 1)  -- (top counts from 1)
      if above ~= id and (pivot or lo < n or open_below(marker, n)) then
        if pivot then
          length = redis.call('LINSERT', list, 'BEFORE', pivot, id)
        elseif lo == n then
          length = redis.call('RPUSH', list, id)
        else
          length = redis.call('LINSERT', list, 'BEFORE', redis.call('LINDEX', list, lo), id)
        end
        added = added + 1
      end
    end
  end
  -- Every 32nd entry a list gains, its marker is asked after all. A marker can go alone:
  -- evicted under memory pressure (volatile-lru takes the key idle longest, and EXISTS
  -- is no use of it), and pushes would keep its list in use and growing until its TTL,
  -- a list no reader reads. Gone then: one lookup in 32 pushes.
  if mode ~= '0' and added > 0 and math.floor(length / 32) > math.floor((length - added) / 32)
      and redis.call('EXISTS', marker) == 0 then
    redis.call('DEL', list)
    return 0, false
  end
  if length > cap + slack then  -- each push says the length: trim only past the slack
    redis.call('LTRIM', list, '0', last_kept)
  end
  return added, created
end

local function place(marker, list)
  local added, created
  if mode == '1c' then  -- the tweet goes to the followers' homes instead (the caller)
    local state = redis.call('GET', marker)
    if not state then return -2 end
    if state == 'd' then return -1 end
  end
  if token ~= '' then  -- a landing: only while the list's mark holds its rebuild's token
    local state = redis.call('GET', marker)
    if not state or string.sub(state, 1, 1) ~= 'r' or not string.find(state, ':' .. token, 1, true) then
      return 0
    end
  end
  if bulk then
    -- (a landing's mark was read just above: it exists)
    if mode ~= '0' and token == '' and redis.call('EXISTS', marker) == 0 then
      return 0
    end
    added, created = merge_into(marker, list)  -- created: written anew (trimmed, say)
  else
    added, created = insert_each(marker, list)
  end
  -- A list created or written anew here must expire with its marker, or it would
  -- outlive the marker and a later rebuild would find stale entries in it. One that
  -- existed keeps the expiry it had (set with the marker's; pushes do not remove it).
  if created then
    local ttl = redis.call('PTTL', marker)
    if ttl > 0 then redis.call('PEXPIRE', list, ttl) end
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
