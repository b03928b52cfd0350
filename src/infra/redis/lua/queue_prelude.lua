-- Shared by every waiting-room script (scripts.rs puts it in front of each): one concert's
-- keys (all under the hash tag {c<concert id>}, one Cluster slot), the clock (Redis TIME, so
-- every API instance and promoter shares one), the view of an entry, expiry of active slots
-- and the per-second admission budget.
local waiting, active, entries, users = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local seq, budget, admitted, meta = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local done = KEYS[9]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- opens_at (ms), sold out, paused by an admin (admission stops; joins wait in line).
local function meta_values()
  local m = redis.call('HMGET', meta, 'opens_at', 'sold_out', 'paused')
  return tonumber(m[1] or '0') or 0, m[2] == '1', m[3] == '1'
end

-- {entry, status, number, opens_at, sold_out, admitted in the last minute, now, the oldest of
-- those admissions}. number: the 1-based position while waiting, the end of the slot (ms)
-- while active. status: active, pre_queue, sold_out, waiting, done (the slot was released by
-- a payment) or expired (the slot's time ran out, or the entry left).
local function view(entry, now)
  local opens_at, sold_out = meta_values()
  local recent = redis.call('ZCOUNT', admitted, now - 60000, '+inf')
  local first = redis.call('ZRANGEBYSCORE', admitted, now - 60000, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local tail = {opens_at, sold_out and 1 or 0, recent, now, tonumber(first[2] or now)}
  local ends = redis.call('ZSCORE', active, entry)
  if ends and tonumber(ends) > now then
    return {entry, 'active', tonumber(ends), unpack(tail)}
  end
  local rank = redis.call('ZRANK', waiting, entry)
  if rank then
    if now < opens_at then return {entry, 'pre_queue', 0, unpack(tail)} end
    if sold_out then return {entry, 'sold_out', rank + 1, unpack(tail)} end
    return {entry, 'waiting', rank + 1, unpack(tail)}
  end
  if redis.call('ZSCORE', done, entry) then return {entry, 'done', 0, unpack(tail)} end
  return {entry, 'expired', 0, unpack(tail)}
end

local function forget(entry)
  local info = redis.call('HGET', entries, entry)
  if info then
    local user = string.match(info, '^([^:]+):')
    if user and redis.call('HGET', users, user) == entry then redis.call('HDEL', users, user) end
    redis.call('HDEL', entries, entry)
  end
end

-- Ends active slots whose time is up (at most `limit`); returns how many.
local function expire_active(now, limit)
  local gone = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, limit)
  for _, entry in ipairs(gone) do
    redis.call('ZREM', active, entry)
    forget(entry)
  end
  return #gone
end

local function budget_left(now, rate)
  local b = redis.call('HMGET', budget, 'sec', 'used')
  if tonumber(b[1]) ~= math.floor(now / 1000) then return rate end
  return rate - (tonumber(b[2]) or 0)
end

local function spend(now, n)
  local sec = math.floor(now / 1000)
  if tonumber(redis.call('HGET', budget, 'sec')) ~= sec then
    redis.call('HSET', budget, 'sec', sec, 'used', n)
  else
    redis.call('HINCRBY', budget, 'used', n)
  end
end
