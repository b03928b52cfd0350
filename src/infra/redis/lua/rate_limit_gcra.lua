-- One rate-limit decision (src/infra/redis/rate_limits.rs; the algorithm and its reasoning:
-- src/domain/rate_limit.rs, which computes the same). KEYS[1]: the key's theoretical arrival
-- time (ms, a string). ARGV: emission interval (ms), window (ms), cost (1: count the request,
-- 0: only ask). Reads the time from Redis, so every API instance shares one clock.
-- Returns {allowed (0/1), remaining, retry after (ms), reset (ms)}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval, window, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next = tat + interval * math.max(cost, 1)
if next - now > window then
  return {0, 0, math.ceil(next - now - window), math.ceil(tat - now)}
end
if cost == 0 then
  return {1, math.floor((window - (tat - now)) / interval), 0, math.ceil(tat - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', next), 'PX', math.max(1, math.ceil(next - now)))
return {1, math.floor((window - (next - now)) / interval), 0, math.ceil(next - now)}
