-- Read one page of a timeline and keep its expiry fresh, in one round trip.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] cursor id (16 bytes, "older than this") or "", ARGV[2] count, ARGV[3] ttl,
-- ARGV[4] "1" for a home timeline (also refresh its expiry and read its celebrities),
-- "0" for a celebrity's own list (KEYS[3] unused), ARGV[5] the lists' cap,
-- ARGV[6] the tweet cache's key prefix, or "" (on Redis Cluster, where the cached items
-- live on other nodes)
-- Returns {materialized 0/1, truncated 0/1, {ids...}, {celebrity ids...}, {items...}},
-- where truncated = the slice came up short and the list is at its cap: older tweets
-- exist that the list no longer holds; and items = each id's cached item (false where
-- it is not cached), read here when ARGV[6] is given and the home follows no
-- celebrity (then the ids are the page: nothing is merged in), otherwise {}.
-- Every call here is paid on every page read, so the common page (the first, a full
-- slice) makes four: TTL (doubles as the marker check), LRANGE, SMEMBERS, MGET.
local function newer(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

local left = redis.call('TTL', KEYS[1])
if left == -2 then  -- no marker: not materialized
  return {0, 0, {}, {}, {}}
end
local list, cursor, count = KEYS[2], ARGV[1], tonumber(ARGV[2])
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
  if n >= tonumber(ARGV[5]) then truncated = 1 end
end
local celebrities = {}
if ARGV[4] == '1' then
  -- Refresh the expiry only when a good part of it has run out (under 99%): the
  -- writes cost more than the read itself, and a reader reading every second would
  -- otherwise rewrite three TTLs every second.
  local ttl = tonumber(ARGV[3])
  if left < ttl - math.floor(ttl / 100) then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', list, ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  celebrities = redis.call('SMEMBERS', KEYS[3])
end
local items = {}
if ARGV[6] ~= '' and #celebrities == 0 and #ids > 0 then
  -- The page's items in the same round trip: the client's second command (an MGET
  -- after the ids came back) cost the API more CPU than anything else it does for a
  -- page. The item keys are not in KEYS, which only a single Redis allows (on a
  -- cluster ARGV[6] is ""), and they are only read.
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = ARGV[6] .. id end
  items = redis.call('MGET', unpack(keys))
end
return {1, truncated, ids, celebrities, items}
