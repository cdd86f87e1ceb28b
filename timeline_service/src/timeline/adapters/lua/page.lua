-- Read one page of a timeline and refresh its expiry, in one round trip.
-- KEYS[1] marker, KEYS[2] list, KEYS[3] set of followed celebrities
-- ARGV[1] cursor id (16 bytes, "older than this") or "", ARGV[2] count, ARGV[3] ttl
-- ARGV[4] "1" for a home timeline (also refresh its expiry and read its celebrities);
-- "0" for a celebrity's own list (KEYS[3] unused)
-- Returns {materialized 0/1, list length, {ids...}, {celebrity ids...}}
local function newer(a, b)
  for i = 1, 16 do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x > y end
  end
  return false
end

local home = ARGV[4] == '1'
if redis.call('EXISTS', KEYS[1]) == 0 then
  return {0, 0, {}, {}}
end
local list, cursor, count = KEYS[2], ARGV[1], tonumber(ARGV[2])
local n = redis.call('LLEN', list)
local start = 0
if cursor ~= '' then
  -- First entry strictly older than the cursor: pages never repeat an item even when
  -- newer tweets were pushed on top since the previous page.
  local lo, hi = 0, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if newer(cursor, redis.call('LINDEX', list, mid)) then hi = mid else lo = mid + 1 end
  end
  start = lo
end
local ids = redis.call('LRANGE', list, start, start + count - 1)
local celebrities = {}
if home then
  -- Refresh the expiry only when a good part of it has run out (under 99%): the
  -- writes cost more than the read itself, and a reader reading every second would
  -- otherwise rewrite three TTLs every second.
  local ttl = tonumber(ARGV[3])
  if redis.call('TTL', KEYS[1]) < ttl - math.floor(ttl / 100) then
    redis.call('EXPIRE', KEYS[1], ttl)
    redis.call('EXPIRE', list, ttl)
    redis.call('EXPIRE', KEYS[3], ttl)
  end
  celebrities = redis.call('SMEMBERS', KEYS[3])
end
return {1, n, ids, celebrities}
