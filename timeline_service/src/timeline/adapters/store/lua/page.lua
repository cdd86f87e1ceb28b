-- Read timeline slices and keep a home's expiry fresh. Three ways, by ARGV[4]:
--   "page"  (a single Redis) a whole home page in one round trip: the home's slice, its
--           followed celebrities' slices, their merge, and the merged ids' cached items;
--   "home"  (Redis Cluster, where the other keys live on other nodes) the home's slice
--           and the ids of its followed celebrities;
--   "list"  one list's slice (a celebrity's list; KEYS[3] unused).
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] cursor id (16 bytes) or "", ARGV[2] count, ARGV[3] ttl, ARGV[4] the way,
-- ARGV[5] the lists' cap, ARGV[6] the direction: "older" (a page down from the cursor,
-- or from the top without one) or "newer" (the `count` ids immediately newer than the
-- cursor: a refresh), ARGV[7] the seconds a home being rebuilt is marked for (a marker
-- with no more left is not renewed: its rebuild may have died), and for "page": ARGV[8]
-- the tweet cache's key prefix, ARGV[9] and ARGV[10] the prefixes of a celebrity's marker
-- and list keys
-- (timeline/adapters/store/keys.py names every key; this script adds the hash tag).
-- Returns
--   "list": {materialized 0/1, truncated 0/1, {ids}}
--   "home": {materialized, truncated, {ids}, {celebrity ids}}
--   "page": {materialized, window_ended 0/1, {page ids}, {items, false where not
--           cached}, {followed celebrities whose list is not filled}}
-- where materialized is 0 (no home), 1, or for "home" and "page" 2: being rebuilt
-- (nothing else returned); and, older: truncated = the slice came up short of a list
-- short of older tweets (at its cap, or cut: short_of_older below): older tweets exist
-- that the list no longer holds; and the page is merge_window of
-- timeline/domain/merge.py; newer: truncated = the list is short of older tweets and
-- holds nothing at or below the cursor, so ids just above it may be gone; and the page is
-- merge_newer (the references; tests/integration/test_page_merge.py proves them equal).
local function newer(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

local cursor, count, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[5])
local upward = ARGV[6] == 'newer'

-- Whether a list of `n` entries lacks older tweets that exist: one at its cap was
-- trimmed, and one that lost ids at its cap says so on its marker (unpush.lua's "c").
-- Asked only where a slice reaches the list's end.
local function short_of_older(marker, n)
  return n >= cap or redis.call('GET', marker) == 'c'
end

-- The ids immediately newer than the cursor, newest first, and whether the list may
-- have lost some of them (short of older tweets, and nothing in it at or below the
-- cursor).
local function slice_newer(marker, list)
  local n = redis.call('LLEN', list)
  local lo, hi = 0, n
  while lo < hi do  -- the first entry not newer than the cursor
    local mid = math.floor((lo + hi) / 2)
    if newer(redis.call('LINDEX', list, mid), cursor) then lo = mid + 1 else hi = mid end
  end
  local ids = {}
  if lo > 0 then ids = redis.call('LRANGE', list, math.max(0, lo - count), lo - 1) end
  return ((lo == n and short_of_older(marker, n)) and 1 or 0), ids
end

-- The first entry strictly older than the cursor: pages never repeat an item even when
-- newer tweets were pushed on top since the previous page.
local function first_older(list, n)
  local lo, hi = 0, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if newer(cursor, redis.call('LINDEX', list, mid)) then hi = mid else lo = mid + 1 end
  end
  return lo
end

-- Whether a celebrity's list is filled: its marker is there, and not being filled ("r",
-- or "x": a removal reached it meanwhile, unpush.lua). A list being filled holds only
-- what fan-out pushed since: merged, a page would lack the author's older tweets and
-- say nothing older exists; its reader waits for the fill instead.
local function being_rebuilt(state)
  return state == 'x' or string.sub(state, 1, 1) == 'r'  -- "r" and a token (begin.lua)
end

local function filled(marker)
  local state = redis.call('GET', marker)
  return state and not being_rebuilt(state)
end

-- The marker's TTL (nil when there is no marker: not materialized, nor for a
-- celebrity's list, `of_celebrity`, being filled), the slice's truncated flag and its ids.
local function slice(marker, list, of_celebrity)
  local left = redis.call('TTL', marker)
  if left == -2 or (of_celebrity and not filled(marker)) then
    return nil, 0, {}
  end
  if upward then
    local lost, ids = slice_newer(marker, list)
    return left, lost, ids
  end
  local n = nil
  local start = 0
  if cursor ~= '' then
    n = redis.call('LLEN', list)
    start = first_older(list, n)
  end
  local ids = redis.call('LRANGE', list, start, start + count - 1)
  local truncated = 0
  if #ids < count then
    -- Only a short slice needs the length: it is the end of the list, and the end of
    -- the story only if the list is not short of older tweets.
    n = n or redis.call('LLEN', list)
    if short_of_older(marker, n) then truncated = 1 end
  end
  return left, truncated, ids
end

local HEX = string.rep('%02x', 16)
local function hex(id)
  return string.format(HEX, string.byte(id, 1, 16))
end

-- An id's first six bytes are its millisecond timestamp (UUIDv7): as a number (exact,
-- under 2^53), most comparisons of the merge are one comparison of numbers.
local function stamp(id)
  local a, b, c, d, e, f = string.byte(id, 1, 6)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

-- The `limit` newest distinct ids of newest-first lists (an id fanned out to a home
-- before its author became a celebrity is in both: it comes once).
local function merge(lists, limit)
  if #lists == 1 then return lists[1] end  -- a list holds each id once (push.lua)
  local page, at, head, key = {}, {}, {}, {}
  for i, ids in ipairs(lists) do
    at[i], head[i] = 1, ids[1]
    key[i] = head[i] and stamp(head[i])
  end
  while #page < limit do
    local from = nil
    for i = 1, #lists do
      if head[i] and (from == nil or key[i] > key[from]
          or (key[i] == key[from] and newer(head[i], head[from]))) then
        from = i
      end
    end
    if from == nil then break end
    if page[#page] ~= head[from] then page[#page + 1] = head[from] end
    at[from] = at[from] + 1
    head[from] = lists[from][at[from]]
    key[from] = head[from] and stamp(head[from])
  end
  return page
end

-- merge_window: below the newest point where a truncated list ran out, the lists are no
-- longer the whole story; keep only what is newer, and say whether the window ended.
local function merge_window(lists, truncated)
  local horizon = nil
  for i, ids in ipairs(lists) do
    if truncated[i] == 1 then
      if #ids == 0 then return {}, 1 end  -- this list knows nothing below the cursor
      local last = ids[#ids]
      if horizon == nil or newer(last, horizon) then horizon = last end
    end
  end
  local merged = merge(lists, count)
  if horizon == nil then return merged, 0 end
  local kept = {}
  for _, id in ipairs(merged) do
    if not newer(id, horizon) then break end
    kept[#kept + 1] = id
  end
  return kept, (#kept < count) and 1 or 0
end

-- merge_newer: the `count` oldest of all the ids just above the cursor, newest first;
-- nothing when a list lost some there (the source of truth has them).
local function merge_newer(lists, lost)
  for i = 1, #lists do
    if lost[i] == 1 then return {}, 1 end
  end
  local merged = merge(lists, count * #lists)
  if #merged <= count then return merged, 0 end
  local kept = {}
  for i = #merged - count + 1, #merged do kept[#kept + 1] = merged[i] end
  return kept, 0
end

-- A followed celebrity's hash tag: fc:{user} holds its id in hex (raw 16 bytes in homes
-- made before that, formatted here).
local function tag_of(member)
  return '{' .. (#member == 16 and hex(member) or member) .. '}'
end

-- merge_window of the home's slice and each followed celebrity's, without reading the
-- celebrities' slices whole: each list is read one id at a time as the merge takes from
-- it (LINDEX; a binary heap picks the newest head), where reading `count` ids of each
-- (LRANGE) reads `count` ids of every celebrity to keep `count` in all: most of them
-- read for nothing on a page of many celebrities (docs/decisions/0018).
-- Returns the page, window_ended and the celebrities whose list is not filled.
local function page_down(home, home_truncated, celebrities)
  local sources, unfilled = {}, {}
  local horizon, nothing_below = nil, false
  local function bound(last)
    if horizon == nil or newer(last, horizon) then horizon = last end
  end
  if #home > 0 then sources[1] = {ids = home, at = 1, stop = #home, head = home[1]} end
  if home_truncated == 1 then
    if #home == 0 then nothing_below = true else bound(home[#home]) end
  end
  for _, member in ipairs(celebrities) do
    local tag = tag_of(member)
    local list = ARGV[10] .. tag
    if not filled(ARGV[9] .. tag) then
      unfilled[#unfilled + 1] = member
    else
      local n = redis.call('LLEN', list)
      local start = 0
      if cursor ~= '' then start = first_older(list, n) end
      local take = math.min(count, n - start)
      if take < count and short_of_older(ARGV[9] .. tag, n) then  -- it lacks older tweets
        if take <= 0 then nothing_below = true else bound(redis.call('LINDEX', list, start + take - 1)) end
      end
      if take > 0 then
        sources[#sources + 1] = {list = list, at = start, stop = start + take - 1,
                                 head = redis.call('LINDEX', list, start)}
      end
    end
  end
  if nothing_below then return {}, 1, unfilled end

  local heap = {}
  local function above(a, b)
    if a.key ~= b.key then return a.key > b.key end
    return newer(a.head, b.head)
  end
  local function down(i)
    local n = #heap
    while true do
      local l, r, m = 2 * i, 2 * i + 1, i
      if l <= n and above(heap[l], heap[m]) then m = l end
      if r <= n and above(heap[r], heap[m]) then m = r end
      if m == i then return end
      heap[i], heap[m] = heap[m], heap[i]
      i = m
    end
  end
  for _, source in ipairs(sources) do
    source.key = stamp(source.head)
    heap[#heap + 1] = source
  end
  for i = math.floor(#heap / 2), 1, -1 do down(i) end

  local merged = {}
  while #merged < count and #heap > 0 do
    local top = heap[1]
    if merged[#merged] ~= top.head then merged[#merged + 1] = top.head end  -- in two lists: once
    top.at = top.at + 1
    if top.at > top.stop then
      top.head = nil
    elseif top.ids then
      top.head = top.ids[top.at]
    else
      top.head = redis.call('LINDEX', top.list, top.at)
    end
    if top.head then
      top.key = stamp(top.head)
    else
      heap[1] = heap[#heap]
      heap[#heap] = nil
    end
    if #heap > 0 then down(1) end
  end
  if horizon == nil then return merged, 0, unfilled end
  local kept = {}
  for _, id in ipairs(merged) do
    if not newer(id, horizon) then break end
    kept[#kept + 1] = id
  end
  return kept, (#kept < count) and 1 or 0, unfilled
end

local way = ARGV[4]
local left, truncated, ids = slice(KEYS[1], KEYS[2], way == 'list')
if way == 'list' then
  return {left and 1 or 0, truncated, ids}
end
if not left then
  if way == 'home' then return {0, 0, {}, {}} end
  return {0, 0, {}, {}, {}}
end
-- A home another reader is rebuilding (begin.lua's "r:<token>", or "x": a removal reached it
-- meanwhile, unpush.lua; only ever inside the rebuild window): say so (2) rather than
-- hand out half of it; the reader waits for it.
local state = left <= tonumber(ARGV[7]) and redis.call('GET', KEYS[1])
if state and being_rebuilt(state) then
  if way == 'home' then return {2, 0, {}, {}} end
  return {2, 0, {}, {}, {}}
end
-- Refresh the expiry only when a good part of it has run out (under 99%): the writes
-- cost more than the read itself, and a reader reading every second would otherwise
-- rewrite three TTLs every second.
local ttl = tonumber(ARGV[3])
if left < ttl - math.floor(ttl / 100) and left > tonumber(ARGV[7]) then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
local celebrities = redis.call('SMEMBERS', KEYS[3])
if way == 'home' then
  return {1, truncated, ids, celebrities}
end
-- "page": what the client would otherwise ask for next, in the same round trip.
local page, ended, unfilled
if upward or #celebrities == 0 then
  local lists, flags = {ids}, {truncated}
  unfilled = {}
  for _, celebrity in ipairs(celebrities) do
    local tag = tag_of(celebrity)
    local found, short, theirs = slice(ARGV[9] .. tag, ARGV[10] .. tag, true)
    if found then
      lists[#lists + 1], flags[#flags + 1] = theirs, short
    else
      unfilled[#unfilled + 1] = celebrity
    end
  end
  if upward then page, ended = merge_newer(lists, flags) else page, ended = merge_window(lists, flags) end
else
  page, ended, unfilled = page_down(ids, truncated, celebrities)
end
local items = {}
if #page > 0 then
  local keys = {}
  for i, id in ipairs(page) do keys[i] = ARGV[8] .. id end
  items = redis.call('MGET', unpack(keys))
end
return {1, ended, page, items, unfilled}
