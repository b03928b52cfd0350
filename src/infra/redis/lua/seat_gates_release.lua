-- Gives seat gates back (src/infra/redis/seat_gates.rs). KEYS: gates; ARGV: owner. Deletes the
-- gates `owner` still holds; returns how many.
local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then released = released + redis.call('DEL', key) end
end
return released
