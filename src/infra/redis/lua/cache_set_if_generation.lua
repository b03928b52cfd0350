-- Stores a cached value unless it was invalidated since it was read
-- (src/infra/redis/cache_store.rs). KEYS: the value, its generation counter; ARGV: value,
-- the generation read before loading it, TTL (ms). Returns 1 if stored.
local generation = redis.call('GET', KEYS[2]) or '0'
if generation ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
return 1
