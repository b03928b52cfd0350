-- Writes seat states through (src/infra/redis/seat_states.rs). KEYS: the states string;
-- ARGV: the expected length, then (offset, byte) pairs. Writes the bytes only if the string
-- exists with that length (never a partial or misaligned copy); returns 1 if it wrote, 0 if not.
local length = redis.call('STRLEN', KEYS[1])
if length == 0 or length ~= tonumber(ARGV[1]) then return 0 end
for i = 2, #ARGV, 2 do
  redis.call('SETRANGE', KEYS[1], ARGV[i], ARGV[i + 1])
end
return 1
