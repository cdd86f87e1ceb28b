-- Read one page of a timeline and keep its expiry fresh, in one round trip.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] cursor id (16 bytes, "older than this") or "", ARGV[2] count, ARGV[3] ttl,
-- ARGV[4] "1" for a home timeline (also refresh its expiry and read its celebrities),
-- "0" for a celebrity's own list (KEYS[3] unused), ARGV[5] the lists' cap,
-- ARGV[6] on a single Redis the tweet cache's key prefix, on Redis Cluster "": with it,
-- a home's read also takes what the page needs from keys it was not given (which
-- only a single Redis allows: on a cluster they live on other nodes). They are only
-- read, and their names are the ones timeline/adapters/feed.py and tweet_cache.py use.
-- Returns {materialized 0/1, truncated 0/1, {ids...}, {celebrity ids...},
-- {celebrity slices...}, {page ids...}, {items...}}, where
--   truncated = the slice came up short and the list is at its cap: older tweets exist
--     that the list no longer holds;
--   celebrity slices = with ARGV[6], each followed celebrity's list read the same way
--     ({materialized, truncated, {ids...}}, in the order of the celebrity ids);
--   page ids = with ARGV[6], the `count` newest distinct ids of the home's slice and
--     those (what the caller's merge starts from: it keeps a prefix of them), and
--     items = each one's cached item (false where it is not cached);
-- otherwise {}.
-- Every call here is paid on every page read, so the common page (the first, a full
-- slice, no celebrity) makes four: TTL (doubles as the marker check), LRANGE,
-- SMEMBERS, MGET.
local function newer(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

local cursor, count, cap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[5])

-- The marker's TTL (nil when there is no marker: not materialized), the slice's
-- truncated flag and its ids.
local function slice(marker, list)
  local left = redis.call('TTL', marker)
  if left == -2 then
    return nil, 0, {}
  end
  local n = nil
  local start = 0
  if cursor ~= '' then
    -- First entry strictly older than the cursor: pages never repeat an item even when
    -- newer tweets were pushed on top since the previous page.
    n = redis.call('LLEN', list)
    local lo, hi = 0, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if newer(cursor, redis.call('LINDEX', list, mid)) then hi = mid else lo = mid + 1 end
    end
    start = lo
  end
  local ids = redis.call('LRANGE', list, start, start + count - 1)
  local truncated = 0
  if #ids < count then
    -- Only a short slice needs the length: it is the end of the list, and the end of
    -- the story only if the list is below its cap.
    n = n or redis.call('LLEN', list)
    if n >= cap then truncated = 1 end
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

-- The `count` newest distinct ids of newest-first lists (an id fanned out to a home
-- before its author became a celebrity is in both: it comes once).
local function merge(lists)
  local page, at, head, key = {}, {}, {}, {}
  for i, ids in ipairs(lists) do
    at[i], head[i] = 1, ids[1]
    key[i] = head[i] and stamp(head[i])
  end
  while #page < count do
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

local left, truncated, ids = slice(KEYS[1], KEYS[2])
if not left then
  return {0, 0, {}, {}, {}, {}, {}}
end
if ARGV[4] ~= '1' then
  return {1, truncated, ids, {}, {}, {}, {}}
end
-- Refresh the expiry only when a good part of it has run out (under 99%): the writes
-- cost more than the read itself, and a reader reading every second would otherwise
-- rewrite three TTLs every second.
local ttl = tonumber(ARGV[3])
if left < ttl - math.floor(ttl / 100) then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
  redis.call('EXPIRE', KEYS[3], ttl)
end
local celebrities = redis.call('SMEMBERS', KEYS[3])
if ARGV[6] == '' then
  return {1, truncated, ids, celebrities, {}, {}, {}}
end
-- What the client would otherwise ask for next, in the same round trip: each command
-- more cost the API more CPU than anything else it does for a page.
local lists, page, items = {}, ids, {}
if #celebrities > 0 then
  local all = {ids}
  for i, celebrity in ipairs(celebrities) do
    local tag = '{' .. hex(celebrity) .. '}'
    local found, short, theirs = slice('clm:' .. tag, 'cl:' .. tag)
    lists[i] = {found and 1 or 0, short, theirs}
    all[i + 1] = theirs
  end
  page = merge(all)
end
if #page > 0 then
  local keys = {}
  for i, id in ipairs(page) do keys[i] = ARGV[6] .. id end
  items = redis.call('MGET', unpack(keys))
end
return {1, truncated, ids, celebrities, lists, page, items}
