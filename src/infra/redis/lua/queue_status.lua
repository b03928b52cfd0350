-- Status. ARGV: entry.
-- Runs after queue_prelude.lua (keys, clock, view, expiry and budget helpers); see
-- src/infra/redis/waiting_room.rs and docs/waiting-room.md.
return view(ARGV[1], now_ms())
