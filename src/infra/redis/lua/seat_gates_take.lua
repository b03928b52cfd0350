-- Takes seat gates, all or none (src/infra/redis/seat_gates.rs). KEYS: the seats' gates (one
-- schedule's hash tag); ARGV: owner, TTL (ms). Returns the 1-based indexes of the gates
-- another owner holds (empty: all taken by `owner`).
local taken = {}
for i, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current and current ~= ARGV[1] then taken[#taken + 1] = i end
end
if #taken > 0 then return taken end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
end
return taken
