-- Cache many tweets' items in one call: KEYS the items' keys, ARGV[1] the expiry in
-- seconds, ARGV[2..] the items, in the order of KEYS.
-- A rebuild caches up to 800 items at once: one script call costs the API a fraction of
-- a pipeline of SETs (docs/decisions/0005). All KEYS of a call must share a Redis Cluster
-- slot, so on a cluster the items go as a pipeline instead.
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
