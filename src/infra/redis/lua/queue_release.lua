-- Release. ARGV: user, active TTL (ms). Ends the user's active slot because their payment completed; returns 1
-- if there was one.
-- Runs after queue_prelude.lua (keys, clock, view, expiry and budget helpers); see
-- src/infra/redis/waiting_room.rs and docs/waiting-room.md.
local entry = redis.call('HGET', users, ARGV[1])
if not entry then return 0 end
local removed = redis.call('ZREM', active, entry)
if removed == 1 then
  forget(entry)
  -- Read as `done` (not `expired`) for one active TTL (queue_admit.lua forgets older marks).
  redis.call('ZADD', done, now_ms(), entry)
  -- Bounded even when no promoter round trims it (an emptied line leaves queue:open).
  redis.call('PEXPIRE', done, ARGV[2])
end
return removed
