-- Admit. ARGV: capacity, rate, active TTL (ms), most to admit in this call.
-- Returns {admitted, expired, waiting, active, opened (0/1), active until (ms, 0 if none
-- admitted), then for each admitted entry: wait ms, entry id, user id…}.
-- Also forgets `done` marks older than the active TTL.
-- Runs after queue_prelude.lua (keys, clock, view, expiry and budget helpers); see
-- src/infra/redis/waiting_room.rs and docs/waiting-room.md.
local now = now_ms()
local opens_at, sold_out, paused = meta_values()
if now < opens_at then
  return {0, 0, redis.call('ZCARD', waiting), redis.call('ZCARD', active), 0}
end
local expired = expire_active(now, 1000)
redis.call('ZREMRANGEBYSCORE', admitted, '-inf', now - 60000)
redis.call('ZREMRANGEBYSCORE', done, '-inf', now - tonumber(ARGV[3]))
local result = {0, expired, 0, 0, 1, 0}
if not sold_out and not paused then
  local free = tonumber(ARGV[1]) - redis.call('ZCARD', active)
  local n = math.min(free, budget_left(now, tonumber(ARGV[2])), tonumber(ARGV[4]))
  if n > 0 then
    local popped = redis.call('ZPOPMIN', waiting, n)
    local ends = now + tonumber(ARGV[3])
    result[6] = ends
    for i = 1, #popped, 2 do
      local entry = popped[i]
      redis.call('ZADD', active, ends, entry)
      redis.call('ZADD', admitted, now, entry)
      local info = redis.call('HGET', entries, entry)
      local joined = info and tonumber(string.match(info, ':(%d+)$')) or now
      result[#result + 1] = now - joined
      result[#result + 1] = entry
      result[#result + 1] = info and string.match(info, '^([^:]+):') or ''
    end
    result[1] = #popped / 2
    if result[1] > 0 then spend(now, result[1]) end
  end
end
result[3] = redis.call('ZCARD', waiting)
result[4] = redis.call('ZCARD', active)
return result
