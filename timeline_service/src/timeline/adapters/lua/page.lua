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

local function hex(id)
  return (string.gsub(id, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

-- The `count` newest distinct ids of newest-first lists (an id fanned out to a home
-- before its author became a celebrity is in both: it comes once).
local function merge(lists)
  local page, heads = {}, {}
  for i = 1, #lists do heads[i] = 1 end
  while #page < count do
    local best, from = nil, nil
    for i, ids in ipairs(lists) do
      local id = ids[heads[i]]
      if id and (best == nil or newer(id, best)) then best, from = id, i end
    end
    if best == nil then break end
    heads[from] = heads[from] + 1
    if page[#page] ~= best then page[#page + 1] = best end
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
