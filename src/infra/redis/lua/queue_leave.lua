-- Leave. ARGV: user, entry. Leaves the line or gives the active slot back; idempotent.
-- Runs after queue_prelude.lua (keys, clock, view, expiry and budget helpers); see
-- src/infra/redis/waiting_room.rs and docs/waiting-room.md.
local removed = redis.call('ZREM', waiting, ARGV[2]) + redis.call('ZREM', active, ARGV[2])
forget(ARGV[2])
return removed
