-- Join. ARGV: user, fresh entry id, opens_at (ms, 0: open), capacity, rate, active TTL (ms),
-- pre-queue score (uniform in [0, 1)). Idempotent: a live entry is returned as it is.
-- Runs after queue_prelude.lua (keys, clock, view, expiry and budget helpers); see
-- src/infra/redis/waiting_room.rs and docs/waiting-room.md.
local user, fresh = ARGV[1], ARGV[2]
local now = now_ms()
redis.call('HSETNX', meta, 'opens_at', ARGV[3])
local existing = redis.call('HGET', users, user)
if existing then
  local current = view(existing, now)
  if current[2] ~= 'expired' and current[2] ~= 'done' then return current end
  redis.call('ZREM', waiting, existing)
  redis.call('ZREM', active, existing)
  forget(existing)
end
redis.call('HSET', users, user, fresh)
redis.call('HSET', entries, fresh, user .. ':' .. now)
local opens_at, sold_out, paused = meta_values()
if now < opens_at then
  -- The pre-queue: a random place below 1, drawn now and revealed at the opening; everyone
  -- who joins after the opening gets a sequence number from 1 up, behind all of them.
  redis.call('ZADD', waiting, ARGV[7], fresh)
  return view(fresh, now)
end
if redis.call('ZCARD', waiting) == 0 and not sold_out and not paused then
  expire_active(now, 100)
  if redis.call('ZCARD', active) < tonumber(ARGV[4]) and budget_left(now, tonumber(ARGV[5])) > 0 then
    spend(now, 1)
    redis.call('ZADD', active, now + tonumber(ARGV[6]), fresh)
    redis.call('ZADD', admitted, now, fresh)
    return view(fresh, now)
  end
end
redis.call('ZADD', waiting, redis.call('INCR', seq), fresh)
return view(fresh, now)
